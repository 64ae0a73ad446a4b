"""Baseline for the DNS benchmark: gevent resolving every name of a file with a pool of
greenlets. The resolver is gevent's choice by GEVENT_RESOLVER (thread: the default, glibc in
gevent's thread pool; ares: c-ares, like fern).

    usage: GEVENT_RESOLVER=ares python3 gevent_resolve.py NAMES-FILE CONCURRENCY
Prints "RESULT gevent_<resolver>_c<N> <lookups/s> 1/s failures=<n>".
"""
import os
import resource
import socket as _stdsocket
import sys
import time

import gevent
import gevent.pool
import gevent.socket


def main():
    names = [l.strip() for l in open(sys.argv[1]) if l.strip()]
    conc = int(sys.argv[2])
    failures = 0

    def one(name):
        nonlocal failures
        try:
            if not gevent.socket.getaddrinfo(name, None, _stdsocket.AF_INET, _stdsocket.SOCK_STREAM):
                failures += 1
        except Exception:
            failures += 1

    pool = gevent.pool.Pool(conc)
    t0 = time.monotonic()
    for n in names:
        pool.spawn(one, n)
    pool.join()
    dt = time.monotonic() - t0
    res = os.environ.get("GEVENT_RESOLVER", "thread")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu_us = (ru.ru_utime + ru.ru_stime) / len(names) * 1e6
    print(f"RESULT gevent_{res}_c{conc} {len(names) / dt:.0f} 1/s failures={failures} "
          f"cpu_us_per_lookup={cpu_us:.1f}")


main()
