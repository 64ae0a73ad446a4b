#!/usr/bin/python3
"""Markdown tables for bench/RESULTS.md from one anchors echo run (bench/echo.sh).

Reads RUN_DIR/raw_echo.tsv (run_all.sh: "server|cN|metric <TAB> value <TAB> unit <TAB> run") and
RUN_DIR/machine.txt. For every server, connection count and run it derives the server's CPU time
per message, srv_proc_cpu_pct / 100 / msgs_per_s (seconds of server process CPU per message), and
its ratio to the epoll server's of the same run and connection count; the tables show medians
over runs. Prints the markdown on stdout.

usage: echo_table.py RUN_DIR [DESCRIPTION]
"""
import os
import statistics
import sys
from collections import defaultdict

BASE = "c_epoll_et"
NAMES = {
    "c_epoll_et": "C epoll ET (anchor; the baseline)",
    "fern_cpp": "**fern C++ API** (`examples/echo_server`)",
    "fern_shim_linked": "**fern shim, linked** (`examples/blocking_echo_server`)",
    "fern_shim_preload": "**fern shim, LD_PRELOAD** (same source, not linked)",
    "go_p1": "Go, GOMAXPROCS=1 (anchor)",
    "gevent": "gevent StreamServer (anchor)",
}
ORDER = list(NAMES)


def med(vs):
    return statistics.median(vs) if vs else None


def fmt(v, digits=3):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 10000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "{:.0f}".format(v)
    return "{:.{}g}".format(v, digits)


def spread(vs, scale=1.0):
    """'median [min–max]' (just the median for one run)."""
    if not vs:
        return "-"
    m = fmt(med(vs) * scale)
    if len(vs) == 1:
        return m
    return "%s [%s–%s]" % (m, fmt(min(vs) * scale), fmt(max(vs) * scale))


