// Types of offload for Node.js and Electron (bindings/node). See README.md.
/// <reference types="node" />
import { EventEmitter } from 'node:events';

/** A Rust outcome, as the addon reports it. */
export type Outcome =
  | { outcome: 'succeeded'; value: unknown }
  | { outcome: 'failed'; name: string; message: string; stack: string | null }
  | { outcome: 'failed_no_retry'; name: string; message: string; stack: string | null }
  | { outcome: 'timed_out' }
  | { outcome: 'cancelled' }
  | { outcome: 'killed'; signal: number }
  | { outcome: 'exited'; code: number }
  | { outcome: 'crashed'; signal: number }
  | { outcome: 'protocol_error'; message: string }
  | { outcome: 'resource_limit'; which: 'memory' | 'cpu' | 'open_files' };

export type ErrorCode =
  | 'TimedOut' | 'Cancelled' | 'Killed' | 'Crashed' | 'Exited' | 'ResourceLimit' | 'ProtocolError'
  | 'Failed' | 'JobNotFound' | 'InvalidJob' | 'InvalidArgument' | 'QueueFull' | 'ShuttingDown'
  | 'PoolGone' | 'StartFailed' | 'SpawnFailed' | 'ParamsTooLarge' | 'ProcessGone'
  | 'DeadlineExceeded' | 'NoSuchFunction' | 'Busy' | 'FrameTooLarge';

export interface Attempt {
  pid: number;
  outcome: Outcome;
  started: { secs_since_epoch: number; nanos_since_epoch: number };
  ended: { secs_since_epoch: number; nanos_since_epoch: number };
}

/** Every failure: `code` is the Rust outcome or refusal; `job` names the job. */
export class OffloadError extends Error {
  readonly code: ErrorCode | string;
  readonly job: string | null;
  /** The class of the error the job threw (`Failed`). */
  readonly errorName: string | null;
  /** The job's own stack (`Failed`). */
  readonly jobStack: string | null;
  readonly outcome: Outcome | null;
  readonly attempts: Attempt[] | null;
}
export class TimedOutError extends OffloadError {}
export class CancelledError extends OffloadError {}
export class KilledError extends OffloadError {}
export class CrashedError extends OffloadError {}
export class ExitedError extends OffloadError {}
export class ResourceLimitError extends OffloadError {}
export class ProtocolError extends OffloadError {}
export class JobFailedError extends OffloadError {}
export class JobNotFoundError extends OffloadError {}
export class InvalidJobError extends OffloadError {}
export class InvalidArgumentError extends OffloadError {}
export class QueueFullError extends OffloadError {}
export class ShuttingDownError extends OffloadError {}
export class PoolGoneError extends OffloadError {}
export class StartFailedError extends OffloadError {}
export class SpawnFailedError extends OffloadError {}
export class ParamsTooLargeError extends OffloadError {}
export class ProcessGoneError extends OffloadError {}
export class DeadlineExceededError extends OffloadError {}
export class NoSuchFunctionError extends OffloadError {}
export class BusyError extends OffloadError {}
export class FrameTooLargeError extends OffloadError {}
export class NoSuchWorkerError extends OffloadError {}
/** A run's descriptors could not be passed; `code` says why: `FdTooMany`, `FdClosed`,
 * `FdsNotSupported`, `FdWrongKind`, `FdRefused`, `FdAckTimeout`, `FdChannelClosed`,
 * `FdMissing`. */
export class FdError extends OffloadError {}

export type Signal = 'SIGTERM' | 'SIGINT' | 'SIGKILL' | 'SIGHUP' | 'SIGQUIT' | 'SIGUSR1' | 'SIGUSR2';

export type Algorithm =
  | 'polling' | 'weights' | 'random' | 'specify' | 'weightsPolling' | 'weightsRandom'
  | 'minimumConnection' | 'weightsMinimumConnection' | 'p2c' | 'consistentHash' | 'first'
  | 'leastMemory' | 'leastLoad';

