#!/usr/bin/python3
"""bench/load/e2e_rows.py - the spindle-load rows of bench/e2e.sh (issue 16).

    /usr/bin/python3 bench/load/e2e_rows.py [--quick] [--reps N] [--secs S]
                     [--build DIR] [--servers spindle,h2o,nghttpd] [-c N] [-m N]
                     [--out FILE.md] [--json FILE.json]

Each server runs with one worker pinned to CPU 0 (spindle-hello --shards 1
answering "/" from memory; h2o num-threads 1 and nghttpd -n 1 serving a
13-byte file, the size of spindle-hello's body), h2c; the client runs with
one thread pinned to CPU 1.  Small multiplexed requests: -c 16 -m 64 (by
default) for S seconds.  Per repetition and server, one server process serves:

  1. spindle-load -t 1: req/s, the server's CPU per request (user + system
     of its whole process group, /proc), how busy its core was, and its
     one-core ceiling: req/s / busy fraction (measured req/s when the core
     was saturated; an estimate from CPU per request when it was not);
  2. against spindle and h2o, also `h2load -t 1` with the same flags (the
     issue's client target): req/s and client CPU per request (user +
     system of the whole client process, wait4) for both, and their ratios
     in the same repetition.  The two clients' order alternates with the
     repetition.

"other %" is what the rest of the machine took from the server's and the
client's core during the run (/proc/stat busy minus our processes): above
~10% the figures are disturbed.  Nothing here asserts a speed.
--quick: one repetition of 1 s (proves the rows run; not a measurement).
--build: the tree with bench/spindle-load and apps/hello/spindle-hello
(default build-bench/, e2e.sh's Release tree; build/ works for a quick
look).  --servers: which of them to run (default all that are installed).
Every process it starts is stopped on exit.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def group_ticks(pgid):
    t = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                a = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(a[2]) == pgid:  # pgrp
            t += int(a[11]) + int(a[12])  # utime, stime
    return t


def cpu_busy(cores=(0, 1)):
    """Busy jiffies per core (all but idle and iowait)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            a = line.split()
            if a[0].startswith("cpu") and a[0][3:].isdigit() and int(a[0][3:]) in cores:
                v = list(map(int, a[1:]))
                out[int(a[0][3:])] = sum(v) - v[3] - v[4]
    return out


