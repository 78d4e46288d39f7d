"""One run of bench/e2e.sh (RUN_DIR: meta.env, h2load.out, h2load.log, the
before/after samples): parsed into one dict, written to RUN_DIR/run.json
(e2e_report.py run, noise)."""
import json
import math
import os
import re

from e2e_report_common import CLK_TCK, MIB, fmt_ms


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def to_seconds(num, unit):
    return float(num) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def parse_h2load(text):
    r = {}
    m = re.search(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", text)
    if m:
        r["elapsed_s"] = to_seconds(m.group(1), m.group(2))
        r["h2load_req_s"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        for k, v in zip(["total", "started", "done", "succeeded", "failed", "errored", "timeout"],
                        m.groups()):
            r["req_" + k] = int(v)
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        r["status_2xx"], r["status_3xx"], r["status_4xx"], r["status_5xx"] = map(int, m.groups())
    m = re.search(r"traffic: \S+ \((\d+)\) total, \S+ \((\d+)\) headers.*?, \S+ \((\d+)\) data",
                  text)
    if m:
        r["bytes_total"], r["bytes_headers"], r["bytes_data"] = map(int, m.groups())
    # Over TLS h2load prints what the first connection negotiated.
    for key, pat in (("tls_protocol", r"^TLS Protocol: (.+)$"), ("tls_cipher", r"^Cipher: (.+)$"),
                     ("tls_temp_key", r"^Server Temp Key: (.+)$"),
                     ("alpn", r"^Application protocol: (.+)$")):
        m = re.search(pat, text, re.M)
        if m:
            r[key] = m.group(1).strip()
    m = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)"
                  r"\s+([\d.]+)(us|ms|s)", text)
    if m:
        g = m.groups()
        r["lat_min_ms"] = to_seconds(g[0], g[1]) * 1e3
        r["lat_max_ms"] = to_seconds(g[2], g[3]) * 1e3
        r["lat_mean_ms"] = to_seconds(g[4], g[5]) * 1e3
        r["lat_sd_ms"] = to_seconds(g[6], g[7]) * 1e3
    return r


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = max(0, math.ceil(q * len(sorted_vals)) - 1)
    return sorted_vals[k]


def parse_log(path):
    """h2load --log-file: start_us, status, duration_us per request."""
    lat, failed = [], 0
    try:
        with open(path) as f:
            for line in f:
                p = line.split("\t")
                if len(p) < 3:
                    continue
                if p[1].strip() == "-1":
                    failed += 1
                    continue
                lat.append(int(p[2]))
    except OSError:
        return {}
    lat.sort()
    if not lat:
        return {"log_failed": failed}
    return {"log_requests": len(lat), "log_failed": failed,
            "p50_ms": percentile(lat, 0.50) / 1e3, "p99_ms": percentile(lat, 0.99) / 1e3,
            "p999_ms": percentile(lat, 0.999) / 1e3,
            "log_mean_ms": sum(lat) / len(lat) / 1e3}


