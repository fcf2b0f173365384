// Compiled by `tsc --noEmit` (npm run typecheck): the declarations describe real usage.
import { ChildPool, ChildJob, LoadBalancer, OffloadError, TimedOutError, WorkerInfo, Task, Schedule, ScheduleStatus } from '..';
import * as eeCore from '../ee-core';
import { connect } from 'node:net';
import { FdError } from '..';

async function modern(): Promise<void> {
  const pool = await ChildPool.start({ jobs: './jobs', min: 2, max: 4, algorithm: 'leastLoad', timeout: 5000, retries: 1, recycle: { jobs: 100 } });
  const ac = new AbortController();
  const n: number = await pool.run<number>('double', { n: 2 }, { timeout: 1000, signal: ac.signal, key: 'user-1' });
  const pinned: number = await pool.run<number>('pid', null, { worker: pool.pids()[0] });
  const task: Task<string> = pool.submit<string>('resize', { w: 1 });
  task.on('progress', (d: unknown) => void d);
  for await (const ev of task) if (ev.type === 'progress') void ev.data;
  const s: string = await task.result;
  const ws: WorkerInfo[] = await pool.workers();
  const acks: Record<string, boolean> = await pool.broadcast('reload', { at: Date.now() });
  await pool.resize(3);
  const sched: Schedule = pool.schedule('report', { n: 1 }, { cron: '0 3 * * *', timezone: 'Europe/Berlin', pauseAfterFailures: 3, backoff: 1000 });
  sched.on('failed', (error: string, info) => void [error, info.consecutiveFailures]);
  sched.on('paused', (reason: string) => void reason);
  const st: ScheduleStatus = await sched.stop({ deadline: 1000 });
  void st.consecutiveFailures;
  const ctl = new ChildPool({ jobs: './jobs', pingInterval: 1000, pingTimeout: 2000, recycle: { heap: 64 << 20, cpu: 90, cpuSamples: 3 } });
  const quiet = new ChildPool({ jobs: './jobs', pingInterval: false });
  const sock = connect('/tmp/x.sock');
  const wrote: number = await ctl.run<number>('fd-write', { text: 'hi' }, { fds: [sock, 3] });
  const soft: boolean = await ctl.killWorker(ws[0].pid, { mode: 'soft', grace: 1000 });
  await ctl.killWorker(ws[0].pid, { signal: 'SIGKILL' });
  await ctl.killAll({ mode: 'hard', order: 'sequence', grace: 500 });
  await quiet.kill();
  void [wrote, soft, FdError];
  await pool.shutdown({ deadline: 2000 });
  try {
    await ChildJob.exec('hello', null, { jobs: './jobs', timeout: 100 });
  } catch (e) {
    if (e instanceof TimedOutError) void e.code;
    if (e instanceof OffloadError) void [e.job, e.jobStack, e.outcome];
  }
  const cj = new ChildJob({ jobs: './jobs' });
  const run = cj.start('hello', {});
  const pid: number | undefined = run.pid;
  await run.kill({ signal: 'SIGINT', grace: 500 });
  const lb = new LoadBalancer({ targets: [{ id: 1, weight: 2 }], algorithm: 'weightsPolling' });
  const t = lb.pickOne();
  void [n, s, ws, acks, pid, t];
}

function legacy(): void {
  const job = new eeCore.ChildJob();
  const proc = job.exec('./jobs/example/timer', { jobId: 'x' });
  proc.emitter.on('job-timer-progress-x', (data: unknown) => void data);
  proc.callFunc('./jobs/example/timer', 'pause', 'x');
  void proc.kill();
  const pool = new eeCore.ChildPoolJob({ weights: [1, 2] });
  pool.create(3).then((pids: string[]) => void pids);
  pool.runPromise('./jobs/example/timer', { jobId: 'y' }).then((task) => task.emitter.on('e', () => {}));
  const pids: string[] = job.getPids();
  void pids;
}

void modern;
void legacy;

async function daemon(): Promise<void> {
  const { Client, ClientError } = await import('..');
  const c = new Client({ server: 'http://127.0.0.1:7070', token: 't' });
  const { id } = await c.submit('echo', { n: 1 }, { timeoutMs: 1000, maxAttempts: 2 });
  const r = await c.result(id, { wait: 30 });
  if (r.done) void r.result;
  for await (const ev of c.events()) if (ev.event === 'job') break;
  try {
    await c.retry(id);
  } catch (e) {
    if (e instanceof ClientError) void e.status;
  }
}
void daemon;
