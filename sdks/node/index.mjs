// ESM entry of offload-worker: the same module as index.js.
import sdk from './index.js';

export const {
  context,
  progress,
  emit,
  onEvent,
  offEvent,
  serve,
  isWorker,
  busy,
  ready,
  emitWorkerEvent,
  onShutdown,
  softKill,
  onHardKill,
  hardKill,
  JobContext,
  FileJobs,
  PROTOCOL,
  CAPABILITIES,
  OffloadError,
  JobNotFoundError,
  CancelledError,
  DeadlineExceededError,
  ShuttingDownError,
  FrameTooLargeError,
  NoSuchFunctionError,
  BusyError,
  NonRetryableError,
  serializeError,
} = sdk;

export default sdk;