def load_sample(path):
    try:
        with open(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def parse_run(run_dir):
    env = read_env(os.path.join(run_dir, "meta.env"))
    r = {k: env[k] for k in ("server", "scenario", "rep", "attempt", "path", "n", "c", "m", "cmd",
                             "server_cmd", "h2load_rc", "server_alive", "server_exit")
         if k in env}
    for k in ("n", "c", "m", "rep", "attempt"):
        if k in r:
            r[k] = int(r[k])
    r["bg_busy_pct"] = float(env.get("bg_busy_pct", "nan"))
    r["tls"] = env.get("tls") == "1"
    with open(os.path.join(run_dir, "h2load.out"), errors="replace") as f:
        r.update(parse_h2load(f.read()))
    r.update(parse_log(os.path.join(run_dir, "h2load.log")))
    a = load_sample(os.path.join(run_dir, "before.json"))
    b = load_sample(os.path.join(run_dir, "after.json"))
    if a and b:
        cpu_s = (b["ticks"] - a["ticks"]) / CLK_TCK
        r["server_cpu_s"] = cpu_s
        r["server_procs"] = b["nprocs"]
        r["peak_rss_mib"] = b["hwm_kib"] / 1024
        r["rss_before_mib"] = a["rss_kib"] / 1024
        wall = b["t"] - a["t"]
        r["wall_s"] = wall
        done = r.get("req_succeeded") or 0
        if done:
            r["cpu_us_per_req"] = cpu_s * 1e6 / done
        if r.get("bytes_total"):
            r["cpu_ms_per_mib"] = cpu_s * 1e3 / (r["bytes_total"] / MIB)
        el = r.get("elapsed_s")
        if el:
            r["server_busy_pct"] = 100.0 * cpu_s / el
            if r.get("bytes_total"):
                r["mib_s"] = r["bytes_total"] / MIB / el
            r["req_s"] = done / el if done else 0.0
        if b.get("sched_ns") is not None and a.get("sched_ns") is not None and done:
            r["server_cpu_s_schedstat"] = (b["sched_ns"] - a["sched_ns"]) / 1e9
        client = load_sample(os.path.join(run_dir, "client.json"))
        if client:
            r["client_cpu_s"] = client["cpu_s"]
            if el:
                r["client_busy_pct"] = 100.0 * client["cpu_s"] / el
        # Other work on the server's core (0) and the client's (1): task time
        # of the CPU minus what the server (or h2load) used.  irq = interrupt
        # and softirq time (loopback TCP is processed there), not in any task.
        ca, cb = a.get("cpus", {}), b.get("cpus", {})
        own = {"cpu0": cpu_s, "cpu1": (client or {}).get("cpu_s")}
        for cpu in ("cpu0", "cpu1"):
            if cpu in ca and cpu in cb and len(ca[cpu]) == 4:
                d = [y - x for x, y in zip(ca[cpu], cb[cpu])]
                tot = d[3] or 1
                r[cpu + "_task_pct"] = 100.0 * d[0] / tot
                r[cpu + "_irq_pct"] = 100.0 * d[1] / tot
                r[cpu + "_steal_pct"] = 100.0 * d[2] / tot
                if own[cpu] is not None and wall > 0:
                    r[cpu + "_other_pct"] = max(0.0, r[cpu + "_task_pct"] -
                                                100.0 * own[cpu] / wall)
    errs = []
    if r.get("h2load_rc") not in (None, "0"):
        errs.append(f"h2load exit {r.get('h2load_rc')}")
    if r.get("server_alive") == "0":
        errs.append(f"server died ({r.get('server_exit', '?')})")
    for k in ("req_failed", "req_errored", "req_timeout"):
        if r.get(k):
            errs.append(f"{r[k]} {k[4:]}")
    if r["tls"]:
        # A comparison is fair only on the same protocol and cipher.
        want = env.get("tls_want", "")
        if "tls_protocol" in r:
            got = f"{r['tls_protocol']} {r.get('tls_cipher', '?')}"
            r["tls_negotiated"] = got
            if want and got != want:
                errs.append(f"negotiated {got}, not {want}")
        elif r.get("req_succeeded"):
            errs.append("h2load printed no TLS protocol")
        if r.get("alpn") not in (None, "h2"):
            errs.append(f"ALPN {r['alpn']}, not h2")
    if "req_succeeded" not in r:
        errs.append("no h2load summary")
    elif r.get("status_2xx", 0) != r["req_succeeded"]:
        errs.append(f"{r['req_succeeded'] - r.get('status_2xx', 0)} non-2xx")
    r["errors"] = errs
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump(r, f, indent=1)
    return r


def cmd_noise(run_dir):
    """The larger share (integer %) of either core that other processes used."""
    r = parse_run(run_dir)
    print(int(round(max(r.get("cpu0_other_pct", 0), r.get("cpu1_other_pct", 0)))))


def cmd_run(run_dir):
    r = parse_run(run_dir)
    line = (f"{r.get('req_s', 0):>10,.0f} req/s {r.get('mib_s', 0):>8.1f} MiB/s  "
            f"mean {fmt_ms(r.get('lat_mean_ms')):>9}  p99 {fmt_ms(r.get('p99_ms')):>9}  "
            f"cpu {r.get('cpu_us_per_req', float('nan')):6.2f} us/req  "
            f"busy {r.get('server_busy_pct', 0):3.0f}%")
    if r.get("client_busy_pct") is not None:
        line += f"  h2load {r['client_busy_pct']:3.0f}%"
    other = [f"core {i} {r[f'cpu{i}_other_pct']:.0f}%" for i in (0, 1)
             if r.get(f"cpu{i}_other_pct", 0) > 5]
    if other:
        line += "  [other processes: " + ", ".join(other) + "]"
    if r["errors"]:
        line += "  FAILED: " + ", ".join(r["errors"])
    print(line)