/** Durations are milliseconds. */
export interface PoolOptions {
  /** The jobs folder (default `./jobs`). */
  jobs?: string;
  /** A native worker program (Rust SDK) instead of Node job files. */
  program?: string;
  name?: string;
  /** Workers kept alive (default 1; at most MAX_WORKERS). */
  min?: number;
  /** Workers at most (default max(min, 4); at most MAX_WORKERS); enforced. */
  max?: number;
  /** Jobs per worker at once (default 1). */
  concurrency?: number;
  algorithm?: Exclude<Algorithm, 'specify'>;
  /** Weights by worker index. */
  weights?: number[];
  /** Default per-attempt timeout. */
  timeout?: number;
  /** Retries after a death, timeout or protocol error (default 2). */
  retries?: number;
  /** Also retry jobs that threw. */
  retryOnError?: boolean;
  retryDelay?: number;
  /** Replace a healthy worker (the replacement starts first; a running job is never killed
   * for it) after `jobs` jobs, above `rss` bytes (its whole process tree), after `age` ms,
   * above `heap` bytes of heap in use (as its last pong reported: needs pings), or above
   * `cpu` percent of one core (1..10000) for `cpuSamples` health samples in a row (≤ 1000). */
  recycle?: { jobs?: number; rss?: number; age?: number; heap?: number; cpu?: number; cpuSamples?: number };
  /** How often an idle worker is pinged (default 5000 ms, at least 10; `false` or 0: never).
   * A worker that does not answer within `pingTimeout` is replaced (reason `unresponsive`). */
  pingInterval?: number | false;
  /** How long a ping may wait for its pong (default 10000 ms, at least 10). */
  pingTimeout?: number;
  idleTimeout?: number;
  killSignal?: Signal;
  killGrace?: number;
  cancelGrace?: number;
  queueBound?: number;
  /** Reject with QueueFullError instead of waiting when the queue is full. */
  failFast?: boolean;
  env?: Record<string, string>;
  startTimeout?: number;
  healthInterval?: number;
  /** Unexpected exits within `restartWindow` before the pool is degraded (default 10). */
  maxRestarts?: number;
  restartWindow?: number;
  /** The node executable for the workers. */
  node?: string;
  /** Address-space limit of each worker, bytes. */
  memoryLimit?: number;
  cpuSeconds?: number;
  poisonAfter?: number;
}

export interface RunOptions {
  timeout?: number;
  retries?: number;
  /** Affinity: jobs with the same key go to the same worker while it lives. At most
   * MAX_KEY_BYTES bytes of UTF-8; a pool remembers at most MAX_BINDINGS keys, forgetting the
   * least recently used past that (such a key is bound again at its next job), never one with
   * a job in flight. */
  key?: string;
  /** Runs the job on this worker only (its pid, from `pids()` or `workers()`): it waits while
   * that worker is busy, has one attempt, and rejects with NoSuchWorkerError when the worker is
   * not one of the pool's, exits, or stops taking jobs (recycling, shutdown). Overrides `key`. */
  worker?: number;
  /** Aborting cancels the job (queued: at once; running: `cancel`, then its worker is killed). */
  signal?: AbortSignal;
  onProgress?: (data: unknown, info: { pid: number; job: string }) => void;
  /** Per-job events (default true). */
  events?: boolean;
  /** Descriptors passed to the worker with the run (`ctx.fds` there: a net.Socket, net.Server
   * or dgram.Socket). Copied at the call: the caller keeps (and closes) its own handles. Such
   * a run has one attempt; failures reject with an FdError. */
  fds?: Array<FdSource>;
}

/** What `fds` takes: a connected or listening socket (its descriptor) or a descriptor number. */
export type FdSource = import('node:net').Socket | import('node:net').Server | import('node:dgram').Socket | number;

export type KillMode = 'soft' | 'hard';

