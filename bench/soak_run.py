#!/usr/bin/python3
"""soak_run.py - the soak run of issue 7 (started by bench/soak.sh).

    /usr/bin/python3 bench/soak_run.py --hello PATH [--requests N] [--quick]
        [--workers N] [--seed S] [--rss-slack KIB] [--out JSON] [--md FILE]
        [--keep DIR]

spindle-hello (--shards 2, default limits) takes N requests (default 10 M)
from successive h2load runs (GET /, POST /echo with 1 B..4 KiB bodies, GET /1m;
-c 4..500, -m 1..100; never more than 10000 requests per connection, the
server's max-requests) while bench/soak_chaos.py's clients reset streams,
play with windows and drop connections beside them, and one worker exceeds
the Rapid Reset / glitch budgets on purpose every 5-15 s.

Criteria (each printed PASS/FAIL; the exit status is 1 if any fails):
  requests      h2load completed N requests (chaos ones are counted on top)
  h2load        0 failed, 0 errored, 0 timed out, every status 2xx
  chaos         0 anomalies in the chaos clients (see soak_chaos.py)
  calm          budget-exceeding connections got GOAWAY ENHANCE_YOUR_CALM
                (at least one such connection ran) and a fresh connection
                right after each was answered within 2 s
  alive         the server process was alive after the load
  exit          it exited with status 0 after SIGTERM
  log           no warn/error line in its log (EXPECTED_LOG lists the lines
                tolerated: none at the moment) and nothing that is not a log
                line
  heap          objects in use (live bytes in the shards' jemalloc arenas
                minus what the engine's pools keep for reuse, from the
                server's SIGUSR1 statistics every 5 s): the mean over the
                last third after warm-up - the mean over the first third
                <= 1 MiB (no leak, whatever the caches do)
  rss           max VmRSS after warm-up - VmRSS at the end of warm-up <= 1 MiB
                (warm-up: the h2load rounds up to 30% of the requests;
                RSS sampled every second)
"""
import argparse
import collections
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

PY = "/usr/bin/python3"
CHAOS = os.path.join(ROOT, "bench", "soak_chaos.py")

# One round of h2load runs, 1,000,000 requests; n/c <= 10000 (max-requests).
# (name, path, body bytes or None, -c, -m, n)
ROUND = [
    ("get-c50-m32", "/", None, 50, 32, 400000),
    ("echo64-c20-m16", "/echo", 64, 20, 16, 150000),
    ("get-c500-m1", "/", None, 500, 1, 100000),
    ("echo4k-c10-m8", "/echo", 4096, 10, 8, 50000),
    ("get-c8-m100", "/", None, 8, 100, 79800),
    ("echo1-c100-m4", "/echo", 1, 100, 4, 100000),
    ("1m-c4-m2", "/1m", None, 4, 2, 200),
    ("get-c16-m64", "/", None, 16, 64, 120000),
]
ROUND_TOTAL = sum(r[5] for r in ROUND)
MAX_PER_CONN = 10000

# Server log lines that are expected.  Info lines are all fine (start,
# "shutting down gracefully", "draining N connection(s)", "stopped").  No warn
# or error line is expected: chaos clients are stopped before SIGTERM, so not
# even "drain timeout" should appear.
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} spindle(\[\d+\])? (error|warn|info|debug): ")
EXPECTED_LOG = []  # regexes for tolerated warn/error lines


def say(*a):
    print(*a, flush=True)


def proc_status(pid, keys=("VmRSS", "RssAnon", "RssFile")):
    """{key: KiB} from /proc/<pid>/status, or None when the process is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except (OSError, ValueError):
        return None
    return out if "VmRSS" in out else None


def vmrss_kib(pid):
    st = proc_status(pid)
    return st["VmRSS"] if st else None


class Sampler(threading.Thread):
    """VmRSS every second, tagged with the h2load round running then."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []        # (seconds since start, VmRSS KiB, round, requests done,
        #                            RssAnon KiB, RssFile KiB)
        self.round = 0
        self.done_requests = 0
        self.t0 = time.monotonic()
        self.stop_ev = threading.Event()
        self.usr1 = []           # (seconds since start, requests done) per SIGUSR1

    def sample(self):
        st = proc_status(self.pid)
        if st is None:
            return None
        self.samples.append((round(time.monotonic() - self.t0, 1), st["VmRSS"], self.round,
                             self.done_requests, st.get("RssAnon"), st.get("RssFile")))
        return st["VmRSS"]

    def run(self):
        n = 0
        while not self.stop_ev.wait(1.0):
            self.sample()
            n += 1
            if n % 5 == 0:
                # Every shard logs its statistics and memory (live bytes in
                # its jemalloc arena, the engine's pools): what RSS alone
                # cannot tell apart, objects held vs pages cached.
                try:
                    os.kill(self.pid, signal.SIGUSR1)
                    self.usr1.append((round(time.monotonic() - self.t0, 1), self.done_requests))
                except OSError:
                    pass


