'use strict';
// A client for the daemon (`offload serve`, docs/http-api.md), on Node's own fetch.
// Every request body is JSON with `Content-Type: application/json`; an error answer becomes a
// ClientError whose `code` is the daemon's (`unknown_job`, `not_found`, `conflict`, …) and
// `status` its HTTP status.

const { OffloadError } = require('./errors');
const { EventStream } = require('./events');

class ClientError extends OffloadError {
  constructor(message, { code, status, job = null } = {}) {
    super(message, { code, job });
    this.status = status;
  }
}

const MAX_SSE_LINE = 16 * 1024 * 1024;

class Client {
  /** @param {{server?: string, token?: string, timeout?: number}} [opts] */
  constructor({ server = process.env.OFFLOAD_SERVER || 'http://127.0.0.1:7070', token = process.env.OFFLOAD_TOKEN, timeout = 70_000 } = {}) {
    let url;
    try {
      url = new URL(server);
    } catch {
      throw new ClientError(`server ${JSON.stringify(server)} is not a URL`, { code: 'invalid_request' });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ClientError(`server ${JSON.stringify(server)}: only http and https`, { code: 'invalid_request' });
    }
    this.server = url.href.replace(/\/$/, '');
    this.token = token || null;
    this.timeout = timeout;
  }

  headers(json) {
    const h = { Accept: 'application/json' };
    if (json) h['Content-Type'] = 'application/json';
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  async request(method, path, body, { accept = [200, 201] } = {}) {
    const init = { method, headers: this.headers(body !== undefined), signal: AbortSignal.timeout(this.timeout) };
    if (body !== undefined) init.body = JSON.stringify(body);
    let res;
    try {
      res = await fetch(this.server + path, init);
    } catch (e) {
      throw new ClientError(`${method} ${path}: cannot reach ${this.server}: ${e.cause ? e.cause.message || e.cause.code : e.message}`, { code: 'unreachable', status: 0 });
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!accept.includes(res.status)) {
      const err = data && data.error ? data.error : { code: `http_${res.status}`, message: text.slice(0, 500) };
      throw new ClientError(`${method} ${path}: ${res.status} ${err.code}: ${err.message}`, { code: err.code, status: res.status });
    }
    return { status: res.status, data };
  }

  /** Submit a job: `{id, state, duplicate?}`. Options: priority, delayMs, runAt, timeoutMs, maxAttempts, idempotencyKey. */
  async submit(job, params, opts = {}) {
    return (await this.request('POST', '/v1/jobs', submitBody(job, params, opts))).data;
  }

  /** Submit up to 1,000 jobs in one transaction: `[{id, state, duplicate}]`. Each item: `{job, params, ...opts}`. */
  async submitBatch(items) {
    if (!Array.isArray(items) || items.length === 0 || items.length > 1000) {
      throw new ClientError('submitBatch: 1 to 1,000 jobs', { code: 'invalid_request' });
    }
    const jobs = items.map(({ job, params, ...opts }) => submitBody(job, params, opts));
    return (await this.request('POST', '/v1/jobs/batch', { jobs })).data.jobs;
  }

  /** The job's record (state, attempts, result, error, progress). */
  async status(id) {
    return (await this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`)).data;
  }

  /** `{id, state, result, error}` once it is over; with `wait` (seconds, at most 60) long-polls;
   * `{id, state, progress}` (done: false) while it is not. */
  async result(id, { wait = 0 } = {}) {
    const w = Math.max(0, Math.min(60, Math.floor(Number(wait) || 0)));
    const { status, data } = await this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/result?wait=${w}`, undefined, { accept: [200, 202] });
    return { ...data, done: status === 200 };
  }

  /** Cancel: `{id, state}`. */
  async cancel(id) {
    return (await this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`, {})).data;
  }

  /** Retry a dead or cancelled job: `{id, state}`. */
  async retry(id) {
    return (await this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/retry`, {})).data;
  }

  /** Jobs, newest first: `{jobs, next_cursor}`. */
  async list({ state, job, limit, cursor } = {}) {
    const q = new URLSearchParams();
    if (state) q.set('state', state);
    if (job) q.set('job', job);
    if (limit !== undefined) q.set('limit', String(limit));
    if (cursor) q.set('cursor', cursor);
    const s = q.toString();
    return (await this.request('GET', `/v1/jobs${s ? `?${s}` : ''}`)).data;
  }

  /** The daemon's events (`GET /v1/events`, server-sent events) as an async iterator of
   * `{event, data}`; `return()` (breaking out of for-await) closes the connection. */
  events() {
    const ac = new AbortController();
    const stream = new EventStream(() => ac.abort());
    (async () => {
      let res;
      try {
        res = await fetch(`${this.server}/v1/events`, { headers: { ...this.headers(false), Accept: 'text/event-stream' }, signal: ac.signal });
      } catch (e) {
        stream.error = e;
        stream.end();
        return;
      }
      if (res.status !== 200) {
        stream.error = new ClientError(`GET /v1/events: ${res.status}`, { code: `http_${res.status}`, status: res.status });
        stream.end();
        return;
      }
      const decoder = new TextDecoder();
      let buf = '';
      let event = 'message';
      let data = [];
      try {
        for await (const chunk of res.body) {
          buf += decoder.decode(chunk, { stream: true });
          if (buf.length > MAX_SSE_LINE) throw new Error('an event line exceeds 16 MiB');
          let nl;
          while ((nl = buf.indexOf('\n')) !== -1) {
            const line = buf.slice(0, nl).replace(/\r$/, '');
            buf = buf.slice(nl + 1);
            if (line === '') {
              if (data.length) {
                const text = data.join('\n');
                let parsed = text;
                try {
                  parsed = JSON.parse(text);
                } catch {
                  // not JSON: kept as text
                }
                stream.push({ event, data: parsed });
              }
              event = 'message';
              data = [];
            } else if (line.startsWith(':')) {
              // keep-alive comment
            } else if (line.startsWith('event:')) {
              event = line.slice(6).trim();
            } else if (line.startsWith('data:')) {
              data.push(line.slice(5).replace(/^ /, ''));
            }
          }
        }
      } catch (e) {
        if (!ac.signal.aborted) stream.error = e;
      }
      stream.end();
    })();
    return stream;
  }
}

function submitBody(job, params, opts) {
  if (typeof job !== 'string' || job === '') throw new ClientError(`job ${JSON.stringify(job)}: a job name is a non-empty string`, { code: 'invalid_request' });
  const body = { job, params: params === undefined ? null : params };
  if (opts.priority !== undefined) body.priority = opts.priority;
  if (opts.delayMs !== undefined) body.delay_ms = opts.delayMs;
  if (opts.runAt !== undefined) body.run_at = opts.runAt;
  if (opts.timeoutMs !== undefined) body.timeout_ms = opts.timeoutMs;
  if (opts.maxAttempts !== undefined) body.max_attempts = opts.maxAttempts;
  if (opts.idempotencyKey !== undefined) body.idempotency_key = opts.idempotencyKey;
  try {
    JSON.stringify(body);
  } catch (e) {
    throw new ClientError(`job ${JSON.stringify(job)}: its params are not JSON-serialisable: ${e.message}`, { code: 'invalid_request', job });
  }
  return body;
}

module.exports = { Client, ClientError };
