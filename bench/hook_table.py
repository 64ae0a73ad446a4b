#!/usr/bin/python3
"""Markdown tables for bench/RESULTS.md from one bench/hook_cost.sh run.

Inputs (a "-" skips one):
  RAW_HOOK      bench_hook_cost RESULT lines as "name value unit run" (plain_* and shim_* runs)
  RAW_SYSCALL   the anchors' raw_syscall.tsv ("name value unit run note"): plain_*, shim_*
                (their passthrough_shim.so) and fern_* (syscall_cost under libfern_interpose.so)
  CALLGRIND     "case variant instructions_per_call" lines
Every figure is a median over runs of a per-run value; differences and ratios are taken within
a run (the same process for bench_hook_cost, the same run_all.sh round for syscall_cost).

usage: hook_table.py RAW_HOOK RAW_SYSCALL CALLGRIND [DESCRIPTION]
"""
import statistics
import sys
from collections import defaultdict


def load(path, cols):
    """{name: {run: value}} from a tab-separated file (name, value, unit, run, ...)."""
    d = defaultdict(dict)
    if path == "-":
        return d
    try:
        fh = open(path)
    except OSError:
        return d
    for line in fh:
        p = line.rstrip("\n").split("\t")
        if len(p) < cols:
            continue
        try:
            d[p[0]][p[3]] = float(p[1])
        except ValueError:
            pass
    return d


def med(vs):
    vs = list(vs)
    return statistics.median(vs) if vs else None


def fmt(v, digits=3):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "{:.0f}".format(v)
    return "{:.{}g}".format(v, digits) if abs(v) >= 1 else "{:.2f}".format(v)


def rng(d, name):
    """'median [min–max]' over runs."""
    vs = list(d.get(name, {}).values())
    if not vs:
        return "-"
    if len(vs) == 1:
        return fmt(vs[0])
    return "%s [%s–%s]" % (fmt(med(vs)), fmt(min(vs)), fmt(max(vs)))


def per_run(d, a, b, op):
    """Median over the runs both have of op(a[run], b[run])."""
    da, db = d.get(a, {}), d.get(b, {})
    return med(op(da[r], db[r]) for r in da if r in db and db[r] != 0)


