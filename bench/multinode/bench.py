#!/usr/bin/env python3
"""End-to-end throughput of N `offload serve` nodes on one PostgreSQL database.

For each node count: start the nodes (release binary, `--store URL`), warm them up, then submit
JOBS jobs in HTTP batches of 100 spread over the nodes (one submitter thread per node) and time
until the database says every one succeeded. CPU time of postgres, the daemons and the Node
workers over the run comes from /proc, to show what saturates. `--table FILE` prints the table of
a results file. Called by `run`; stdlib only.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def psql(url, sql):
    out = subprocess.run(
        ["psql", url, "-qAtc", sql], check=True, capture_output=True, text=True
    ).stdout
    return out.strip()


def cpu_by_group(daemons):
    """CPU seconds so far of PostgreSQL (every `postgres` process), the daemons `daemons` (pids)
    and their descendants (the workers). Other processes of the machine are left out."""
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[int(pid)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    groups = {"postgres": 0.0, "offload": 0.0, "workers": 0.0}
    for pid, (comm, ppid, secs) in procs.items():
        if comm.startswith("postgres"):
            groups["postgres"] += secs
        elif pid in daemons:
            groups["offload"] += secs
        else:
            up, seen = ppid, 0
            while up > 1 and up not in daemons and seen < 64:
                up, seen = procs.get(up, ("", 0, 0))[1], seen + 1
            if up in daemons:
                groups["workers"] += secs
    return groups


def machine_busy():
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    idle = cpu[3] + cpu[4]
    return sum(cpu) - idle, sum(cpu)


def post(url, body):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


class Node:
    def __init__(self, offload, url, jobs, config, data, cpu=None):
        # With `cpu`, the node and everything it starts (its workers) run on that core only.
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        self.proc = subprocess.Popen(
            pin + [offload, "serve", "--jobs", jobs, "--data", data, "--listen", "127.0.0.1:0",
             "--store", url, "--config", config, "--lease", "30s"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "OFFLOAD_LOG": "warn"},
        )
        deadline = time.time() + 60
        self.url = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        if not self.url:
            raise SystemExit("offload serve did not start")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wait_succeeded(url, n, limit=600):
    deadline = time.time() + limit
    while time.time() < deadline:
        done = int(psql(url, "SELECT count(*) FROM offload_jobs WHERE state = 'succeeded'"))
        if done >= n:
            return
        time.sleep(0.05)
    raise SystemExit(f"only {done} of {n} jobs succeeded in {limit} s")


def one_run(args, n_nodes):
    try:
        psql(args.url, "TRUNCATE offload_jobs, offload_attempts, offload_counts, "
                       "offload_count_deltas")
    except subprocess.CalledProcessError:
        pass  # no schema yet: the first node creates it
    tmp = tempfile.mkdtemp(prefix="offload-bench-")
    jobs = os.path.join(args.dir, "jobs")
    config = os.path.join(args.dir, "offload.toml")
    cpus = os.cpu_count() or 1
    nodes = [Node(args.offload, args.url, jobs, config, os.path.join(tmp, f"n{i}"),
                  cpu=(i % cpus) if args.pin else None)
             for i in range(n_nodes)]
    try:
        warm = 50 * n_nodes
        for i, node in enumerate(nodes):
            post(f"{node.url}/v1/jobs/batch",
                 {"jobs": [{"job": "noop", "params": {"n": -1}} for _ in range(50)]})
        wait_succeeded(args.url, warm)
        per_node = args.jobs // n_nodes
        load = open("/proc/loadavg").read().split()[0]
        pids = {node.proc.pid for node in nodes}
        cpu0, busy0, t0 = cpu_by_group(pids), machine_busy(), time.time()

        def submit(node, k):
            for b in range(per_node // 100):
                post(f"{node.url}/v1/jobs/batch",
                     {"jobs": [{"job": "noop", "params": {"n": k * per_node + b * 100 + i}}
                               for i in range(100)]})

        threads = [threading.Thread(target=submit, args=(node, k))
                   for k, node in enumerate(nodes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_submitted = time.time()
        total = per_node // 100 * 100 * n_nodes
        wait_succeeded(args.url, warm + total)
        t1, cpu1, busy1 = time.time(), cpu_by_group(pids), machine_busy()
        secs = t1 - t0
        per_node_runs = psql(
            args.url,
            "SELECT string_agg(n::text, ',' ORDER BY n DESC) FROM (SELECT count(*) AS n "
            "FROM offload_attempts GROUP BY node) x",
        )
        result = {
            "measure": "end_to_end", "nodes": n_nodes, "jobs": total, "secs": round(secs, 3),
            "per_sec": round(total / secs), "submit_secs": round(t_submitted - t0, 3),
            "cores": {g: round((cpu1[g] - cpu0[g]) / secs, 2) for g in cpu0},
            # CPU time per job, per component: what saturates first when the cores are ours.
            "cpu_us_per_job": {g: round((cpu1[g] - cpu0[g]) * 1e6 / total) for g in cpu0},
            "machine_busy": round((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 2),
            "attempts_per_node": per_node_runs,
            "loadavg_before": float(load),
            "pinned": bool(args.pin),
        }
        print(json.dumps(result), flush=True)
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def table(path):
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    print("| measure | nodes | jobs | seconds | jobs/s | CPU cores: postgres / daemons / workers "
          "(machine busy, load before) | CPU µs per job: postgres / daemons / workers |")
    print("|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        cores = r.get("cores") or {}
        if "client" in cores:  # the store alone: PostgreSQL and the benchmark process
            cpu = f"{cores['postgres']} / {cores['client']} (client) / - (load {r.get('loadavg_after')})"
        elif cores:
            cpu = (f"{cores['postgres']} / {cores['offload']} / {cores['workers']} "
                   f"({int(r['machine_busy'] * 100)} %, load {r.get('loadavg_before', '?')})")
        else:
            cpu = ""
        us = r.get("cpu_us_per_job")
        per_job = f"{us['postgres']} / {us['offload']} / {us['workers']}" if us else ""
        print(f"| {r['measure']} | {r['nodes']} | {r['jobs']} | {r['secs']:.2f} | "
              f"{int(r['per_sec'])} | {cpu} | {per_job} |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--offload")
    p.add_argument("--url")
    p.add_argument("--jobs", type=int, default=6000)
    p.add_argument("--nodes", default="1,2,3")
    p.add_argument("--pin", action="store_true",
                   help="pin node i (and its workers) to core i mod the core count (taskset)")
    p.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("--table")
    args = p.parse_args()
    if args.table:
        table(args.table)
        return
    for n in [int(x) for x in args.nodes.split(",")]:
        one_run(args, n)


if __name__ == "__main__":
    sys.exit(main())
