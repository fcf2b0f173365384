#!/usr/bin/env python3
"""Shares of the supervisor's perf samples by frame (bench/peers/README.md, "The supervisor's data path").

    perf record -F 4000 --call-graph dwarf,8192 -o pool.data -- <pool bench binary> --kind rust --workload a ...
    perf script -i pool.data -F pid,tid,comm,ip,sym | python3 bench/peers/perf-breakdown.py <supervisor pid>

A sample counts for a label when any frame of its stack contains the label's text (inclusive
shares; labels overlap). Then the top self frames and a split of the self samples by kind.
"""
import sys, collections
tgid = sys.argv[1]
keys = [
 ("pool actor (offload_pool::actor::run)", "offload_pool::actor::run"),
 ("  of which dispatch/send_to", "offload_pool::actor::jobs::<impl offload_pool::actor::Actor>::dispatch"),
 ("  of which on_answer/finish", "on_answer"),
 ("process actor (Actor::run)", "process::actor::{impl#0}::run"),
 ("  of which decode_from_worker", "decode_from_worker"),
 ("outbox flush (caller's direct write)", "outbox::Outbox::flush"),
 ("outbox writer task", "outbox::write_loop"),
 ("  sweep_leftovers (cgroup.procs read)", "sweep_leftovers"),
 ("  pids_with_env (bench harness?)", "pids_with_env"),
 ("oneshot send", "oneshot::Sender<T>::send"),
 ("mpsc send/recv", "mpsc::"),
 ("client (bench one_run: run(), result())", "pool::one_run"),
 ("  of which ChildPool::run_with", "run_with"),
 ("tokio park/unpark (park, epoll_wait, futex)", "park"),
]
samples = []
cur = None
for line in sys.stdin:
    if not line.strip():
        if cur: samples.append(cur)
        cur = None
        continue
    if not line.startswith((" ", "\t")):
        tok = [t for t in line.split() if "/" in t and t.split("/")[0].isdigit()]
        cur = {"pid": tok[0].split("/")[0] if tok else "?", "frames": []}
        continue
    if cur is not None:
        f = line.strip().split(None, 1)
        sym = f[1] if len(f) > 1 else f[0]
        if f[0].startswith("ffffffff"): sym = "[kernel] " + sym
        cur["frames"].append(sym)
if cur: samples.append(cur)
mine = [s for s in samples if s["pid"] == tgid]
tot = len(samples)
print(f"samples: {tot}, supervisor {len(mine)} ({100*len(mine)/tot:.1f} %)")
for label, k in keys:
    n = sum(1 for s in mine if any(k in fr for fr in s["frames"]))
    print(f"{label:<48} {100*n/len(mine):5.1f} % of the supervisor")
selfc = collections.Counter()
for s in mine:
    if s["frames"]:
        selfc[s["frames"][0][:90]] += 1
print("top self frames:")
for f, n in selfc.most_common(25):
    print(f"  {100*n/len(mine):5.1f} %  {f}")
cats = collections.Counter()
for s in mine:
    top = s["frames"][0] if s["frames"] else ""
    c = "other"
    if any(x in top for x in ("malloc", "free", "realloc", "cfree", "_int_")): c = "malloc/free"
    elif "serde_json" in top or "serde::" in top: c = "serde"
    elif "[kernel" in top or top.startswith(("entry_", "__x64", "do_syscall")) or "kernel" in top: c = "kernel"
    elif "tokio" in top: c = "tokio"
    cats[c] += 1
print("self by category:", {k: f"{100*v/len(mine):.1f} %" for k, v in cats.most_common()})