def plan(total):
    """Rounds of h2load runs adding up to `total` requests."""
    round_size = min(ROUND_TOTAL, max(total // 10, 1))
    rounds = []
    left = total
    while left > 0:
        size = min(round_size, left)
        f = size / ROUND_TOTAL
        runs = []
        for name, path, body, c, m, n in ROUND:
            k = int(round(n * f))
            if k < 1:
                continue
            cc = min(c, k)
            cc = max(cc, math.ceil(k / MAX_PER_CONN))
            runs.append([name, path, body, cc, m, k])
        # Put the rounding difference on the first run.
        diff = size - sum(r[5] for r in runs)
        runs[0][5] += diff
        runs[0][3] = max(runs[0][3], math.ceil(runs[0][5] / MAX_PER_CONN))
        rounds.append(runs)
        left -= size
    return rounds, round_size


def run_h2load(port, run, bodies, timeout):
    name, path, body, c, m, n = run
    cmd = ["h2load", "-n", str(n), "-c", str(c), "-m", str(m), "-t", "1"]
    if body is not None:
        cmd += ["-d", bodies[body]]
    cmd.append("http://%s:%d%s" % (harness.HOST, port, path))
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                           text=True)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or "")
        return {"name": name, "cmd": " ".join(cmd), "error": "timed out after %d s" % timeout,
                "n": n, "succeeded": 0, "failed": n, "errored": 0, "timeout": 0,
                "seconds": timeout}
    dt = time.monotonic() - t0
    try:
        r = harness.parse_h2load(out)
    except AssertionError:
        return {"name": name, "cmd": " ".join(cmd), "error": "exit %d, unparsable output: %s" % (
            rc, (out + p.stderr)[-800:]), "n": n, "succeeded": 0, "failed": n, "errored": 0,
            "timeout": 0, "seconds": dt}
    r.update(name=name, cmd=" ".join(cmd), n=n, seconds=round(dt, 2), rc=rc)
    if rc != 0:
        r["error"] = "h2load exit status %d: %s" % (rc, p.stderr[-400:])
    return r


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    h2v = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "kernel": platform.release(), "cpu": cpu, "mem": mem,
            "h2load": h2v, "python": platform.python_version()}


