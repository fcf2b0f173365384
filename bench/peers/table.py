#!/usr/bin/env python3
"""Prints the pool benchmark's table from the JSON lines of bench/peers/run (medians of runs).

    python3 table.py results.jsonl

Ratios are speeds relative to offload with Rust workers (1.00 = the same, 0.25 = four times
slower, 2.00 = twice as fast): throughput / offload-rust's throughput for (a) and (c), and
offload-rust's p50 / this system's p50 for (b). The "÷ floor" columns are the same ratios
taken to the floor row (a bare Rust supervisor and worker on a socketpair), when it ran.
"""

import json
import statistics
import sys

ROWS = [
    ("floor", "floor: bare Rust supervisor + worker, socketpair, no offload code"),
    ("offload-rust-base", "offload, Rust workers, $BASE_WORKER (before)"),
    ("offload-rust-before", "offload, Rust workers, supervisor $BASE_BENCH (before)"),
    ("offload-rust", "offload, Rust workers"),
    ("offload-rust-ct", "offload, Rust workers, current-thread runtime (experiment)"),
    ("offload-node", "offload, Node workers"),
    ("offload-python", "offload, Python workers"),
    ("addon-before", "offload from Node (addon), $BASE_ADDON (before)"),
    ("addon", "offload from Node (addon)"),
    ("ee-core", "ee-core 4.x ChildPoolJob"),
    ("workerpool", "workerpool (process)"),
    ("piscina", "piscina (threads)"),
    ("fork", "raw child_process.fork"),
    ("multiprocessing", "Python multiprocessing.Pool"),
    ("offload-executor", "offload.ProcessPoolExecutor (Python, bindings/python)"),
    ("py-executor", "Python concurrent.futures.ProcessPoolExecutor"),
    ("loky", "loky (joblib's executor)"),
]


def load(path):
    runs = {}
    errors = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            key = (r.get("system"), r.get("workload"))
            # (b) is bounded in time by design: reaching the bound is not a problem.
            if "error" in r or r.get("errors") or (r.get("timed_out") and r.get("workload") != "b"):
                errors.append(r)
            if "error" in r:
                continue
            runs.setdefault(key, []).append(r)
    return runs, errors


def med(rs, field):
    vals = [r[field] for r in rs if r.get(field) is not None]
    return statistics.median(vals) if vals else None


def fmt_rate(v):
    if v is None:
        return "—"
    return f"{v / 1000:,.1f}k" if v >= 10_000 else f"{v:,.0f}"


def fmt_ratio(v):
    return "—" if v is None else f"{v:.2f}"


def fmt_us(v):
    if v is None:
        return "—"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def spread(rs, field):
    vals = [r[field] for r in rs if r.get(field) is not None]
    if len(vals) < 2:
        return ""
    lo, hi = min(vals), max(vals)
    return f" ({fmt_rate(lo)}–{fmt_rate(hi)})"


def config(system, rs_by_w):
    for w in "abc":
        rs = rs_by_w.get(w) or []
        if rs:
            r = rs[0]
            if system.startswith("offload") or system == "floor":
                c = {w2: (rs_by_w.get(w2) or [{}])[0].get("concurrency") for w2 in "abc"}
                return "2 workers, concurrency/worker a={a} b={b} c={c}".format(
                    **{k: ("—" if v is None else v) for k, v in c.items()}
                )
            return r.get("note", "")
    return ""


