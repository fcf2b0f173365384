#!/usr/bin/env python3
"""A chaos run of `offload serve` (issue 11, deliverable 12). Not a test: a bounded campaign.

For `--minutes`, submitters keep sending jobs (`jobs/work.js`: random length, some fail on
purpose, some leave a grandchild that calls setsid and ignores SIGTERM, some of those with a
scrubbed environment), while a chaos thread, every 0.3–1.5 s, does one of:
- SIGKILL a random worker (pid from `GET /v1/workers`);
- SIGKILL a random grandchild left by a job;
- SIGKILL a daemon, then start it again on the same port and data (with `--store postgres://…`,
  two nodes share the database and only one is down at a time).
Then the load stops, every node is brought up, and the run waits for every job whose submit was
acknowledged to end (until none has ended for 60 s, 30 min at most), stops the nodes gracefully and checks the invariants:
1. every acknowledged job reached a final state (succeeded, dead, cancelled);
2. no two runs of one job overlapped (the job's own exclusive lock, see jobs/work.js);
3. attempt counts match: the runs a job logged ≤ the attempts its record counts ≤ max_attempts,
   and a succeeded job's result is its own tag;
4. no process left behind (nothing in /proc names the run's folder, in argv or environment).
Exit 0 when every invariant holds, 1 otherwise. Stdlib only; called by `run`.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

FINAL = {"succeeded", "dead", "cancelled"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None


class Node:
    """One `offload serve` process that can be killed and started again on the same port."""

    def __init__(self, name, binary, root, jobs, store):
        self.name, self.binary, self.jobs, self.store = name, binary, jobs, store
        self.config = os.path.join(root, "offload.toml")
        self.data = os.path.join(root, f"data-{name}")
        self.log = open(os.path.join(root, f"{name}.log"), "ab")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.lock = threading.Lock()

    def start(self):
        argv = [self.binary, "serve", "--jobs", self.jobs, "--data", self.data,
                "--config", self.config,
                "--listen", f"127.0.0.1:{self.port}", "--lease", "3s", "--grace", "2s"]
        if self.store:
            argv += ["--store", self.store]
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if http("GET", self.url + "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"chaos: node {self.name} exited at start; see {self.log.name}")
            time.sleep(0.1)
        raise SystemExit(f"chaos: node {self.name} did not answer in 60 s")

    def up(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.up():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.up():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def processes_naming(needle):
    """Pids whose argv or environment contains `needle` (bytes)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as f:
                    if needle in f.read():
                        found.append(int(pid))
                        break
            except OSError:
                pass
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--store", help="postgres:// URL: run two nodes on it")
    ap.add_argument("--submitters", type=int, default=4)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--workers", type=int, default=2, help="resident workers per node")
    ap.add_argument("--concurrency", type=int, default=16, help="jobs in flight per worker")
    ap.add_argument("--claim-ahead", type=int, default=0,
                    help="the pool's claim_ahead: jobs claimed beyond its free slots and held")
    ap.add_argument("--default-pool", action="store_true",
                    help="no [[pool]]: the daemon's default pool (0-2 workers on demand, 1 job each)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    here = os.path.dirname(os.path.abspath(__file__))
    root = tempfile.mkdtemp(prefix="offload-chaos-")
    for sub in ("runs", "running", "overlaps"):
        os.mkdir(os.path.join(root, sub))
    jobs = os.path.join(here, "jobs")
    with open(os.path.join(root, "offload.toml"), "w") as f:
        if not args.default_pool:
            f.write(f'[[pool]]\nname = "chaos"\njobs = ["work"]\nkind = "node"\nmin = {args.workers}\n'
                    f'max = {args.workers}\nconcurrency = {args.concurrency}\n'
                    f'claim_ahead = {args.claim_ahead}\n')
    nodes = [Node("a", args.bin, root, jobs, args.store)]
    if args.store:
        nodes.append(Node("b", args.bin, root, jobs, args.store))
    for n in nodes:
        n.start()
    print(f"chaos: seed {args.seed}, {len(nodes)} node(s), folder {root}", flush=True)

    acked = {}  # tag -> job id
    acked_lock = threading.Lock()
    stop = threading.Event()
    counts = {"submit_refused": 0, "submit_unreachable": 0, "kill_worker": 0,
              "kill_grandchild": 0, "kill_daemon": 0}

    def submitter(k):
        r = random.Random(args.seed * 1000 + k)
        i = 0
        while not stop.is_set():
            tag = f"t{k}-{i}"
            i += 1
            body = {"job": "work", "max_attempts": 5, "idempotency_key": tag, "params": {
                "dir": root, "tag": tag, "ms": r.choice([0, 5, 50, 200, 800]),
                "fail": r.random() < 0.08, "spawn": r.random() < 0.15, "scrub": r.random() < 0.5}}
            # A submit whose answer was lost (the daemon died) is sent again with the same key.
            for _ in range(50):
                live = [n for n in nodes if n.up()]
                if not live or stop.is_set():
                    time.sleep(0.05)
                    continue
                try:
                    status, ans = http("POST", r.choice(live).url + "/v1/jobs", body)
                except OSError:
                    counts["submit_unreachable"] += 1
                    time.sleep(0.05)
                    continue
                if status in (200, 201):
                    with acked_lock:
                        acked[tag] = ans["id"]
                    break
                counts["submit_refused"] += 1
                time.sleep(0.05)
            time.sleep(0.02 + r.random() * 0.03)  # ≈ 25 submits/s per submitter

    def chaos():
        while not stop.wait(rng.uniform(0.3, 1.5)):
            what = rng.choices(["worker", "grandchild", "daemon"], [6, 3, 1])[0]
            if what == "worker":
                n = rng.choice([n for n in nodes if n.up()] or nodes)
                try:
                    ws = http("GET", n.url + "/v1/workers", timeout=2)[1]["workers"]
                except (OSError, TypeError, KeyError):
                    continue
                if ws:
                    try:
                        os.kill(rng.choice(ws)["pid"], signal.SIGKILL)
                        counts["kill_worker"] += 1
                    except ProcessLookupError:
                        pass
            elif what == "grandchild":
                kids = [p for p in processes_naming(f": {root}".encode())]
                if kids:
                    try:
                        os.kill(rng.choice(kids), signal.SIGKILL)
                        counts["kill_grandchild"] += 1
                    except ProcessLookupError:
                        pass
            else:
                n = rng.choice(nodes)
                n.kill9()
                counts["kill_daemon"] += 1
                time.sleep(rng.uniform(0.2, 2.0))
                n.start()

    threads = [threading.Thread(target=submitter, args=(k,)) for k in range(args.submitters)]
    threads.append(threading.Thread(target=chaos))
    for t in threads:
        t.start()
    time.sleep(args.minutes * 60)
    stop.set()
    for t in threads:
        t.join()
    for n in nodes:
        if not n.up():
            n.start()
    print(f"chaos: load stopped: {len(acked)} jobs acknowledged; {counts}", flush=True)

    # 1. every acknowledged job ends (bounded wait).
    # A job that never ends is told from a queue that drains slowly by progress: the wait ends
    # when no pending job has moved (ended, or changed state or attempt) for 60 s, or after
    # 30 min in all. Ends alone are not progress enough: with one job in flight per worker the
    # tail is the jobs that fail on purpose, retried round-robin, and none of them may reach its
    # last attempt for minutes (seed 23, concurrency 1: 886 such jobs, no end for 60 s).
    records = {}
    deadline = time.monotonic() + 1800
    last_move = time.monotonic()
    pending = dict(acked)
    seen = {}  # tag -> (state, attempt) at the last poll
    while pending and time.monotonic() < deadline and time.monotonic() - last_move < 60:
        moved = False
        for tag, jid in list(pending.items()):
            try:
                status, rec = http("GET", nodes[0].url + f"/v1/jobs/{jid}")
            except OSError:
                continue
            if status != 200:
                continue
            now = (rec["state"], rec.get("attempt"))
            if seen.get(tag) != now:
                seen[tag] = now
                moved = True
            if rec["state"] in FINAL:
                records[tag] = rec
                del pending[tag]
        if moved:
            last_move = time.monotonic()
        if pending:
            print(f"chaos: {len(pending)} jobs still to end", flush=True)
            time.sleep(2)
    for n in nodes:
        n.stop()
    time.sleep(1)

    failures = []
    if pending:
        failures.append(f"{len(pending)} acknowledged jobs never ended, e.g. "
                        f"{list(pending.items())[:3]}")
    # 2. overlaps
    overlaps = os.listdir(os.path.join(root, "overlaps"))
    if overlaps:
        failures.append(f"{len(overlaps)} runs overlapped another run of the same job: "
                        f"{overlaps[:5]}")
    # 3. attempts
    states = {}
    bad_attempts = []
    for tag, rec in records.items():
        states[rec["state"]] = states.get(rec["state"], 0) + 1
        try:
            with open(os.path.join(root, "runs", tag)) as f:
                runs = len(f.read().split())
        except FileNotFoundError:
            runs = 0
        attempts = rec.get("attempt", 0)
        # A job whose every remaining attempt was interrupted by its daemon's death is claimed
        # once more and ended `attempts_exhausted` without running (engine.rs, start_job).
        history = rec.get("attempts") or []
        exhausted = bool(history) and history[-1].get("outcome") == "attempts_exhausted"
        allowed = rec.get("max_attempts", 5) + (1 if exhausted else 0)
        if not runs <= attempts <= allowed and rec["state"] != "cancelled":
            bad_attempts.append((tag, runs, attempts, rec["state"]))
        if rec["state"] == "succeeded" and (rec.get("result") or {}).get("tag") != tag:
            bad_attempts.append((tag, "result", rec.get("result")))
    if bad_attempts:
        failures.append(f"{len(bad_attempts)} jobs whose runs and attempts disagree: "
                        f"{bad_attempts[:5]}")
    # 4. leftovers
    left = processes_naming(root.encode())
    if left:
        failures.append(f"{len(left)} processes left behind: {left[:10]}")
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    summary = {"seed": args.seed, "minutes": args.minutes, "nodes": len(nodes),
               "acknowledged": len(acked), "final_states": states, "chaos": counts,
               "failures": failures}
    print(json.dumps(summary, indent=2))
    if failures:
        print(f"chaos: FAILED ({len(failures)} invariants broken); logs in {root}")
        return 1
    print("chaos: every invariant held")
    subprocess.run(["rm", "-rf", root])
    return 0


if __name__ == "__main__":
    sys.exit(main())