def main():
    run_dir = sys.argv[1]
    desc = sys.argv[2] if len(sys.argv) > 2 else ""
    # data[(server, conns)][run][metric] = value
    data = defaultdict(lambda: defaultdict(dict))
    with open(os.path.join(run_dir, "raw_echo.tsv")) as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 4 or parts[0].count("|") != 2:
                continue
            srv, conns, metric = parts[0].split("|")
            try:
                data[(srv, int(conns.lstrip("c")))][parts[3]][metric] = float(parts[1])
            except ValueError:
                continue

    def cpu_us(srv, conns, run):
        m = data.get((srv, conns), {}).get(run, {})
        if m.get("msgs_per_s", 0) > 0 and "srv_proc_cpu_pct" in m:
            return m["srv_proc_cpu_pct"] / 100 / m["msgs_per_s"] * 1e6
        return None

    def metric(srv, conns, run, name):
        return data.get((srv, conns), {}).get(run, {}).get(name)

    def per_run_ratio(a, b, conns, fn):
        """Median over runs of fn(a)/fn(b), both from the same run."""
        rs = []
        for run in data.get((a, conns), {}):
            x, y = fn(a, conns, run), fn(b, conns, run)
            if x is not None and y:
                rs.append(x / y)
        return med(rs)

    def msgs(srv, conns, run):
        return metric(srv, conns, run, "msgs_per_s")

    servers = sorted({s for s, _ in data}, key=lambda s: (ORDER.index(s) if s in ORDER else 99, s))
    conns_list = sorted({c for _, c in data})
    runs = max((len(v) for v in data.values()), default=0)
    machine = {}
    try:
        with open(os.path.join(run_dir, "machine.txt")) as fh:
            for line in fh:
                k, _, v = line.partition(":")
                machine.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    steal = [v for k in data for r in data[k].values() for m, v in r.items() if m == "steal_pct"]
    errors = sum(v for k in data for r in data[k].values() for m, v in r.items() if m == "errors")

    print("Run `%s`%s: %d run(s) per server and connection count, 64-byte messages, closed loop."
          % (os.path.basename(run_dir), " (" + desc + ")" if desc else "", runs))
    print("Machine: %s, %s CPUs, kernel %s; load average at the start %s; host steal median %s%%;"
          " client errors in all runs: %d." % (
              machine.get("Model name", "?"), machine.get("nproc", "?"), machine.get("kernel", "?"),
              " ".join(machine.get("load at start", "?").split()[:3]), fmt(med(steal)), errors))
    print()
    print("| server | conns | msgs/s median [min–max] | x epoll msgs/s | server CPU | "
          "**µs CPU / msg** median [min–max] | **x epoll CPU/msg** | p50 µs | p99 µs |")
    print("|---|---:|---|---:|---:|---|---:|---:|---:|")
    for conns in conns_list:
        for srv in servers:
            runs_d = data.get((srv, conns))
            if not runs_d:
                continue
            rd = sorted(runs_d)
            mps = [runs_d[r]["msgs_per_s"] for r in rd if "msgs_per_s" in runs_d[r]]
            cpu = [runs_d[r]["srv_proc_cpu_pct"] for r in rd if "srv_proc_cpu_pct" in runs_d[r]]
            cpm = [v for v in (cpu_us(srv, conns, r) for r in rd) if v is not None]
            p50 = [runs_d[r]["p50_us"] for r in rd if "p50_us" in runs_d[r]]
            p99 = [runs_d[r]["p99_us"] for r in rd if "p99_us" in runs_d[r]]
            base = srv == BASE
            tr = "1" if base else fmt(per_run_ratio(srv, BASE, conns, msgs))
            cr = "1" if base else fmt(per_run_ratio(srv, BASE, conns, cpu_us))
            print("| %s | %d | %s | %s | %s%% | %s | %s | %s | %s |" % (
                NAMES.get(srv, "`%s`" % srv), conns, spread(mps), tr, fmt(med(cpu)),
                spread(cpm), "**%s**" % cr if srv.startswith("fern") else cr, fmt(med(p50)),
                fmt(med(p99))))
    print()
    print("\"x epoll\" = the median over runs of (this server / the epoll server, same run and "
          "connection count). µs CPU / msg = the server process's CPU time (user + system, "
          "from /proc/PID/stat over the load run) / messages echoed.")
    print()

    # Goals: issue 3.
    def goal_cell(srv, ref, conns, limit, invert=False):
        r = per_run_ratio(srv, ref, conns, cpu_us)
        if r is None:
            return "not measured"
        if limit is None:
            return "%sx" % fmt(1 / r if invert else r)
        if invert:  # ref / srv >= limit
            v = 1 / r
            return "%sx: **%s**" % (fmt(v), "MET" if v >= limit else "NOT MET")
        return "%sx: **%s**" % (fmt(r), "MET" if r <= limit else "NOT MET")

    goals = [
        ("fern C++ CPU/msg within 10% of epoll's (<= 1.10x)", "fern_cpp", BASE, 1.10, False),
        ("shim (linked) CPU/msg within 20% of epoll's (<= 1.20x)", "fern_shim_linked", BASE, 1.20,
         False),
        ("shim (LD_PRELOAD) CPU/msg within 20% of epoll's (<= 1.20x)", "fern_shim_preload", BASE,
         1.20, False),
        ("fern C++ ahead of Go: CPU/msg / Go's < 1", "fern_cpp", "go_p1", 1.0, False),
        ("shim (linked) ahead of Go: CPU/msg / Go's < 1", "fern_shim_linked", "go_p1", 1.0, False),
        (">= 10x gevent: gevent's CPU/msg / fern C++'s", "fern_cpp", "gevent", 10, True),
        (">= 10x gevent: gevent's CPU/msg / the shim's (linked)", "fern_shim_linked", "gevent", 10,
         True),
        ("(no goal) gevent's CPU/msg / the epoll server's (the hand-written floor)", BASE,
         "gevent", None, True),
    ]
    print("| goal (server CPU per message, same-run ratios) | %s |" % " | ".join(
        "%d conns" % c for c in conns_list))
    print("|---|%s" % ("---|" * len(conns_list)))
    for text, srv, ref, limit, inv in goals:
        print("| %s | %s |" % (text, " | ".join(goal_cell(srv, ref, c, limit, inv)
                                               for c in conns_list)))
    cells = []
    for c in conns_list:
        r = per_run_ratio("fern_shim_preload", "fern_shim_linked", c, cpu_us)
        t = per_run_ratio("fern_shim_preload", "fern_shim_linked", c, msgs)
        cells.append("CPU/msg %sx, msgs/s %sx" % (fmt(r), fmt(t)) if r else "not measured")
    print("| preload = link: LD_PRELOAD / linked (no goal; expect 1) | %s |" % " | ".join(cells))
    cells = []
    for c in conns_list:
        t = per_run_ratio("fern_cpp", "go_p1", c, msgs)
        u = per_run_ratio("fern_shim_linked", "go_p1", c, msgs)
        cells.append("C++ %sx, shim %sx" % (fmt(t), fmt(u)) if t else "not measured")
    print("| msgs/s / Go's (no goal) | %s |" % " | ".join(cells))


if __name__ == "__main__":
    main()