def main():
    runs, errors = load(sys.argv[1])
    base = {w: runs.get(("offload-rust", w), []) for w in "abc"}
    base_a = med(base["a"], "per_sec")
    base_b = med(base["b"], "p50_us")
    base_c = med(base["c"], "per_sec")
    floor = {w: runs.get(("floor", w), []) for w in "abc"}
    floor_a = med(floor["a"], "per_sec")
    floor_b = med(floor["b"], "p50_us")
    floor_c = med(floor["c"], "per_sec")
    n_runs = max((len(v) for v in runs.values()), default=0)
    tasks = {w: max((r["tasks"] for (s, w2), rs in runs.items() if w2 == w for r in rs), default=0) for w in "abc"}
    print(
        f"Medians of {n_runs} run(s); 2 workers everywhere. (a) {tasks['a']:,} tiny tasks (x+1) "
        f"submitted at once; (b) tiny tasks one at a time (up to {tasks['b']:,}, time-bounded); "
        f"(c) {tasks['c']:,} tasks busy-waiting 1 ms (ideal 2,000/s)."
    )
    loads = [r["load1_before"] for rs in runs.values() for r in rs if r.get("load1_before") is not None]
    if loads:
        print(
            f"Machine load average (1 min) before each run: median {statistics.median(loads):.2f}, "
            f"max {max(loads):.2f} (2 cores; the benchmark's own runs account for ≈ 2 of it, the rest is "
            f"other processes competing for the cores)."
        )
    print("Ratios: speed relative to offload-rust (a, c: tasks/s ÷ offload-rust's; b: offload-rust's p50 ÷ this p50);")
    print("÷ floor: the same relative to the floor row.")
    print()
    header = ("| system | (a) tasks/s | ratio | ÷ floor | (b) p50 / p99 µs | ratio | ÷ floor "
              "| (c) tasks/s | ratio | ÷ floor |")
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for system, label in ROWS:
        by_w = {w: runs.get((system, w), []) for w in "abc"}
        if not any(by_w.values()):
            continue
        a = med(by_w["a"], "per_sec")
        p50 = med(by_w["b"], "p50_us")
        p99 = med(by_w["b"], "p99_us")
        c = med(by_w["c"], "per_sec")
        print(
            f"| {label} | {fmt_rate(a)} | {fmt_ratio(a / base_a if a and base_a else None)} "
            f"| {fmt_ratio(a / floor_a if a and floor_a else None)} "
            f"| {fmt_us(p50)} / {fmt_us(p99)} | {fmt_ratio(base_b / p50 if p50 and base_b else None)} "
            f"| {fmt_ratio(floor_b / p50 if p50 and floor_b else None)} "
            f"| {fmt_rate(c)} | {fmt_ratio(c / base_c if c and base_c else None)} "
            f"| {fmt_ratio(c / floor_c if c and floor_c else None)} |"
        )
    print()
    print("Settings, and the spread (min–max) of the throughputs over the runs:")
    print()
    print("| system | settings | (a) min–max | (c) min–max | start ms |")
    print("|---|---|---:|---:|---:|")
    for system, label in ROWS:
        by_w = {w: runs.get((system, w), []) for w in "abc"}
        if not any(by_w.values()):
            continue
        all_runs = [r for rs in by_w.values() for r in rs]
        start = med(all_runs, "start_ms")
        print(
            f"| {label} | {config(system, by_w)} | {spread(by_w['a'], 'per_sec').strip(' ()') or '—'} "
            f"| {spread(by_w['c'], 'per_sec').strip(' ()') or '—'} | {start:.0f} |"
            if start is not None
            else f"| {label} | {config(system, by_w)} | — | — | — |"
        )
    print()
    print("CPU per task (µs, from /proc: utime+stime) and context switches per task, medians:")
    print("\"parent\" is the submitting process (offload's supervisor, the Node/Python main process;")
    print("piscina's threads count as the parent), \"workers\" the worker processes.")
    print()
    print("\"ceiling\": 2 cores ÷ (parent + workers CPU per task), the (a) rate if nothing else ran and no")
    print("core ever idled.")
    print()
    print("| system | (a) parent µs | (a) workers µs | (a) ceiling | (a) parent / workers switches | (b) parent µs | (b) workers µs | (b) parent / workers switches |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for system, label in ROWS:
        a = runs.get((system, "a"), [])
        b = runs.get((system, "b"), [])
        if not a and not b:
            continue

        def f(rs, k):
            v = med(rs, k)
            return "—" if v is None else f"{v:.1f}"

        pa, wa = med(a, "sup_cpu_us_per_task"), med(a, "workers_cpu_us_per_task")
        ceiling = fmt_rate(2e6 / (pa + wa)) if pa is not None and wa is not None and pa + wa > 0 else "—"
        print(
            f"| {label} | {f(a, 'sup_cpu_us_per_task')} | {f(a, 'workers_cpu_us_per_task')} | {ceiling} "
            f"| {f(a, 'sup_switches_per_task')} / {f(a, 'workers_switches_per_task')} "
            f"| {f(b, 'sup_cpu_us_per_task')} | {f(b, 'workers_cpu_us_per_task')} "
            f"| {f(b, 'sup_switches_per_task')} / {f(b, 'workers_switches_per_task')} |"
        )
    if errors:
        print()
        print("Problems:")
        for r in errors:
            what = r.get("error") or r.get("first_error") or ("timed out" if r.get("timed_out") else "")
            print(f"- {r.get('system')} ({r.get('workload')}) run {r.get('run')}: "
                  f"{r.get('errors', '')} error(s), timed_out={r.get('timed_out')}: {str(what)[:300]}")


if __name__ == "__main__":
    main()
