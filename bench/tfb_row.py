#!/usr/bin/python3
"""bench/tfb.sh's arithmetic.

    tfb_row.py OUT LOG SERVER_TICKS PG_TICKS HZ ENDPOINT REP MODE
        one row from an h2load run: req/s, p99 (from its --log-file), CPU
        microseconds per request of spindle and of PostgreSQL, 2xx, other
    tfb_row.py --summary ROWS
        per endpoint and repetition: async req/s / blocking req/s, and each
        mode's spindle us/req minus its /json figure in that repetition
"""
import collections
import re
import sys


def row(out, log, sticks, pticks, hz, ep, rep, mode):
    text = open(out, errors="replace").read()
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done", text)
    if not (m and st and done):
        last = text.strip().splitlines()[-1:] or ["?"]
        print("%-3s %-8s %-20s h2load failed: %s" % (rep, mode, ep, last[0]))
        return
    rps = float(m.group(1))
    lat = sorted(int(ln.split()[2]) for ln in open(log) if len(ln.split()) >= 3)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1e3 if lat else float("nan")
    reqs = int(done.group(1))

    def us(t):
        return int(t) * 1e6 / int(hz) / reqs if reqs else float("nan")

    ok = int(st.group(1))
    print("%-3s %-8s %-20s %9.0f %9.2f %14.1f %15.1f %8d %6d" %
          (rep, mode, ep, rps, p99, us(sticks), us(pticks), ok, reqs - ok))


def summary(rows):
    r = collections.defaultdict(dict)   # (rep, ep) -> mode -> (rps, spindle_us)
    eps = []
    for ln in open(rows):
        f = ln.split()
        if len(f) != 9:
            continue
        r[(f[0], f[2])][f[1]] = (float(f[3]), float(f[5]))
        if f[2] not in eps:
            eps.append(f[2])
    reps = sorted({k[0] for k in r}, key=int)
    print("%-20s %s" % ("endpoint", "".join("%-26s" % ("rep " + x) for x in reps)))
    for ep in eps:
        cells = []
        for rep in reps:
            a, b = r[(rep, ep)].get("async"), r[(rep, ep)].get("blocking")
            ja, jb = r[(rep, "/json")].get("async"), r[(rep, "/json")].get("blocking")
            if not (a and b and ja and jb and b[0]):
                cells.append("%-26s" % "-")
                continue
            cells.append("%-26s" % ("%5.2fx %+7.1f %+7.1f" % (a[0] / b[0], a[1] - ja[1],
                                                              b[1] - jb[1])))
        print("%-20s %s" % (ep, "".join(cells)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        summary(sys.argv[2])
    else:
        row(*sys.argv[1:])
