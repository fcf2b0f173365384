#!/usr/bin/env python3
"""Prints bench/serve's table from the JSON lines of bench/serve/run (medians of the runs).

    python3 table.py results.jsonl [--concurrency C]

Ratios are offload / BullMQ: above 1 offload is faster for a throughput; for a latency (queue
wait) above 1 offload waits longer (lower is better there).
"""

import json
import statistics
import sys

META = {}
# A measurement is "quiet" when other processes took less than this share of the machine's CPU
# during it; the table's medians are over the quiet runs when there are any.
QUIET = 0.10

COLUMNS = [
    ("bullmq", "BullMQ, Redis without persistence"),
    ("bullmq-aof", "BullMQ, Redis AOF everysec"),
]


def load(path):
    runs, problems = {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "meta" in r:
                META.update(r["meta"])
                continue
            if "error" in r or r.get("errors") or r.get("timed_out"):
                problems.append(r)
            if "error" in r:
                continue
            runs.setdefault((r.get("label"), r.get("workload")), []).append(r)
    return runs, problems


def med(rs, field):
    vals = [r[field] for r in rs if r.get(field) is not None]
    return statistics.median(vals) if vals else None


def rate(v):
    if v is None:
        return "—"
    return f"{v / 1000:,.1f}k" if v >= 10_000 else f"{v:,.0f}"


def ms(v):
    if v is None:
        return "—"
    return f"{v:,.0f}" if v >= 10 else f"{v:.1f}"


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def spread(rs):
    vals = [r["per_sec"] for r in rs if r.get("per_sec") is not None]
    if len(vals) < 2:
        return ""
    return f" ({rate(min(vals))}–{rate(max(vals))})"


def loads(rs):
    ls = [r["load1_before"] for r in rs if r.get("load1_before") is not None]
    return f"{max(ls):.1f}" if ls else "—"


def others(r):
    """The share of the machine's CPU that other processes used during a measurement."""
    m = r.get("cpu", {}).get("machine")
    if not m or not r.get("seconds"):
        return None
    return m["others"] / (r["seconds"] * int(META.get("cores") or 2))


def others_max(rs):
    vals = [v for v in (others(r) for r in rs) if v is not None]
    return f"{max(vals):.0%}" if vals else "—"


def main():
    args = sys.argv[1:]
    conc = "?"
    if "--concurrency" in args:
        i = args.index("--concurrency")
        conc = args[i + 1]
        del args[i : i + 2]
    runs, problems = load(args[0])
    if "--concurrency" not in sys.argv and META.get("concurrency"):
        conc = META["concurrency"]

    def every(label, workload):
        return runs.get((label, workload), [])

    def get(label, workload):
        # The quiet runs (other processes took < QUIET of the CPU) when there are any.
        rs = every(label, workload)
        quiet = [r for r in rs if others(r) is not None and others(r) < QUIET]
        return quiet or rs

    n_runs = max((len(v) for v in runs.values()), default=0)
    jobs = {w: max((r.get("jobs", 0) for (l, w2), rs in runs.items() if w2 == w for r in rs), default=0)
            for w in ("submit-single", "submit-batch", "e2e", "e2e-single", "paced")}
    c1_jobs = max((r.get("jobs", 0) for r in get("offload-c1", "e2e")), default=0)
    conns = {w: next((r.get("conns") for (l, w2), rs in runs.items() if w2 == w for r in rs), "?")
             for w in ("submit-single", "submit-batch", "e2e", "e2e-single", "paced")}
    paced_rate = next((r.get("rate") for (l, w), rs in runs.items() if w == "paced" for r in rs), "?")
    all_loads = [r["load1_before"] for rs in runs.values() for r in rs if r.get("load1_before") is not None]

    print(f"{n_runs} run(s). Each cell is the median of the quiet runs [quiet/all]: a run is quiet when other "
          f"processes (other people's builds on this shared machine) took less than {QUIET:.0%} of the CPU "
          "during it; when no run was quiet, the median of all. offload: `offload serve`, SQLite store (fsync at every group "
          f"commit), a Node pool of 2 workers × {conc} jobs in flight; BullMQ: a Worker with a sandboxed "
          "processor file, concurrency 2 (2 child processes). No-op jobs everywhere.")
    if META:
        built = "built by this run" if META.get("built_now") == "1" else f"binary of {META.get('binary_time')}, not rebuilt"
        print(f"{META.get('offload', 'offload ?')} at {META.get('commit', '?')} "
              f"({META.get('changed_source_files', '?')} source files changed locally; {built}), Node {META.get('node')}, "
              f"Redis {META.get('redis')}, BullMQ {META.get('bullmq')}, {META.get('cores')} cores.")
    if all_loads:
        print(f"Load average (1 min, 2 cores) before each measurement: median "
              f"{statistics.median(all_loads):.2f}, max {max(all_loads):.2f}; \"load\" is the max over the "
              "runs of the row's cells.")
    print("Ratios: offload / BullMQ (throughput: > 1 = offload faster; wait: > 1 = offload waits longer).")
    print("\"others\": the largest share of the machine's CPU that other processes took during one of the runs "
          "of the row's cells (/proc/stat busy time minus ours).")
    print()
    head = "| measure | offload | " + " | ".join(f"{t} | ratio" for _, t in COLUMNS) + " | load | others |"
    print(head)
    print("|---|---:|" + "---:|---:|" * len(COLUMNS) + "---:|---:|")

    def n(rs, label, workload):
        return f" [{len(rs)}/{len(every(label, workload))}]"

    def row(title, workload, label="offload", peer_workload=None):
        mine = get(label, workload)
        cells = [f"{rate(med(mine, 'per_sec'))}{n(mine, label, workload)}"]
        seen = list(mine)
        for col, _ in COLUMNS:
            theirs = get(col, peer_workload or workload)
            seen += theirs
            cells.append(f"{rate(med(theirs, 'per_sec'))}{n(theirs, col, peer_workload or workload)}")
            cells.append(ratio(med(mine, "per_sec"), med(theirs, "per_sec")))
        print(f"| {title} | " + " | ".join(cells) + f" | {loads(seen)} | {others_max(seen)} |")

    def wait_row(title, workload, label="offload", peer_workload=None):
        mine = get(label, workload)
        p50, p99 = med(mine, "wait_p50_ms"), med(mine, "wait_p99_ms")
        cells = [f"{ms(p50)} / {ms(p99)}{n(mine, label, workload)}"]
        seen = list(mine)
        for col, _ in COLUMNS:
            theirs = get(col, peer_workload or workload)
            seen += theirs
            q50, q99 = med(theirs, "wait_p50_ms"), med(theirs, "wait_p99_ms")
            cells.append(f"{ms(q50)} / {ms(q99)}{n(theirs, col, peer_workload or workload)}")
            cells.append(f"{ratio(p50, q50)} / {ratio(p99, q99)}")
        print(f"| {title} | " + " | ".join(cells) + f" | {loads(seen)} | {others_max(seen)} |")

    # Rows of workloads left out (`run --workloads`) are not printed; a baseline binary
    # (`run --baseline`, label offload-base) gets its own row under each.
    titles = {
        "submit-single": f"(1) submit only, one job per request, {conns.get('submit-single')} in flight, jobs/s",
        "submit-batch": f"(2) submit only, batches of 100, {conns.get('submit-batch')} in flight, jobs/s",
        "e2e": f"(3) **end to end**, {jobs.get('e2e', 0):,} jobs submitted in batches of 100, jobs/s",
        "e2e-single": f"(3s) end to end, {jobs.get('e2e-single', 0):,} jobs submitted one per request "
                      f"({conns.get('e2e-single')} in flight), jobs/s",
    }
    for workload, title in titles.items():
        if every("offload", workload):
            row(title, workload)
        if workload == "submit-single" and every("offload", "submit-wrk"):
            w = get("offload", "submit-wrk")
            row(f"(1w) as (1), offload driven by wrk ({w[0].get('conns')} connections, "
                f"{w[0].get('threads', 1)} thread) instead of the Node client; BullMQ as (1), jobs/s",
                "submit-wrk", peer_workload="submit-single")
            if every("offload-base", "submit-wrk"):
                row("(1w) as above, baseline binary (offload-base)", "submit-wrk",
                    label="offload-base", peer_workload="submit-single")
        if every("offload-base", workload):
            row(title.split(" ", 1)[0] + " as above, baseline binary (offload-base)", workload,
                label="offload-base")
    if get("offload-c1", "e2e"):
        row(f"(3c1) end to end as (3), {c1_jobs:,} jobs, offload with 1 job in flight per worker, jobs/s",
            "e2e", label="offload-c1")
    if get("offload-c1-base", "e2e"):
        row("(3c1) as above, baseline binary (offload-c1-base)", "e2e", label="offload-c1-base")
    if get("offload-c1-ahead", "e2e"):
        row("(3c1a) as (3c1), claim_ahead = 2 (offload-c1-ahead)", "e2e", label="offload-c1-ahead")
    if every("offload", "paced"):
        wait_row(f"(4) queue wait p50 / p99 ms, paced {paced_rate:,} jobs/s one per request", "paced")
    if get("offload-c1", "paced"):
        wait_row("(4c1) queue wait as (4), offload with 1 job in flight per worker", "paced", label="offload-c1")
    if get("offload-c1-base", "paced"):
        wait_row("(4c1) as above, baseline binary (offload-c1-base)", "paced", label="offload-c1-base")
    if get("offload-c1-ahead", "paced"):
        wait_row("(4c1a) as (4c1), claim_ahead = 2 (offload-c1-ahead)", "paced", label="offload-c1-ahead")
    wait_row("(4b) queue wait p50 / p99 ms during (3) (all jobs queued at once: backlog)", "e2e")
    print()

    # CPU during the end-to-end run (3).
    print("CPU during (3), µs of CPU per job (utime+stime from /proc), medians; the share of the "
          "machine is CPU seconds ÷ (wall seconds × 2 cores):")
    print()
    print("| system | server process | of which | job processes | load generator | total | share of 2 cores |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for label, title, server in (
        ("offload", f"offload (c={conc})", "daemon"),
        ("offload-c1", "offload (c=1)", "daemon"),
        ("offload-c1-base", "offload (c=1), baseline binary", "daemon"),
        ("offload-c1-ahead", "offload (c=1), claim_ahead = 2", "daemon"),
        ("bullmq", "BullMQ, no persistence", "redis"),
        ("bullmq-aof", "BullMQ, AOF everysec", "redis"),
    ):
        rs = get(label, "e2e")
        if not rs:
            continue

        def per_k(path):
            vals = []
            for r in rs:
                v = r.get("cpu", {})
                for p in path:
                    v = v.get(p, {}) if isinstance(v, dict) else {}
                if isinstance(v, (int, float)) and r.get("succeeded"):
                    vals.append(v / r["succeeded"] * 1e6)
            return statistics.median(vals) if vals else None

        srv = per_k([server, "total"])
        if label.startswith("offload"):
            kids = per_k([server, "children"])
            names = {}
            for r in rs:
                for name, v in r.get("cpu", {}).get(server, {}).get("threads", {}).items():
                    names.setdefault(name, []).append(v / r["succeeded"] * 1e6 if r.get("succeeded") else 0)
            parts = sorted(((statistics.median(v), n) for n, v in names.items()), reverse=True)
            of = ", ".join(f"{n} {v:.0f}" for v, n in parts if v >= 1)
        else:
            main = per_k(["worker", "total"])
            kids = per_k(["worker", "children"])
            srv_of = f"redis-server {srv:.0f}" if srv is not None else ""
            of = f"{srv_of}, BullMQ Worker process {main:.0f}" if main is not None else srv_of
            srv = (srv or 0) + (main or 0)
        gen = per_k(["loadgen", "total"])
        total = sum(v for v in (srv, kids, gen) if v is not None)
        wall = med(rs, "seconds")
        jobs_done = med(rs, "succeeded")
        share = total * jobs_done / 1e6 / (wall * 2) if wall and jobs_done else None
        f = lambda v: "—" if v is None else f"{v:.0f}"  # noqa: E731
        print(f"| {title} | {f(srv)} | {of} | {f(kids)} | {f(gen)} | {f(total)} | "
              f"{'—' if share is None else f'{share:.0%}'} |")

    # CPU of the single submits: who pays for a request, and how much of the 2 cores the load
    # generator takes (it must not be the bottleneck).
    single = [(l, w, t) for l, w, t in (
        ("offload", "submit-single", "offload (1), Node client"),
        ("offload", "submit-wrk", "offload (1w), wrk"),
        ("offload-base", "submit-wrk", "offload (1w), wrk, baseline binary"),
        ("bullmq", "submit-single", "BullMQ (1), no persistence"),
        ("bullmq-aof", "submit-single", "BullMQ (1), AOF everysec"),
    ) if get(l, w)]
    if single:
        print()
        print("CPU during the single submits, µs of CPU per job (utime+stime from /proc), medians; "
              "share: CPU seconds ÷ (wall seconds × 2 cores):")
        print()
        print("| measure, system | server | of which | load generator | its share of 2 cores | all ours, share |")
        print("|---|---:|---|---:|---:|---:|")
    for label, workload, title in single:
        rs = get(label, workload)
        server = "daemon" if label.startswith("offload") else "redis"

        def per_job(path, rs=rs):
            vals = []
            for r in rs:
                v = r.get("cpu", {})
                for p in path:
                    v = v.get(p, {}) if isinstance(v, dict) else {}
                if isinstance(v, (int, float)) and r.get("jobs"):
                    vals.append(v / r["jobs"] * 1e6)
            return statistics.median(vals) if vals else None

        srv = per_job([server, "total"])
        names = {}
        for r in rs:
            for name, v in r.get("cpu", {}).get(server, {}).get("threads", {}).items():
                if r.get("jobs"):
                    names.setdefault(name, []).append(v / r["jobs"] * 1e6)
        parts = sorted(((statistics.median(v), n) for n, v in names.items()), reverse=True)
        of = ", ".join(f"{n} {v:.0f}" for v, n in parts if v >= 1) if server == "daemon" else "redis-server"
        gen = per_job(["loadgen", "total"])
        rate_ = med(rs, "per_sec")
        f = lambda v: "—" if v is None else f"{v:.0f}"  # noqa: E731
        share = lambda v: "—" if v is None or not rate_ else f"{v * rate_ / 1e6 / 2:.0%}"  # noqa: E731
        print(f"| {title} | {f(srv)} | {of} | {f(gen)} | {share(gen)} | "
              f"{share((srv or 0) + (gen or 0))} |")

    print()
    print("Every run of the throughputs, in order, with [the load average before it, the share of the CPU "
          "other processes took during it]:")
    print()
    print("| measure | system | runs |")
    print("|---|---|---|")
    for workload, title in (("submit-single", "(1)"), ("submit-wrk", "(1w)"), ("submit-batch", "(2)"),
                            ("e2e", "(3)"), ("e2e-single", "(3s)")):
        for label in ("offload", "offload-c1", "offload-c1-ahead", "bullmq", "bullmq-aof"):
            rs = sorted(every(label, workload), key=lambda r: r.get("run", 0))
            if rs:
                cells = ", ".join(
                    f"{rate(r['per_sec'])} [{r.get('load1_before', 0):.1f}"
                    + (f", {others(r):.0%}]" if others(r) is not None else "]")
                    for r in rs)
                shown = {"offload-c1": "(3c1)", "offload-c1-ahead": "(3c1a)"}.get(label, title)
                print(f"| {shown} | {label} | {cells} |")

    if problems:
        print()
        print("Problems:")
        for r in problems:
            what = r.get("error") or r.get("first_error") or ("timed out" if r.get("timed_out") else "")
            print(f"- {r.get('label')} {r.get('workload')} run {r.get('run')}: {r.get('errors', '')} error(s), "
                  f"timed_out={r.get('timed_out')}: {str(what)[:300]}")


if __name__ == "__main__":
    main()
