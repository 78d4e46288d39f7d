#!/usr/bin/python3
"""bench/haproxy.py - requests/s and CPU per request through HAProxy
(deploy/haproxy.cfg, h2c frontend) with 1, 2 and 3 spindle instances
(one shard each) behind it (docs/deploy.md, "Figures").

    /usr/bin/python3 bench/haproxy.py build/apps/hello/spindle-hello [--quick]
        [--seconds N] [--clients C] [--streams M] [--shards S]

For each instance count: h2load -D N -c C -m M against HAProxy; CPU is
utime + stime from /proc of the spindle processes and of HAProxy over the
run.  Prints a Markdown table.  --quick: 2 s per row (proves the script
runs).  Unused backend servers are put in maintenance over the admin
socket.  On a shared machine the figures are noisy: say so with them."""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.dont_write_bytecode = True
import harness  # noqa: E402
from harness import free_port, parse_h2load  # noqa: E402
from haproxy_util import HAProxy, start_instance, stop_all  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def row(n, args):
    ports = [free_port() for _ in range(3)]
    servers = []
    try:
        servers = [start_instance(ports[i], shards=args.shards) for i in range(n)]
        backend = ports[:n] + [ports[0]] * (3 - n)  # unused slots: disabled below
        with HAProxy(backend) as lb:
            for i in range(n, 3):
                lb.command("disable server be_spindle/s%d" % (i + 1))
            for i in range(n):
                lb.wait_status("s%d" % (i + 1), "UP", 10)
            pids = [s.pid for s in servers]
            c0 = [cpu_seconds(p) for p in pids]
            h0 = cpu_seconds(lb.proc.pid)
            t0 = time.monotonic()
            out = subprocess.run(["h2load", "-D", str(args.seconds), "-c", str(args.clients),
                                  "-m", str(args.streams),
                                  "http://127.0.0.1:%d/" % lb.h2c_port],
                                 capture_output=True, text=True, timeout=args.seconds + 60).stdout
            wall = time.monotonic() - t0
            spindle_cpu = sum(cpu_seconds(p) for p in pids) - sum(c0)
            haproxy_cpu = cpu_seconds(lb.proc.pid) - h0
        r = parse_h2load(out)
        ok = r["2xx"]
        return {"n": n, "rps": r["req_per_s"] or 0.0, "ok": ok, "failed": r["failed"],
                "spindle_us": 1e6 * spindle_cpu / ok if ok else 0.0,
                "haproxy_us": 1e6 * haproxy_cpu / ok if ok else 0.0,
                "spindle_share": spindle_cpu / wall, "haproxy_share": haproxy_cpu / wall}
    finally:
        stop_all(servers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--shards", type=int, default=1)
    args = ap.parse_args()
    if args.quick:
        args.seconds = 2
    harness._binary = os.path.abspath(args.binary)
    print("h2load -D %d -c %d -m %d -> HAProxy (h2c, 1 thread) -> N spindle instances "
          "(%d shard(s) each), %d CPUs" % (args.seconds, args.clients, args.streams,
                                          args.shards, os.cpu_count()))
    print()
    print("| instances | req/s | failed | spindle CPU us/req | HAProxy CPU us/req "
          "| spindle CPUs busy | HAProxy CPUs busy |")
    print("|---|---|---|---|---|---|---|")
    for n in (1, 2, 3):
        r = row(n, args)
        print("| %d | %.0f | %d | %.1f | %.1f | %.2f | %.2f |" % (
            r["n"], r["rps"], r["failed"], r["spindle_us"], r["haproxy_us"],
            r["spindle_share"], r["haproxy_share"]), flush=True)


if __name__ == "__main__":
    main()
