// offload for Node.js and Electron (ES modules): re-exports the CommonJS build.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const offload = require('./index.js');

export default offload;
export const {
  ChildPool, Task, Schedule, ChildJob, JobRun, LoadBalancer, AlgorithmType, ALGORITHMS, Client, ClientError, MAX_WORKERS,
  MAX_KEY_BYTES, MAX_BINDINGS,
  OffloadError, TimedOutError, CancelledError, KilledError, CrashedError, ExitedError,
  ResourceLimitError, ProtocolError, JobFailedError, JobNotFoundError, InvalidJobError,
  InvalidArgumentError, QueueFullError, ShuttingDownError, PoolGoneError, StartFailedError,
  SpawnFailedError, ParamsTooLargeError, ProcessGoneError, DeadlineExceededError,
  NoSuchFunctionError, BusyError, FrameTooLargeError, NoSuchWorkerError, FdError,
} = offload;