export type TaskEvent =
  | { type: 'started'; pid: number; attempt: number; job: string }
  | { type: 'progress'; pid: number; data: unknown; job: string }
  | { type: 'event'; pid: number; name: string; data: unknown; receiver: 'job' | 'task' | 'all'; job: string }
  | { type: 'retrying'; outcome: Outcome; job: string }
  | { type: 'finished'; outcome: Outcome; job: string };

export class Task<T = unknown> extends EventEmitter implements AsyncIterable<TaskEvent> {
  readonly job: string;
  readonly pid: number | null;
  readonly result: Promise<T>;
  cancel(): void;
  /** `lost`: events of this run dropped on the way. Events are flow-controlled (the worker is
   * read only as fast as they are delivered), so this comes only when a worker's last events
   * were read past the bound at its exit, after its listeners stopped taking them for 500 ms;
   * with the events received, they add up to what the job sent. */
  on(event: 'lost', listener: (count: number) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  [Symbol.asyncIterator](): AsyncIterator<TaskEvent>;
}

export interface WorkerInfo {
  pid: number;
  index: number;
  state: 'starting' | 'ready' | 'draining' | 'stopping';
  /** Resident memory of the worker's whole process tree, bytes. */
  rss: number;
  /** CPU of the process tree, percent of one core. */
  cpu: number;
  /** Heap in use, bytes, from the worker's last pong (null until one arrives). */
  heapUsed: number | null;
  /** Heap reserved, bytes, from the worker's last pong. */
  heapTotal: number | null;
  /** Processes in the worker's tree (itself included). */
  processes: number;
  jobs: number;
  jobsDone: number;
  failures: number;
  restarts: number;
  uptimeMs: number;
  lastError: string | null;
}

export type PoolEvent = { type: string; pid?: number; [k: string]: unknown };

export class ChildPool extends EventEmitter {
  constructor(opts?: PoolOptions);
  static start(opts?: PoolOptions): Promise<ChildPool>;
  readonly ready: Promise<ChildPool>;
  submit<T = unknown>(job: string, params?: unknown, opts?: RunOptions): Task<T>;
  run<T = unknown>(job: string, params?: unknown, opts?: RunOptions): Promise<T>;
  events(): AsyncIterableIterator<PoolEvent>;
  broadcast(name: string, data?: unknown, opts?: { timeout?: number }): Promise<Record<string, boolean>>;
  /** Sets the number of workers (0 to MAX_WORKERS; more rejects with InvalidArgumentError). */
  resize(n: number): Promise<void>;
  recycle(): Promise<void>;
  workers(): Promise<WorkerInfo[]>;
  pids(): number[];
  queued(): Promise<number>;
  /** Kills one worker; resolves false for a pid that is not one of them. `mode: 'soft'`:
   * `shutdown` (running jobs and the worker's shutdown hook may finish), `'hard'`: the kill
   * notice; either ends in SIGKILL after `grace` (default 5000 ms). Without `mode`: `signal`
   * (default SIGTERM), then SIGKILL after `grace`. */
  killWorker(pid: number, opts?: { mode: KillMode; grace?: number } | { signal?: Signal; grace?: number }): Promise<boolean>;
  /** Kills every worker (`mode` default 'hard', `order` default 'parallel') and ends the pool. */
  killAll(opts?: { mode?: KillMode; order?: 'parallel' | 'sequence'; grace?: number }): Promise<void>;
  /** Runs `job` periodically on this pool (exactly one of `every` and `cron`). Throws an
   * InvalidArgumentError at once for a bad expression, time zone or policy. */
  schedule(job: string, params: unknown, opts: ScheduleOptions): Schedule;
  shutdown(opts?: { deadline?: number }): Promise<void>;
  kill(): Promise<void>;
}

export interface ScheduleOptions {
  /** A name for logs (default: the job's). */
  name?: string;
  /** Every this many ms, counted from the start. */
  every?: number;
  /** A cron expression (5 or 6 fields), read in `timezone`. */
  cron?: string;
  /** An IANA time zone name, e.g. "Europe/Berlin" (default UTC). */
  timezone?: string;
  /** While a run is unfinished, a tick fires nothing ("skip", the default), fires anyway
   * ("queue"), or cancels the unfinished run and fires ("replace"). */
  overlap?: 'skip' | 'queue' | 'replace';
  /** Pause after this many failed runs in a row (1..=1000). */
  pauseAfterFailures?: number;
  /** After a failure, ticks fire nothing for this many ms, doubling with each failure in a row. */
  backoff?: number;
  /** The longest such wait (default 32 × backoff). */
  backoffMax?: number;
  /** Each run starts up to this many ms after its tick, at random (at most an hour). */
  jitter?: number;
  /** Fire once at once too. */
  immediately?: boolean;
  /** Each run's timeout in ms. */
  timeout?: number;
}

export interface ScheduleStatus {
  runs: number;
  succeeded: number;
  failed: number;
  skipped: number;
  consecutiveFailures: number;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  lastError: string | null;
  /** Why it is paused ("manual", or the failures that paused it); null: it is not. */
  paused: string | null;
  active: number;
  nextAt: number | null;
  stopped: boolean;
}

export class Schedule extends EventEmitter {
  readonly job: string;
  /** Resolves once the schedule runs (after the pool started). */
  readonly ready: Promise<Schedule>;
  pause(): void;
  resume(): void;
  runNow(): void;
  status(): ScheduleStatus;
  stop(opts?: { deadline?: number }): Promise<ScheduleStatus>;
  on(event: 'started', listener: (info: { tick: number; job: number }) => void): this;
  on(event: 'succeeded', listener: (value: unknown, info: { job: number }) => void): this;
  on(event: 'failed', listener: (error: string, info: { job: number | null; consecutiveFailures: number }) => void): this;
  on(event: 'skipped', listener: (info: { tick: number; reason: 'overlap' | 'backoff' | 'paused' | 'missed' }) => void): this;
  on(event: 'paused', listener: (reason: string) => void): this;
  on(event: 'cancelled' | 'resumed' | 'stopped', listener: (...args: unknown[]) => void): this;
}

export interface ExecOptions {
  timeout?: number;
  signal?: AbortSignal;
  onProgress?: (data: unknown, info: { pid: number; job: string }) => void;
  env?: Record<string, string>;
  cwd?: string;
  args?: string[];
  killSignal?: Signal;
  cancelGrace?: number;
  memoryLimit?: number;
  cpuSeconds?: number;
}

export type RunEvent =
  | { type: 'spawned' | 'ready'; pid: number; [k: string]: unknown }
  | { type: 'progress'; pid: number; id: string; data: unknown }
  | { type: 'event'; pid: number; id: string | null; name: string; data: unknown; receiver: 'job' | 'task' | 'all' }
  | { type: 'log'; pid: number; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'exited'; pid: number; outcome: Outcome }
  | { type: string; pid: number; [k: string]: unknown };

export class JobRun<T = unknown> extends EventEmitter implements AsyncIterable<RunEvent> {
  readonly job: string;
  readonly pid: number | undefined;
  readonly result: Promise<T>;
  kill(opts?: { signal?: Signal; grace?: number }): Promise<Outcome>;
  call<R = unknown>(func: string, ...args: unknown[]): Promise<R>;
  /** `lost`: events of this process dropped on the way (only when read past the
   * flow-control bound at its exit; see the Task's). */
  on(event: 'lost', listener: (count: number) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  [Symbol.asyncIterator](): AsyncIterator<RunEvent>;
}

export class ChildJob extends EventEmitter {
  constructor(opts?: { jobs?: string; killSignal?: Signal; killGrace?: number; node?: string; warmSpare?: boolean });
  start<T = unknown>(job: string, params?: unknown, opts?: ExecOptions): JobRun<T>;
  exec<T = unknown>(job: string, params?: unknown, opts?: ExecOptions): Promise<T>;
  pids(): number[];
  killAll(): Promise<void>;
  static exec<T = unknown>(job: string, params?: unknown, opts?: ExecOptions & { jobs?: string }): Promise<T>;
}

export interface LoadBalancerTarget {
  id: number | string;
  weight?: number;
  capacity?: number;
}

export class LoadBalancer {
  constructor(options?: { targets?: LoadBalancerTarget[]; algorithm?: Algorithm });
  static readonly Algorithm: Readonly<Record<Algorithm, Algorithm>>;
  readonly algorithm: Algorithm;
  readonly targets: LoadBalancerTarget[];
  pickOne(key?: number | string): LoadBalancerTarget | null;
  pickMulti(count?: number, key?: number | string): LoadBalancerTarget[];
  acquire(key?: number | string): { target: LoadBalancerTarget; release(): void } | null;
  add(target: LoadBalancerTarget): void;
  del(target: LoadBalancerTarget | number | string): boolean;
  wipe(): void;
  setTargets(targets: LoadBalancerTarget[]): void;
  setAlgorithm(algorithm: Algorithm): void;
  updateParams(id: number | string, params: { weight?: number; cpu?: number; memory?: number }): void;
  inFlight(): Record<string, number>;
}

export const AlgorithmType: Readonly<Record<Algorithm, Algorithm>>;
export const ALGORITHMS: Algorithm[];
/** The most workers one pool may have (1024): `min`, `max` and `resize(n)` above it are refused. */
export const MAX_WORKERS: number;
/** The longest affinity key (`key`), in bytes of UTF-8. */
export const MAX_KEY_BYTES: number;
/** The most affinity keys a pool keeps bound. */
export const MAX_BINDINGS: number;

/** A daemon (`offload serve`) error: `code` is the daemon's (`unknown_job`, `not_found`,
 * `conflict`, `unauthorized`, …, or `unreachable`), `status` the HTTP status. */
export class ClientError extends OffloadError {
  readonly status: number;
}

export type JobState = 'scheduled' | 'queued' | 'running' | 'succeeded' | 'failed' | 'dead' | 'cancelled' | string;

export interface SubmitOptions {
  priority?: number;
  delayMs?: number;
  runAt?: number;
  timeoutMs?: number;
  maxAttempts?: number;
  idempotencyKey?: string;
}

export interface JobRecord {
  id: string;
  job: string;
  pool: string;
  params: unknown;
  state: JobState;
  attempt: number;
  max_attempts: number;
  progress: unknown;
  result: unknown;
  error: { name: string; message: string; stack: string | null } | null;
  attempts: Array<{ attempt: number; node: string; pid: number | null; started_at: number; ended_at: number | null; outcome: string; error: unknown }>;
  [k: string]: unknown;
}

export type DaemonEvent =
  | { event: 'job'; data: { id: string; job: string; pool: string; state: JobState; attempt: number } }
  | { event: 'progress'; data: { id: string; data: unknown } }
  | { event: 'job_event'; data: { id: string; name: string; data: unknown } }
  | { event: 'worker'; data: { pool: string; pid: number; event: string; reason?: string } }
  | { event: string; data: unknown };

export class Client {
  constructor(opts?: { server?: string; token?: string; timeout?: number });
  submit(job: string, params?: unknown, opts?: SubmitOptions): Promise<{ id: string; state: JobState; duplicate?: boolean }>;
  submitBatch(items: Array<{ job: string; params?: unknown } & SubmitOptions>): Promise<Array<{ id: string; state: JobState; duplicate: boolean }>>;
  status(id: string): Promise<JobRecord>;
  result(id: string, opts?: { wait?: number }): Promise<{ id: string; state: JobState; done: boolean; result?: unknown; error?: unknown; progress?: unknown }>;
  cancel(id: string): Promise<{ id: string; state: JobState }>;
  retry(id: string): Promise<{ id: string; state: JobState }>;
  list(opts?: { state?: string; job?: string; limit?: number; cursor?: string }): Promise<{ jobs: JobRecord[]; next_cursor: string | null }>;
  events(): AsyncIterableIterator<DaemonEvent>;
}