def main():
    hook = load(sys.argv[1], 4)
    sysc = load(sys.argv[2], 4)
    cg = {}
    if sys.argv[3] != "-":
        try:
            for line in open(sys.argv[3]):
                p = line.split()
                if len(p) == 3:
                    cg[(p[0], p[1])] = int(p[2])
        except OSError:
            pass
    desc = sys.argv[4] if len(sys.argv) > 4 else ""
    runs = max((len(v) for v in hook.values()), default=0)

    def m(name):
        return med(hook.get(name, {}).values())

    def instr(case, *variants):
        vs = [cg.get((case, v)) for v in variants]
        if any(v is None for v in vs):
            return "-"
        return " / ".join(str(v) for v in vs)

    print("bench_hook_cost: %d run(s) plain and %d under `LD_PRELOAD=libfern_interpose.so`%s. "
          "ns per call; medians over runs of each run's median over its reps. \"added\" = hooked "
          "- direct in the same process, interleaved; the plain runs' \"added\" (the same function "
          "both times) shows the noise floor." % (runs, runs, " (" + desc + ")" if desc else ""))
    print()
    print("**(a) Thread without a hub: the hook must be a passthrough.** Goal: < 2 ns added.")
    print()
    print("| call | direct (libc) | hooked | **added** | noise floor (plain run) | "
          "instructions direct / hooked | goal < 2 ns |")
    print("|---|---:|---:|---:|---:|---:|---|")
    labels = {
        "nohub_read_eagain": "`read()` on an empty O_NONBLOCK pipe (EAGAIN)",
        "nohub_write_devnull": "`write()` of 1 byte to /dev/null",
        "hub_nonblock_read_eagain": "the same `read()` in a fiber on a hub (the program's own "
                                    "O_NONBLOCK: passed through too)",
    }
    for case, text in labels.items():
        added = m("shim_%s_added" % case)
        ok = "-" if added is None else ("**MET**" if added < 2 else "**NOT MET**")
        print("| %s | %s | %s | **%s** | %s | %s | %s |" % (
            text, rng(hook, "shim_%s_direct" % case), rng(hook, "shim_%s_hooked" % case),
            fmt(added), fmt(m("plain_%s_added" % case)), instr(case, "direct", "hooked"), ok))
    print()
    print("**(b) Fiber on a hub: a 1-byte transfer that completes at once.** Goal: < 5% added "
          "over the direct `read()`/`write()`. The shim makes another system call: "
          "preadv2/pwritev2(RWF_NOWAIT) on a pipe, recvfrom/sendto(MSG_DONTWAIT) on a socket; "
          "\"that syscall\" calls it directly, so hooked - that syscall is the shim's own work.")
    print()
    print("| call | direct (libc) | that syscall, direct | hooked | **hooked / direct** | "
          "hooked / that syscall | shim's own ns | noise floor (plain run ratio) | "
          "instructions direct / that syscall / hooked | goal < 5% |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    labels = {
        "hub_pipe_read1": "`read()` 1 byte, pipe",
        "hub_pipe_write1": "`write()` 1 byte, pipe",
        "hub_sock_read1": "`read()` 1 byte, Unix stream socket",
        "hub_sock_write1": "`write()` 1 byte, Unix stream socket",
    }
    for case, text in labels.items():
        s = "shim_" + case
        ratio = m(s + "_ratio")
        vs_same = per_run(hook, s + "_hooked", s + "_samecall", lambda a, b: a / b)
        ok = "-" if ratio is None else ("**MET**" if ratio < 1.05 else "**NOT MET**")
        print("| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s |" % (
            text, rng(hook, s + "_direct"), rng(hook, s + "_samecall"), rng(hook, s + "_hooked"),
            fmt(ratio, 4), fmt(vs_same, 4), fmt(m(s + "_shim_only")),
            fmt(m("plain_%s_ratio" % case), 4), instr(case, "direct", "same", "hooked"), ok))
    print()
    if cg:
        print("Instructions per call are user-space instructions (callgrind, the difference between "
              "runs of 11,000 and 1,000 calls of one variant, the loop included); they do not "
              "depend on load. The kernel's side of a system call is not counted.")
        print()
    if sysc:
        names = [("indirect_call", "indirect call through a function pointer (floor)"),
                 ("clock_gettime_vdso", "`clock_gettime(CLOCK_MONOTONIC)` (vDSO)"),
                 ("getppid", "`getppid()` (not hooked by fern)"),
                 ("syscall_getppid_raw", "`syscall(SYS_getppid)`"),
                 ("read_empty_pipe_eagain", "`read()` on an empty O_NONBLOCK pipe -> EAGAIN")]
        nrun = max(len(v) for v in sysc.values())
        print("**The anchors' `syscall_cost`** (10M calls, ns per call, %d run(s), in one "
              "`run_all.sh syscall` invocation; plain, under their `passthrough_shim.so`, and "
              "under fern's shim via `EXTRA_SYSCALL`). Under fern's shim the main thread has a "
              "hub (the shim gives it one before `main`), so this `read()` takes the hub path, "
              "which sees the program's O_NONBLOCK and makes the real call." % nrun)
        print()
        print("| call | plain | passthrough shim | fern shim | passthrough - plain | "
              "**fern - plain** |")
        print("|---|---:|---:|---:|---:|---:|")
        for n, text in names:
            print("| %s | %s | %s | %s | %s | **%s** |" % (
                text, rng(sysc, "plain_" + n), rng(sysc, "shim_" + n), rng(sysc, "fern_" + n),
                fmt(per_run(sysc, "shim_" + n, "plain_" + n, lambda a, b: a - b)),
                fmt(per_run(sysc, "fern_" + n, "plain_" + n, lambda a, b: a - b))))
        print()


if __name__ == "__main__":
    main()