class Servers:
    def __init__(self, build, work):
        self.hello = os.path.join(build, "apps", "hello", "spindle-hello")
        self.work = work
        self.docroot = os.path.join(work, "www")
        os.makedirs(self.docroot, exist_ok=True)
        with open(os.path.join(self.docroot, "index.html"), "w") as f:
            f.write("Hello, World!")
        self.proc = None

    @staticmethod
    def which(name):
        return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")

    def present(self, name):
        if name == "spindle":
            return os.access(self.hello, os.X_OK)
        return self.which(name) is not None

    def command(self, name, port):
        if name == "spindle":
            return [self.hello, "--shards", "1", "--port", str(port), "--log-level", "0",
                    "--set", "max-requests=0"], "/"
        if name == "h2o":
            conf = os.path.join(self.work, "h2o.conf")
            with open(conf, "w") as f:
                f.write("user: root\nnum-threads: 1\nmax-connections: 10000\n"
                        "pid-file: %s/h2o.pid\nerror-log: %s/h2o.err\nhttp2-idle-timeout: 3600\n"
                        "listen:\n  host: 127.0.0.1\n  port: %d\nhosts:\n  default:\n"
                        "    paths:\n      /:\n        file.dir: %s\n"
                        % (self.work, self.work, port, self.docroot))
            return [self.which("h2o"), "-c", conf], "/index.html"
        return [self.which("nghttpd"), "--no-tls", "-n", "1", "-d", self.docroot, str(port)], "/index.html"

    def start(self, name):
        port = free_port()
        cmd, path = self.command(name, port)
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        end = time.time() + 10
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (%s)" % (name, " ".join(cmd)))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                time.sleep(0.3)  # h2o forks its worker
                return "http://127.0.0.1:%d%s" % (port, path)
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s did not listen" % name)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def run_client(cmd, timeout):
    """Run cmd; (stdout, client CPU seconds from wait4, wall seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise RuntimeError("client timed out: %s" % " ".join(cmd))
    wall = time.monotonic() - t0
    # communicate() reaped it; its rusage is in RUSAGE_CHILDREN, measured
    # by the caller as a difference.
    return out.decode(), err.decode(), p.returncode, wall


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def parse_load(out):
    r = json.loads(out)
    return r["requests"]["done"], r["requests"]["failed"], r["req_per_s"]


def parse_h2load(out):
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
                  out)
    return int(m.group(1)), int(m.group(3)), rps


def measure(srv, client, url, a):
    """One client run against the running server: a dict of figures."""
    if client == "spindle-load":
        cmd = ["taskset", "-c", "1", a.load, "-t", "1", "-c", str(a.conns), "-m", str(a.streams),
               "-D", "%g" % a.secs, "--json", url]
    else:
        cmd = ["taskset", "-c", "1", Servers.which("h2load"), "-t", "1", "-c", str(a.conns),
               "-m", str(a.streams), "-D", "%g" % a.secs, url]
    pg = srv.proc.pid
    s0, b0, c0 = group_ticks(pg), cpu_busy(), children_cpu()
    out, err, rc, wall = run_client(cmd, a.secs * 4 + 60)
    s1, b1, c1 = group_ticks(pg), cpu_busy(), children_cpu()
    try:
        done, failed, rps = (parse_load if client == "spindle-load" else parse_h2load)(out)
    except (ValueError, AttributeError, KeyError):
        raise RuntimeError("%s gave no summary (exit %d): %s\n%s" % (
            " ".join(cmd), rc, out[-500:], err[-500:]))
    srv_s = (s1 - s0) / HZ
    cli_s = c1 - c0
    busy = srv_s / wall if wall > 0 else 0.0
    return {
        "client": client, "rc": rc, "done": done, "failed": failed, "req_per_s": rps,
        "wall_s": wall, "server_cpu_s": srv_s, "client_cpu_s": cli_s,
        "server_us_per_req": srv_s * 1e6 / max(done, 1),
        "client_us_per_req": cli_s * 1e6 / max(done, 1),
        "server_busy_pct": 100.0 * busy,
        "ceiling_req_per_s": rps / busy if busy > 0.05 else None,
        "other_pct_core0": max(0.0, 100.0 * ((b1[0] - b0[0]) / HZ - srv_s) / wall),
        "other_pct_core1": max(0.0, 100.0 * ((b1[1] - b0[1]) / HZ - cli_s) / wall),
        "cmd": " ".join(cmd),
        "stderr_tail": err[-300:] if rc not in (0, 1) else "",
    }


def run_all(a, work):
    srv = Servers(a.build, work)
    servers = [s for s in a.servers if srv.present(s)]
    runs = []
    try:
        for rep in range(1, a.reps + 1):
            for name in servers:
                url = srv.start(name)
                clients = ["spindle-load"] + (["h2load"] if name in ("spindle", "h2o") else [])
                if rep % 2 == 0:
                    clients.reverse()
                for client in clients:
                    r = measure(srv, client, url, a)
                    r.update(server=name, rep=rep)
                    runs.append(r)
                    print("rep %d %-8s %-12s %10.0f req/s  srv %.3f us/req (core %3.0f%%)  "
                          "cli %.3f us/req  other %2.0f/%2.0f%%  failed %d"
                          % (rep, name, client, r["req_per_s"], r["server_us_per_req"],
                             r["server_busy_pct"], r["client_us_per_req"], r["other_pct_core0"],
                             r["other_pct_core1"], r["failed"]), file=sys.stderr)
                srv.stop()
    finally:
        srv.stop()
    return servers, runs


def fmt(x, f="%.0f"):
    return "-" if x is None else f % x


def table_ceiling(servers, runs):
    out = ["| server | rep | req/s | server core busy | one-core ceiling (req/s) | "
           "server us/req | client us/req | vs h2o ceiling | other load core 0/1 |",
           "|---|---|---|---|---|---|---|---|---|"]
    by = {(r["server"], r["rep"]): r for r in runs if r["client"] == "spindle-load"}
    for (name, rep), r in sorted(by.items(), key=lambda kv: (kv[0][1], servers.index(kv[0][0]))):
        h = by.get(("h2o", rep))
        vs = (r["ceiling_req_per_s"] / h["ceiling_req_per_s"]
              if h and h["ceiling_req_per_s"] and r["ceiling_req_per_s"] else None)
        out.append("| %s | %d | %s | %.0f%% | %s | %.3f | %.3f | %s | %.0f%% / %.0f%% |" % (
            name, rep, fmt(r["req_per_s"]), r["server_busy_pct"], fmt(r["ceiling_req_per_s"]),
            r["server_us_per_req"], r["client_us_per_req"], fmt(vs, "%.2fx"),
            r["other_pct_core0"], r["other_pct_core1"]))
    return out


def table_clients(runs):
    out = ["| server | rep | spindle-load req/s | h2load req/s | req/s ratio | "
           "spindle-load client us/req | h2load client us/req | client CPU ratio | "
           "other load core 0/1 |", "|---|---|---|---|---|---|---|---|---|"]
    pairs = {}
    for r in runs:
        pairs.setdefault((r["server"], r["rep"]), {})[r["client"]] = r
    for (name, rep), p in sorted(pairs.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if "h2load" not in p:
            continue
        s, h = p["spindle-load"], p["h2load"]
        out.append("| %s | %d | %.0f | %.0f | %.2fx | %.3f | %.3f | %.2fx | %.0f%% / %.0f%% |" % (
            name, rep, s["req_per_s"], h["req_per_s"], s["req_per_s"] / max(h["req_per_s"], 1),
            s["client_us_per_req"], h["client_us_per_req"],
            s["client_us_per_req"] / max(h["client_us_per_req"], 1e-9),
            max(s["other_pct_core0"], h["other_pct_core0"]),
            max(s["other_pct_core1"], h["other_pct_core1"])))
    return out


def report(a, servers, runs):
    failed = sum(r["failed"] for r in runs)
    lines = [
        "Server on CPU 0 (one worker), client on CPU 1 (one thread), h2c, -c %d -m %d, %g s "
        "per run, %d repetition(s)%s.  `bash bench/e2e.sh --load-only%s`."
        % (a.conns, a.streams, a.secs, a.reps,
           " (--quick: proves the rows run, not a measurement)" if a.quick else "",
           " --quick" if a.quick else ""),
        "",
        "**One-core ceilings, spindle-load driving each server** (target: spindle-hello at "
        "least 1.5x h2o).  The ceiling is req/s divided by the server core's busy fraction.",
        "",
    ] + table_ceiling(servers, runs) + [
        "",
        "**spindle-load vs `h2load -t 1`, same server, same repetition** (target: at least "
        "2x the req/s at equal or lower client CPU per request).",
        "",
    ] + table_clients(runs) + [
        "",
        "Failed requests over all runs: %d.  Figures taken while other processes loaded the "
        "machine are noisy: read the \"other load\" column." % failed,
    ]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=float, default=5.0)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--servers", default="spindle,h2o,nghttpd",
                    type=lambda v: [s for s in v.replace(",", " ").split() if s])
    ap.add_argument("-c", dest="conns", type=int, default=16)
    ap.add_argument("-m", dest="streams", type=int, default=64)
    ap.add_argument("--out")
    ap.add_argument("--json")
    a = ap.parse_args()
    unknown = set(a.servers) - {"spindle", "h2o", "nghttpd"}
    if unknown:
        ap.error("--servers: unknown %s (spindle, h2o, nghttpd)" % ", ".join(sorted(unknown)))
    if a.quick:
        a.reps, a.secs = 1, 1.0
    a.load = os.path.join(a.build, "bench", "spindle-load")
    for b in (a.load,):
        if not os.access(b, os.X_OK):
            sys.exit("e2e_rows: %s is not built" % b)
    with tempfile.TemporaryDirectory(prefix="spindle-load-rows-") as work:
        servers, runs = run_all(a, work)
    md = report(a, servers, runs)
    sys.stdout.write(md)
    if a.out:
        with open(a.out, "w") as f:
            f.write(md)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"reps": a.reps, "secs": a.secs, "servers": servers, "runs": runs}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