def write_md(path, res):
    s, m = res["summary"], res["machine"]
    lines = [
        "# Soak run (issue 7)",
        "",
        "Ten million requests against `spindle-hello --shards 2` (default limits)",
        "from successive h2load runs, while `bench/soak_chaos.py` clients reset",
        "streams (before the response, mid-upload, mid-download), set",
        "INITIAL_WINDOW_SIZE to 0..16383 and open windows by odd amounts, slowly or",
        "never, change SETTINGS mid-download, and drop connections at random",
        "points (mid-preface, mid-frame, mid-upload, mid-download; FIN or RST);",
        "every 5-15 s one connection exceeds the Rapid Reset or glitch budget on",
        "purpose, and one zero-window download is held until the server's 30 s",
        "no-progress timeout closes it. h2load connections are never touched by",
        "the chaos clients.",
        "",
        "Command: `%s`" % res["command"],
        "",
        "Machine: %d CPUs (%s), %s, kernel %s; %s; python %s." % (
            m["nproc"], m["cpu"], m["mem"], m["kernel"], m["h2load"], m["python"]),
        "Server, h2load and the chaos processes share these CPUs.",
        "",
        "| figure | value |",
        "|---|---|",
        "| requests completed (h2load + chaos) | %s (%s + %s) |" % (
            "{:,}".format(s["requests_total"]), "{:,}".format(s["h2load_succeeded"]),
            "{:,}".format(s["chaos_requests_ok"])),
        "| wall time | %.0f s |" % s["seconds"],
        "| h2load throughput (while chaos ran) | %s req/s |" % "{:,.0f}".format(
            s["h2load_req_per_s"]),
        "| h2load failed / errored / timeout / non-2xx | %d / %d / %d / %d |" % (
            s["h2load_failed"], s["h2load_errored"], s["h2load_timeout"], s["h2load_non2xx"]),
        "| chaos connections / resets sent / window updates / drops | %s / %s / %s / %s |" % (
            "{:,}".format(s["chaos_connections"]), "{:,}".format(s["chaos_resets_sent"]),
            "{:,}".format(s["chaos_window_updates"]), "{:,}".format(s["chaos_drops"])),
        "| chaos anomalies | %d |" % s["chaos_anomalies"],
        "| budget-exceeding connections answered with ENHANCE_YOUR_CALM | %d (%s) |" % (
            s["calm_ok"], ", ".join("%s: %d" % kv for kv in sorted(s["calm_reasons"].items()))),
        "| zero-window downloads closed by the server | %s (after at most %s s) |" % (
            ", ".join("%s: %d" % kv for kv in sorted(s["hold_closed"].items())) or "none",
            s.get("hold_close_s_max", "-")),
        "| VmRSS at start / end of warm-up (%s requests) / warm-up peak | %d / %d / %d KiB |" % (
            "{:,}".format(s["warmup_requests"]), s["rss_start_kib"], s["rss_warmup_kib"],
            s["rss_warmup_peak_kib"]),
        "| VmRSS max after warm-up / final | %d / %d KiB |" % (
            s["rss_max_after_warmup_kib"], s["rss_final_kib"]),
        "| growth after warm-up (max - end of warm-up) | %+d KiB (limit %d) |" % (
            s["rss_growth_kib"], s["rss_slack_kib"]),
        "| mean VmRSS, first / last 20 s of load after warm-up | %d / %d KiB (%+d) |" % (
            s["rss_mean_first20_after_warmup_kib"], s["rss_mean_last20_kib"],
            s["rss_mean_last20_kib"] - s["rss_mean_first20_after_warmup_kib"]),
        "| server exit status after SIGTERM | %s |" % s["exit_status"],
        "",
        "| criterion | result | detail |",
        "|---|---|---|",
    ]
    for c in res["criteria"]:
        lines.append("| %s | %s | %s |" % (c["name"], "PASS" if c["ok"] else "FAIL",
                                           c["detail"].replace("|", "/")))
    lines += ["", "Per-run h2load figures and the RSS samples are in `bench/results/soak.json`.",
              ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hello", required=True)
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--warmup", type=int, help="warm-up requests (default min(1 M, N/3))")
    ap.add_argument("--rss-slack", type=int, default=1024, help="KiB (default 1024)")
    ap.add_argument("--out")
    ap.add_argument("--md")
    ap.add_argument("--keep", help="directory for the server log and chaos JSON")
    ap.add_argument("--command", default="")
    a = ap.parse_args()
    if a.quick and a.requests == 10_000_000:
        a.requests = 300_000
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "big")
    harness._binary = os.path.abspath(a.hello)
    harness.raise_nofile()
    work = a.keep or tempfile.mkdtemp(prefix="soak-")
    os.makedirs(work, exist_ok=True)
    bodies = {}
    for size in (1, 64, 4096):
        p = os.path.join(work, "body-%d" % size)
        with open(p, "wb") as f:
            f.write(os.urandom(size))
        bodies[size] = p
    rounds, round_size = plan(a.requests)
    # Warm-up: 30% of the run.  The engine's pools (docs/conn.md) keep freed
    # blocks for reuse up to a cap, and reach it only as the chaos clients'
    # concurrency peaks: about the first third of a 10 M run (see SOAK.md).
    warmup = a.warmup if a.warmup is not None else a.requests * 3 // 10
    say("soak: %s requests in %d round(s) of up to %s h2load requests; warm-up: the rounds "
        "up to %s requests; chaos seed %d; scratch %s" % (
            "{:,}".format(a.requests), len(rounds), "{:,}".format(round_size),
            "{:,}".format(warmup), seed, work))

    srv = harness.Server(shards=2)
    srv.start()
    pid = srv.pid
    sampler = Sampler(pid)
    rss_start = sampler.sample()
    sampler.start()
    say("soak: server pid %d on port %d, VmRSS %d KiB" % (pid, srv.port, rss_start))

    chaos_out = os.path.join(work, "chaos.json")
    chaos_log = open(os.path.join(work, "chaos.log"), "w")
    chaos = subprocess.Popen([PY, CHAOS, "--port", str(srv.port), "--workers", str(a.workers),
                              "--seed", str(seed), "--out", chaos_out, "--verbose"],
                             stdin=subprocess.DEVNULL, stdout=chaos_log, stderr=chaos_log,
                             start_new_session=True)
    time.sleep(2.0)

    runs = []
    t_start = time.monotonic()
    h2_timeout = 600
    alive = True
    warm_end_idx = None
    warm_rounds = 0
    try:
        for ri, rnd in enumerate(rounds, 1):
            sampler.round = ri
            for run in rnd:
                r = run_h2load(srv.port, run, bodies, h2_timeout)
                r["round"] = ri
                runs.append(r)
                sampler.done_requests += r.get("succeeded", 0)
                bad = r.get("failed", 0) + r.get("errored", 0) + r.get("timeout", 0)
                if bad or r.get("error"):
                    say("soak:   round %d %-15s n=%-7d FAILED %s failed/errored/timeout %s/%s/%s" % (
                        ri, run[0], run[5], r.get("error", ""), r.get("failed"),
                        r.get("errored"), r.get("timeout")))
                if not srv.alive():
                    alive = False
                    break
            if not alive:
                break
            if warm_end_idx is None and sampler.done_requests >= warmup:
                warm_end_idx = len(sampler.samples)
                warm_rounds = ri
                sampler.sample()
            done = sampler.done_requests
            el = time.monotonic() - t_start
            say("soak: round %d/%d done: %s requests in %.0f s (%s req/s), VmRSS %s KiB" % (
                ri, len(rounds), "{:,}".format(done), el, "{:,.0f}".format(done / el),
                vmrss_kib(pid)))
    finally:
        h2_seconds = time.monotonic() - t_start
        # Stop the chaos clients first (they finish their current scenario).
        if chaos.poll() is None:
            os.kill(chaos.pid, signal.SIGTERM)
        try:
            chaos.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(chaos.pid, signal.SIGKILL)
            chaos.wait(5)
        chaos_log.close()
    time.sleep(2.0)
    alive = alive and srv.alive()
    sampler.stop_ev.set()
    sampler.join(3)
    sampler.round = -1
    rss_final = sampler.sample() if alive else None
    try:
        rc, _ = srv.stop(expect=None)
    except harness.ServerError as e:
        rc = "did not exit: %s" % str(e).splitlines()[0]
    log_text = ""
    try:
        srv._stderr.flush()
        srv._stderr.seek(0)
        log_text = srv._stderr.read().decode("utf-8", "replace")
    except (OSError, ValueError, AttributeError):
        pass
    srv.kill()
    srv._close()
    with open(os.path.join(work, "server.log"), "w") as f:
        f.write(log_text)

    # -- figures ---------------------------------------------------------------
    try:
        with open(chaos_out) as f:
            ch = json.load(f)
    except (OSError, ValueError):
        ch = {"counters": {}, "anomalies": [{"detail": "chaos clients wrote no result"}],
              "workers_reported": 0}
    cc = ch["counters"]
    sum_k = lambda k: sum(r.get(k, 0) or 0 for r in runs)  # noqa: E731
    succeeded = sum_k("succeeded")
    non2xx = sum_k("3xx") + sum_k("4xx") + sum_k("5xx")
    run_errors = [r for r in runs if r.get("error")]
    samples = sampler.samples
    warm = samples[:warm_end_idx + 1] if warm_end_idx is not None else samples
    after = samples[warm_end_idx + 1:] if warm_end_idx is not None else []
    rss_warm = warm[-1][1] if warm else 0
    rss_warm_peak = max(s[1] for s in warm) if warm else 0
    rss_after_max = max(s[1] for s in after) if after else rss_warm
    growth = rss_after_max - rss_warm
    # Level rather than peaks: mean VmRSS over the first and the last 20
    # samples after warm-up (load still running).
    loaded = [x[1] for x in after if x[2] != -1]
    mean_first = round(sum(loaded[:20]) / len(loaded[:20])) if loaded else 0
    mean_last = round(sum(loaded[-20:]) / len(loaded[-20:])) if loaded else 0
    # Live heap per SIGUSR1: the sum over shards of "memory: arena allocated
    # N KiB; engine pools L KiB in use, F KiB kept" (one line per shard per
    # signal, in order; the last set is the exit line).
    per_shard = collections.defaultdict(list)
    for line in log_text.splitlines():
        m = re.search(r"spindle\[(\d+)\] info: memory: arena allocated (\d+) KiB; engine pools "
                      r"(\d+) KiB in use, (\d+) KiB kept", line)
        if m:
            per_shard[m.group(1)].append((int(m.group(2)), int(m.group(3)), int(m.group(4))))
    npts = min((len(v) for v in per_shard.values()), default=0)
    heap = [sum(v[i][0] for v in per_shard.values()) for i in range(npts)]
    kept = [sum(v[i][2] for v in per_shard.values()) for i in range(npts)]
    warm_sig = sum(1 for t, d in sampler.usr1 if d < warmup)
    heap_warm = heap[warm_sig - 1] if 0 < warm_sig <= len(heap) else None
    heap_after = heap[warm_sig:len(sampler.usr1)] if heap_warm is not None else []
    heap_growth = (max(heap_after) - heap_warm) if heap_after else None
    # Objects in use, the pools' reuse caches left out: it moves with the
    # number of connections open at the moment, so compare levels (the mean
    # over the first and the last third after warm-up), not single points.
    used = [h - k for h, k in zip(heap, kept)][warm_sig:len(sampler.usr1)]
    third = max(1, len(used) // 3)
    used_first = sum(used[:third]) / third if used else None
    used_last = sum(used[-third:]) / third if used else None
    bad_log = []
    for line in log_text.splitlines():
        m = LOG_LINE.match(line)
        if m and m.group(2) in ("info", "debug"):
            continue
        if m and any(re.search(x, line) for x in EXPECTED_LOG):
            continue
        if line.strip():
            bad_log.append(line)
    calm_reasons = {k[len("calm."):]: v for k, v in cc.items() if k.startswith("calm.")}
    abuse_runs = sum(v for k, v in cc.items() if k.startswith("scenario.abuse_"))
    chaos_anoms = cc.get("anomalies", 0) + (0 if ch.get("workers_reported") else 1)
    summary = {
        "requests_target": a.requests,
        "requests_total": succeeded + cc.get("requests_ok", 0),
        "h2load_succeeded": succeeded,
        "h2load_runs": len(runs),
        "h2load_failed": sum_k("failed"), "h2load_errored": sum_k("errored"),
        "h2load_timeout": sum_k("timeout"), "h2load_non2xx": non2xx,
        "h2load_req_per_s": succeeded / h2_seconds if h2_seconds else 0,
        "seconds": round(h2_seconds, 1),
        "chaos_requests_ok": cc.get("requests_ok", 0),
        "chaos_connections": cc.get("connections", 0),
        "chaos_resets_sent": cc.get("resets_sent", 0),
        "chaos_window_updates": cc.get("window_updates", 0),
        "chaos_drops": cc.get("drop.fin", 0) + cc.get("drop.rst", 0),
        "chaos_anomalies": chaos_anoms,
        "calm_ok": cc.get("calm_ok", 0), "calm_reasons": calm_reasons,
        "abuse_connections": abuse_runs, "probe_ok": cc.get("probe_ok", 0),
        "probe_max_ms": cc.get("probe_max_ms"),
        "hold_closed": {k[len("hold_closed."):]: v for k, v in cc.items()
                        if k.startswith("hold_closed.")},
        "hold_close_s_max": cc.get("hold_close_s_max"),
        "warmup_requests": sum(r.get("succeeded", 0) for r in runs if r["round"] <= warm_rounds),
        "rss_start_kib": rss_start, "rss_warmup_kib": rss_warm,
        "rss_warmup_peak_kib": rss_warm_peak, "rss_max_after_warmup_kib": rss_after_max,
        "rss_final_kib": rss_final if rss_final is not None else -1,
        "rss_growth_kib": growth, "rss_slack_kib": a.rss_slack,
        "rss_mean_first20_after_warmup_kib": mean_first, "rss_mean_last20_kib": mean_last,
        "exit_status": rc,
        "heap_kib_series": heap, "pools_kept_kib_series": kept,
        "heap_warmup_kib": heap_warm, "heap_growth_kib": heap_growth,
        "heap_used_mean_first_third_kib": used_first, "heap_used_mean_last_third_kib": used_last,
    }
    crit = []

    def criterion(name, ok, detail):
        crit.append({"name": name, "ok": bool(ok), "detail": detail})

    criterion("requests", succeeded >= a.requests,
              "%s h2load requests completed (target %s), %s by chaos clients" % (
                  "{:,}".format(succeeded), "{:,}".format(a.requests),
                  "{:,}".format(cc.get("requests_ok", 0))))
    criterion("h2load", not (summary["h2load_failed"] or summary["h2load_errored"] or
                             summary["h2load_timeout"] or non2xx or run_errors),
              "failed %d, errored %d, timeout %d, non-2xx %d, runs with errors %d" % (
                  summary["h2load_failed"], summary["h2load_errored"],
                  summary["h2load_timeout"], non2xx, len(run_errors)))
    criterion("chaos", chaos_anoms == 0,
              "%d anomalies in %s chaos connections" % (chaos_anoms,
                                                        "{:,}".format(summary["chaos_connections"])))
    criterion("calm", abuse_runs > 0 and cc.get("calm_ok", 0) == abuse_runs and
              cc.get("probe_ok", 0) == abuse_runs,
              "%d/%d budget-exceeding connections got ENHANCE_YOUR_CALM, %d/%d probes answered "
              "(max %s ms)" % (cc.get("calm_ok", 0), abuse_runs, cc.get("probe_ok", 0),
                               abuse_runs, cc.get("probe_max_ms")))
    criterion("alive", alive, "server alive after the load" if alive else "server died")
    criterion("exit", rc == 0, "exit status %s after SIGTERM" % rc)
    criterion("log", not bad_log, "%d unexpected line(s)%s" % (
        len(bad_log), (": " + " / ".join(bad_log[:5])) if bad_log else ""))
    criterion("heap", used_first is not None and used_last - used_first <= a.rss_slack,
              "objects in use in the shards' arenas without the pools' caches (SIGUSR1 every "
              "5 s), mean of the first / last third after warm-up: %.0f / %.0f KiB (%+.0f, limit "
              "%d); arenas in all: end of warm-up %s KiB, max after %s KiB, at exit %s KiB; "
              "pools kept %s..%s KiB" % (
                  used_first or 0, used_last or 0, (used_last or 0) - (used_first or 0),
                  a.rss_slack, heap_warm, max(heap_after) if heap_after else None,
                  heap[-1] if heap else None, min(kept) if kept else None,
                  max(kept) if kept else None))
    criterion("rss", after and growth <= a.rss_slack,
              "end of warm-up %d KiB, max after %d KiB (%+d KiB, limit %d), final %s KiB, "
              "%d samples" % (rss_warm, rss_after_max, growth, a.rss_slack, rss_final,
                              len(samples)))

    say("")
    say("soak: requests   %s completed (%s h2load + %s chaos) in %.0f s, h2load %s req/s" % (
        "{:,}".format(summary["requests_total"]), "{:,}".format(succeeded),
        "{:,}".format(cc.get("requests_ok", 0)), h2_seconds,
        "{:,.0f}".format(summary["h2load_req_per_s"])))
    say("soak: chaos      %s connections, %s resets sent, %s window updates, %s drops, "
        "%d anomalies" % ("{:,}".format(summary["chaos_connections"]),
                          "{:,}".format(summary["chaos_resets_sent"]),
                          "{:,}".format(summary["chaos_window_updates"]),
                          "{:,}".format(summary["chaos_drops"]), chaos_anoms))
    say("soak: VmRSS      start %d KiB, end of warm-up %d KiB (peak %d), max after warm-up %d "
        "KiB, final %s KiB; mean first/last 20 s after warm-up %d/%d KiB" % (
            rss_start, rss_warm, rss_warm_peak, rss_after_max, rss_final, mean_first,
            mean_last))
    for an in ch.get("anomalies", [])[:10]:
        say("soak: anomaly    [%s] %s" % (an.get("scenario"), an.get("detail")))
    for r in run_errors[:5]:
        say("soak: h2load     %s: %s" % (r["name"], r["error"]))
    for line in bad_log[:10]:
        say("soak: log        " + line)
    failed = [c for c in crit if not c["ok"]]
    for c in crit:
        say("soak: %-8s %s  %s" % (c["name"], "PASS" if c["ok"] else "FAIL", c["detail"]))
    say("soak: %s (server log, chaos JSON and log in %s)" % (
        "PASS" if not failed else "FAIL (%s)" % ", ".join(c["name"] for c in failed), work))

    res = {"command": a.command or " ".join(sys.argv), "machine": machine(), "seed": seed,
           "summary": summary, "criteria": crit, "h2load_runs": runs,
           "chaos": ch, "rss_samples": samples, "bad_log": bad_log[:50],
           "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
        say("soak: wrote " + a.out)
    if a.md:
        write_md(a.md, res)
        say("soak: wrote " + a.md)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
