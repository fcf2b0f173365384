// Types of ee-core's jobs API on offload: require('<repo>/bindings/node/ee-core').
/// <reference types="node" />
import { EventEmitter } from 'node:events';
import { LoadBalancer, AlgorithmType, Outcome } from './index';

export { LoadBalancer, AlgorithmType };

export interface JobProcessOptions {
  processArgs?: string[];
  processOptions?: { env?: Record<string, string | undefined>; cwd?: string; [k: string]: unknown };
  /** offload: stop the job after this many ms. */
  timeout?: number;
}

export class JobProcess {
  readonly pid: number | undefined;
  readonly emitter: EventEmitter;
  readonly child: { readonly pid: number | undefined; readonly connected: boolean; kill(signal?: string): boolean };
  dispatch(cmd: 'run', jobPath?: string, ...params: unknown[]): string;
  callFunc(jobPath?: string, funcName?: string, ...params: unknown[]): Promise<unknown>;
  kill(timeout?: number): Promise<Outcome | null>;
}

export class ChildJob extends EventEmitter {
  constructor(opt?: { baseDir?: string; timeout?: number });
  readonly jobs: Record<number, JobProcess>;
  exec(filepath: string, params?: Record<string, unknown>, opt?: JobProcessOptions): JobProcess;
  execPromise(filepath: string, params?: Record<string, unknown>, opt?: JobProcessOptions): Promise<JobProcess>;
  createProcess(opt?: JobProcessOptions): JobProcess;
  getPids(): string[];
  getChildByPid(pid: number | string): JobProcess | null;
  killAll(): Promise<void>;
}

export interface ChildPoolOptions {
  weights?: number[];
  max?: number;
  strategy?: string;
  baseDir?: string;
}

export class ChildPoolJob extends EventEmitter {
  constructor(opt?: ChildPoolOptions);
  readonly children: Record<number, JobProcess>;
  readonly boundMap: Map<string | number, number>;
  readonly min: number;
  readonly max: number;
  readonly strategy: string;
  readonly weights: number[];
  readonly LB: LoadBalancer;
  create(number?: number): Promise<string[]>;
  run(filepath: string, params?: Record<string, unknown>): Promise<JobProcess>;
  runPromise(filepath: string, params?: Record<string, unknown>): Promise<JobProcess>;
  getBoundChild(boundId: string | number): Promise<JobProcess | null>;
  getChild(): Promise<JobProcess | null>;
  getChildByPid(pid: number | string): JobProcess | null;
  getPids(): string[];
  killAll(type?: 'parallel' | 'sequence'): Promise<void>;
}
