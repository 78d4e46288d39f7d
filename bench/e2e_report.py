#!/usr/bin/python3
"""Helpers for bench/e2e.sh (standard library only).

  e2e_report.py sample PGID            one JSON line: CPU ticks, VmHWM, VmRSS of
                                       the process group, per-CPU jiffies
  e2e_report.py wait-quiet MAX PCT     wait (up to MAX s) until the machine is
                                       below PCT % busy; prints the last reading
  e2e_report.py run RUN_DIR            parse one run, write RUN_DIR/run.json,
                                       print a one-line summary
  e2e_report.py report WORK_DIR ...    aggregate everything: results JSON, PNG
                                       chart (gnuplot), RESULTS.md, table
"""
import argparse
import datetime
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

SERVERS = ["spindle", "h2o", "nghttpd", "nginx"]
PEERS = ["h2o", "nghttpd", "nginx"]
# Rows where every server serves the same file (spindle: spindle-static);
# nginx runs only in these.  The others: spindle-hello answers from memory.
FILE_ROWS = ["file-13b", "file-4k", "file-64k", "1mib-file", "file-latency"]


def runs_in(srv, sc_id):
    """Does srv take part in scenario sc_id (nginx: the file rows only)?"""
    return srv != "nginx" or sc_id in FILE_ROWS
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20

# --------------------------------------------------------------------------
# /proc sampling


def group_pids(pgid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        # fields[0] is field 3 (state): pgrp = field 5, utime..cstime = 14..17
        if int(fields[2]) == pgid:
            out.append((int(d), sum(int(x) for x in fields[11:15])))
    return out


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_jiffies():
    """{"cpu0": [task, irq, steal, total], ...} from /proc/stat: task = user +
    nice + system, irq = irq + softirq (loopback networking lands there)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *vals = line.split()
            v = [int(x) for x in vals[:8]]
            out[name] = [v[0] + v[1] + v[2], v[5] + v[6], v[7], sum(v)]
    return out


def sched_ns(pids):
    """Run time in ns of every thread of pids (/proc/PID/task/*/schedstat)."""
    total = 0
    for pid in pids:
        for st in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            try:
                with open(st) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


def cmd_sample(pgid):
    procs = group_pids(pgid)
    print(json.dumps({
        "t": time.monotonic(),
        "ticks": sum(t for _, t in procs),
        "sched_ns": sched_ns([p for p, _ in procs]),
        "nprocs": len(procs),
        "hwm_kib": sum(status_kib(p, "VmHWM") for p, _ in procs),
        "rss_kib": sum(status_kib(p, "VmRSS") for p, _ in procs),
        "cpus": cpu_jiffies(),
    }))


def busy_pct(window=1.0):
    a = cpu_jiffies()["cpu"]
    time.sleep(window)
    b = cpu_jiffies()["cpu"]
    tot = b[3] - a[3]
    return 100.0 * (b[0] + b[1] - a[0] - a[1]) / tot if tot else 0.0


def cmd_wait_quiet(max_s, pct):
    t0 = time.monotonic()
    while True:
        p = busy_pct()
        if p <= pct or time.monotonic() - t0 >= max_s:
            print(f"{p:.1f}")
            return


def cmd_exec(out_json, timeout, cmd):
    """Run cmd (stdio inherited), kill it after timeout seconds (exit 124),
    and write its CPU time (rusage) to out_json.  Exits with its status."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd)
    status, ru, timed_out = 0, None, False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - t0 > timeout:
            p.kill()
            timed_out = True
        time.sleep(0.02)
    rc = 124 if timed_out else (os.waitstatus_to_exitcode(status))
    with open(out_json, "w") as f:
        json.dump({"cpu_s": ru.ru_utime + ru.ru_stime, "utime_s": ru.ru_utime,
                   "stime_s": ru.ru_stime, "maxrss_kib": ru.ru_maxrss, "rc": rc,
                   "wall_s": time.monotonic() - t0}, f)
    return rc if rc >= 0 else 128 - rc


# --------------------------------------------------------------------------
# One run


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


def fmt_num(v, digits=0):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def fmt_ms(v):
    if v is None:
        return "-"
    if v < 1:
        return f"{v * 1000:.0f} us"
    if v < 100:
        return f"{v:.2f} ms"
    return f"{v:.0f} ms"


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


# --------------------------------------------------------------------------
# Report

METRICS = [  # key, header, formatter, lower_is_better
    ("req_s", "req/s", lambda v: fmt_num(v), False),
    ("mib_s", "MiB/s", lambda v: fmt_num(v, 1), False),
    ("lat_mean_ms", "mean", fmt_ms, True),
    ("p99_ms", "p99", fmt_ms, True),
    ("cpu_us_per_req", "CPU us/req", lambda v: fmt_num(v, 2), True),
    ("cpu_ms_per_mib", "CPU ms/MiB", lambda v: fmt_num(v, 2), True),
    ("server_busy_pct", "server core", lambda v: "-" if v is None else f"{v:.0f}%", None),
    ("client_busy_pct", "h2load core", lambda v: "-" if v is None else f"{v:.0f}%", None),
    ("peak_rss_mib", "peak RSS MiB", lambda v: fmt_num(v, 1), True),
]


def median(vals):
    vals = sorted(v for v in vals if v is not None and not math.isnan(v))
    if not vals:
        return None
    n = len(vals)
    return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(root):
    lscpu = sh("lscpu")

    def lk(key):
        m = re.search(rf"^{re.escape(key)}:\s*(.+)$", lscpu, re.M)
        return m.group(1).strip() if m else None

    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    os_name = sh(". /etc/os-release 2>/dev/null && echo \"$PRETTY_NAME\"")
    pkgs = {}
    for p in ["h2o", "nghttp2-client", "nghttp2-server", "liburing-dev", "libjemalloc-dev", "gcc",
              "gnuplot-nox"]:
        v = sh(f"dpkg-query -W -f='${{Version}}' {p} 2>/dev/null")
        pkgs[p] = v or None
    rev = sh(f"git -C '{root}' rev-parse --short HEAD 2>/dev/null")
    dirty = sh(f"git -C '{root}' status --porcelain --untracked-files=no 2>/dev/null")
    return {
        "cpu_model": lk("Model name"), "cpus": lk("CPU(s)"),
        "threads_per_core": lk("Thread(s) per core"), "hypervisor": lk("Hypervisor vendor"),
        "mem_gib": mem, "kernel": os.uname().release, "os": os_name or None,
        "packages": pkgs, "spindle_rev": (rev + ("+dirty" if dirty else "")) if rev else None,
    }


def wolfssl_info(spindle_bin, build_dir, micro):
    """Which wolfSSL spindle-hello links: Debian's shared library (ldd names
    it) or the static local build (cmake/SpindleWolfSSL.cmake's prefix, from
    the build's CMakeCache.txt); its version and whether it was configured
    with AES-NI (WOLFSSL_AESNI in its options.h); and what spindle-micro's
    tls/aes128gcm_16k reported at run time, when it ran."""
    info = {"linked": None, "from": None, "version": None, "aesni_build": None}
    inc = None
    if spindle_bin and os.path.exists(spindle_bin):
        m = re.search(r"(libwolfssl\.so\S*) => (\S+)", sh(f"ldd '{spindle_bin}' 2>/dev/null"))
        if m:
            info["linked"], info["from"], inc = "shared", m.group(2), "/usr/include"
        else:
            info["linked"] = "static"
            try:
                with open(os.path.join(build_dir or "", "CMakeCache.txt")) as f:
                    cache = f.read()
            except OSError:
                cache = ""
            m = re.search(r"^SPINDLE_WOLFSSL_PREFIX:PATH=(.*)$", cache, re.M)
            if m and os.path.exists(os.path.join(m.group(1), "lib", "libwolfssl.a")):
                info["from"], inc = m.group(1), os.path.join(m.group(1), "include")
    if inc:
        try:
            with open(os.path.join(inc, "wolfssl", "options.h")) as f:
                info["aesni_build"] = bool(re.search(r"^#define WOLFSSL_AESNI\b", f.read(), re.M))
        except OSError:
            pass
        try:
            with open(os.path.join(inc, "wolfssl", "version.h")) as f:
                m = re.search(r'LIBWOLFSSL_VERSION_STRING\s+"([^"]+)"', f.read())
                info["version"] = m.group(1) if m else None
        except OSError:
            pass
    for r in (micro or {}).get("results", []):
        if r.get("name") == "tls/aes128gcm_16k" and "mb_per_sec" in r:
            n = r.get("notes", {})
            info["micro_aes128gcm_mb_s"] = r["mb_per_sec"]
            info["micro_cpu_pct"] = r.get("cpu_pct")
            info["micro_aesni_build"] = n.get("aesni_build")
            info["micro_aesni_used"] = n.get("aesni_used")
    return info


def wolfssl_sentence(w):
    if not w.get("linked"):
        return "wolfSSL: unknown (spindle-hello not found)."
    where = (f"the local build in `{w['from']}` (scripts/build_wolfssl.sh), linked statically"
             if w["linked"] == "static" and w.get("from") else
             f"Debian's shared library `{w['from']}`" if w["linked"] == "shared" else
             "linked statically, origin unknown")
    aesni = {True: "configured with AES-NI", False: "**without AES-NI** (slow AES-GCM: run "
             "scripts/build_wolfssl.sh)", None: "AES-NI unknown"}[w.get("aesni_build")]
    out = f"wolfSSL {w.get('version') or '?'}: {where}, {aesni}."
    if w.get("micro_aes128gcm_mb_s") is not None:
        used = w.get("micro_aesni_used")
        out += (f" spindle-micro `tls/aes128gcm_16k` (16 KiB records, this wolfSSL): "
                f"{w['micro_aes128gcm_mb_s']:,.0f} MB/s"
                + ("" if used is None else
                   ", AES-NI path " + ("taken" if used else "NOT taken") + " on this CPU")
                + ".")
    return out


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def aggregate(runs, scenarios, servers_present):
    summary = {}
    for sc in scenarios:
        summary[sc["id"]] = {}
        for srv in SERVERS:
            rs = [r for r in runs if r.get("scenario") == sc["id"] and r.get("server") == srv]
            if not rs:
                continue
            s = {k: median([r.get(k) for r in rs]) for k, *_ in METRICS}
            s["reps"] = len(rs)
            s["errors"] = sorted({e for r in rs for e in r["errors"]})
            s["failed"] = sum(r.get("req_failed", 0) + r.get("req_errored", 0) +
                              r.get("req_timeout", 0) for r in rs)
            s["cpu0_other_pct_max"] = max((r.get("cpu0_other_pct", 0) for r in rs), default=0)
            s["cpu1_other_pct_max"] = max((r.get("cpu1_other_pct", 0) for r in rs), default=0)
            s["client_busy_pct"] = median([r.get("client_busy_pct") for r in rs])
            s["attempts"] = sum(int(r.get("attempt", 1)) for r in rs)
            if sc.get("tls"):
                s["tls_negotiated"] = sorted({
                    f"{r.get('tls_protocol', '?')} {r.get('tls_cipher', '?')}"
                    + (f", {r['tls_temp_key']}" if r.get("tls_temp_key") else "")
                    for r in rs if r.get("tls_protocol")})
            summary[sc["id"]][srv] = s
    return summary


def targets(summary, idle, servers_present, idle_tls=None):
    out = []

    def get(sc, srv, k):
        return summary.get(sc, {}).get(srv, {}).get(k)

    def add(name, goal, value, ref, limit, detail):
        if value is None or ref is None:
            out.append({"target": name, "goal": goal, "value": None, "status": "not evaluated",
                        "detail": detail})
            return
        r = value / ref if ref else None
        ok = r is not None and r <= limit
        out.append({"target": name, "goal": goal, "ratio": r, "value": value, "reference": ref,
                    "status": "met" if ok else "missed", "detail": detail})

    for sc, label in (("small-mux", "small responses, multiplexed (spindle from memory)"),
                      ("many-conns", "many connections (spindle from memory)")):
        if sc not in summary:
            continue
        add(f"server CPU per request, {label}", "<= 0.5x h2o",
            get(sc, "spindle", "cpu_us_per_req"), get(sc, "h2o", "cpu_us_per_req"), 0.5,
            "us/request, spindle vs h2o" if "h2o" in servers_present else "h2o missing")
    if "1mib" in summary:
        add("server CPU per MiB, 1 MiB bodies (spindle from memory)", "<= 0.5x h2o",
            get("1mib", "spindle", "cpu_ms_per_mib"), get("1mib", "h2o", "cpu_ms_per_mib"), 0.5,
            "ms/MiB, spindle vs h2o" if "h2o" in servers_present else "h2o missing")
    # Issue 15: the same files from every server.
    for sc, label, limit in (("file-13b", "13 B file", 0.5), ("file-4k", "4 KiB file", 0.5),
                             ("file-64k", "64 KiB file", 0.6)):
        if sc in summary:
            add(f"server CPU per request, {label} (apps/static)", f"<= {limit}x h2o",
                get(sc, "spindle", "cpu_us_per_req"), get(sc, "h2o", "cpu_us_per_req"), limit,
                "us/request, spindle-static vs h2o's file handler" if "h2o" in servers_present
                else "h2o missing")
    if any(sc.startswith("tls-") for sc in summary):
        # Issue 5: TLS 1.3 server CPU per request at most 0.7x h2o's; per
        # MiB over TLS is asked for without a goal.
        add("server CPU per request, TLS small responses, multiplexed", "<= 0.7x h2o",
            get("tls-small-mux", "spindle", "cpu_us_per_req"),
            get("tls-small-mux", "h2o", "cpu_us_per_req"), 0.7,
            "us/request over TLS 1.3, spindle vs h2o" if "h2o" in servers_present
            else "h2o missing")
        v = get("tls-1mib", "spindle", "cpu_ms_per_mib")
        ref = get("tls-1mib", "h2o", "cpu_ms_per_mib")
        out.append({"target": "server CPU per MiB, TLS 1 MiB bodies", "goal": "reported (no goal)",
                    "value": v, "reference": ref, "ratio": ratio(v, ref),
                    "status": "reported" if v is not None and ref is not None
                    else "not evaluated",
                    "detail": "ms/MiB over TLS 1.3, spindle vs h2o" if "h2o" in servers_present
                    else "h2o missing"})
    if any(sc == "1mib-file" for sc in summary):
        add("server CPU per MiB, 1 MiB file (apps/static)", "<= 0.5x h2o",
            get("1mib-file", "spindle", "cpu_ms_per_mib"), get("1mib-file", "h2o", "cpu_ms_per_mib"),
            0.5, "ms/MiB, spindle-static vs h2o's file handler" if "h2o" in servers_present
            else "h2o missing")
    sp_idle = (idle.get("spindle") or {}).get("kib_per_conn")
    h2o_idle = (idle.get("h2o") or {}).get("kib_per_conn")
    if not idle:
        pass  # a partial run (--only)
    elif sp_idle is None:
        out.append({"target": "memory per idle connection", "goal": "<= 0.8 KiB (h2o ~0.9 KiB)",
                    "value": None, "status": "not evaluated", "detail": "no measurement"})
    else:
        out.append({"target": "memory per idle connection", "goal": "<= 0.8 KiB (h2o ~0.9 KiB)",
                    "value": sp_idle, "reference": h2o_idle, "ratio": sp_idle / 0.8,
                    "status": "met" if sp_idle <= 0.8 else "missed",
                    "detail": "KiB of server RSS per idle connection, the second 1000"
                              + (f"; h2o: {h2o_idle:.2f} KiB" if h2o_idle is not None
                                 else "")})
    if idle_tls:
        # Issue 19: anonymous RSS per idle TLS connection at most 0.8x h2o's.
        add("memory per idle TLS connection", "<= 0.8x h2o",
            (idle_tls.get("spindle") or {}).get("anon_kib_per_conn"),
            (idle_tls.get("h2o") or {}).get("anon_kib_per_conn"), 0.8,
            "KiB of anonymous RSS per idle TLS 1.3 connection, the second step"
            if "h2o" in servers_present else "h2o missing")
    for sc, label, limit in (
            ("latency", "single-stream mean latency (spindle from memory)", 0.8),
            ("spin-latency", "single-stream mean latency, low-latency mode (--ring-spin-us 200)",
             0.6),
            ("file-latency", "single-stream mean latency, 13 B file (apps/static)", 0.8)):
        if sc not in summary:
            continue
        peer_means = {p: get(sc, p, "lat_mean_ms") for p in PEERS
                      if get(sc, p, "lat_mean_ms") is not None}
        best = min(peer_means, key=peer_means.get) if peer_means else None
        detail = f"best peer: {best}" if best else "no peer measured"
        cpu = get(sc, "spindle", "cpu_us_per_req")
        if sc == "spin-latency" and cpu is not None:
            detail += f"; spindle's CPU {cpu:.1f} us per request (the spin's cost)"
        add(label, f"<= {limit}x the best peer",
            get(sc, "spindle", "lat_mean_ms"), peer_means.get(best) if best else None, limit,
            detail)
    return out


def paired_ratios(runs, scenarios):
    """Per repetition, spindle's CPU per request (per MiB for 1 MiB, mean
    latency for the latency row) over each peer's in the same repetition:
    {scenario: [(rep, {peer: ratio})]}, file rows only."""
    out = {}
    for sc in scenarios:
        if sc["id"] not in FILE_ROWS:
            continue
        key = ("lat_mean_ms" if sc["id"].endswith("latency") else
               "cpu_ms_per_mib" if sc["id"] == "1mib-file" else "cpu_us_per_req")
        by_rep = {}
        for r in runs:
            if r.get("scenario") == sc["id"]:
                by_rep.setdefault(r.get("rep"), {})[r.get("server")] = r.get(key)
        rows = []
        for rep in sorted(k for k in by_rep if k is not None):
            v = by_rep[rep]
            rows.append((rep, {p: ratio(v.get("spindle"), v.get(p)) for p in PEERS if p in v}))
        out[sc["id"]] = (key, rows)
    return out


def table_rows(summary, scenarios, tls, servers_present, text=False):
    """Rows of cells for the results table (text: short scenario names).
    tls: scenarios.json's "tls" (its "missing" says why TLS rows did not run)."""
    head = ["scenario", "server"] + [h for _, h, *_ in METRICS] + ["errors"]
    rows = []
    for sc in scenarios:
        label = sc["short"] if text else f"{sc['label']} (`{sc['args']}`)"
        if sc.get("tls") and tls.get("missing"):
            rows.append([label, "all", "not run: " + tls["missing"]] +
                        [""] * (len(METRICS) - 1) + [""])
            continue
        first = True
        for srv in SERVERS:
            if not runs_in(srv, sc["id"]):
                continue
            s = summary.get(sc["id"], {}).get(srv)
            if srv not in servers_present:
                rows.append([label if first else "", srv] + ["-"] * len(METRICS) +
                            ["missing (not installed)"])
                first = False
                continue
            if s is None:
                continue
            cells = [f(s.get(k)) for k, _, f, _ in METRICS]
            err = "0" if not s["errors"] else "; ".join(s["errors"])
            rows.append([label if first else "", srv] + cells + [err])
            first = False
        sp = summary.get(sc["id"], {}).get("spindle")
        for peer in PEERS:
            ps = summary.get(sc["id"], {}).get(peer)
            if not sp or not ps:
                continue
            cells = [fmt_ratio(ratio(sp.get(k), ps.get(k))) if better is not None else ""
                     for k, _, _, better in METRICS]
            rows.append(["", f"spindle/{peer}"] + cells + [""])
    return head, rows


def text_table(head, rows):
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    lines = []
    for r in [head] + rows:
        cells = []
        for i, c in enumerate(r):
            c = str(c)
            cells.append(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]))
        lines.append("  ".join(cells).rstrip())
        if r is head:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [str(c) for c in r]
        if cells[1].startswith("spindle/"):
            cells[1] = f"*{cells[1]}*"
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def write_chart(work, summary, scenarios, servers_present, png):
    if not shutil.which("gnuplot"):
        return "gnuplot not installed"
    panels = [("req_s", "requests/s (log)", True), ("cpu_us_per_req", "server CPU us/request (log)", True),
              ("p99_ms", "p99 latency, ms (log)", True), ("peak_rss_mib", "peak RSS, MiB", False)]
    srvs = [s for s in SERVERS if s in servers_present]
    for key, _, _ in panels:
        with open(os.path.join(work, f"chart_{key}.dat"), "w") as f:
            f.write("scenario " + " ".join(srvs) + "\n")
            for sc in scenarios:
                vals = []
                for s in srvs:
                    v = summary.get(sc["id"], {}).get(s, {}).get(key)
                    vals.append("NaN" if v is None else f"{v:.6g}")
                f.write(f"\"{sc['short']}\" " + " ".join(vals) + "\n")
    gp = [f"set terminal png size 1400,900 font ',11'", f"set output '{png}'",
          "set datafile missing 'NaN'", "set style data histograms",
          "set style histogram clustered gap 1", "set style fill solid 0.85 border -1",
          "set boxwidth 0.9", "set key top right", "set grid ytics", "set xtics nomirror",
          "set multiplot layout 2,2 title 'spindle vs peers: one server core (taskset -c 0), h2load -t 1 on core 1'"]
    for key, title, log in panels:
        gp.append(f"set title '{title}'")
        gp.append("set logscale y" if log else "unset logscale y")
        gp.append("set yrange [*:*]" if log else "set yrange [0:*]")
        dat = os.path.join(work, f"chart_{key}.dat")
        cols = ", ".join(f"'{dat}' using {i + 2}:xtic(1) title columnheader({i + 2})"
                         for i in range(len(srvs)))
        gp.append(f"plot {cols}")
    gp.append("unset multiplot")
    script = os.path.join(work, "chart.gp")
    with open(script, "w") as f:
        f.write("\n".join(gp) + "\n")
    p = subprocess.run(["gnuplot", script], capture_output=True, text=True)
    if p.returncode != 0:
        return "gnuplot failed: " + p.stderr.strip()[-300:]
    return None


def micro_rows(micro):
    rows = []
    for r in micro.get("results", []):
        if "skipped" in r:
            rows.append([r["name"], "skipped: " + r["skipped"], "", "", "", "", "", "", ""])
            continue
        ns = r["ns_per_op"]
        notes = ", ".join(f"{k}={v:g}" for k, v in r.get("notes", {}).items())
        cpu = r.get("cpu_pct")
        cpu_ns = r.get("cpu_ns_per_op")
        rows.append([r["name"], f"{ns['median']:,.1f}", f"{ns['p10']:,.1f} .. {ns['p90']:,.1f}",
                     "-" if cpu is None else f"{cpu:.0f}%",
                     "-" if cpu_ns is None else f"{cpu_ns:,.1f}",
                     r.get("unit", "op"),
                     f"{r['ops_per_sec']:,.0f}",
                     f"{r['mb_per_sec']:,.0f}" if "mb_per_sec" in r else "-", notes])
    return rows


def tls_lines(summary, scenarios, tls, md=False):
    """What each server negotiated in the TLS rows (one line per server)."""
    out = []
    for sc in scenarios:
        if not sc.get("tls") or tls.get("missing"):
            continue
        got = []
        for srv in SERVERS:
            s = summary.get(sc["id"], {}).get(srv)
            if s is not None:
                neg = "; ".join(s.get("tls_negotiated") or []) or "nothing (no connection)"
                got.append(f"{srv} {neg}")
        if got:
            name = sc["label"] if md else sc["short"]
            out.append(f"{name}: negotiated " + " | ".join(got))
    return out


def cmd_report(a):
    work = a.work
    with open(os.path.join(work, "scenarios.json")) as f:
        scen_def = json.load(f)
    scenarios = scen_def["scenarios"]
    tls = scen_def.get("tls")
    tls = tls if isinstance(tls, dict) else {}
    servers_present = scen_def["servers_present"]
    runs = []
    for d in sorted(glob.glob(os.path.join(work, "runs", "*", "*", "*"))):
        if os.path.exists(os.path.join(d, "meta.env")):
            runs.append(parse_run(d))
    idle = {}
    for srv in SERVERS:
        if srv == "nginx":
            continue
        p = os.path.join(work, "idle", srv + ".json")
        if os.path.exists(p):
            try:
                with open(p) as f:
                    idle[srv] = json.load(f)
            except ValueError:
                idle[srv] = {"error": "unparsable output"}
    idle_tls = {}
    for srv in SERVERS:
        p = os.path.join(work, "idle-tls", srv + ".json")
        if os.path.exists(p):
            try:
                with open(p) as f:
                    idle_tls[srv] = json.load(f)
            except ValueError:
                idle_tls[srv] = {"error": "unparsable output"}
    micro = None
    if a.micro and os.path.exists(a.micro):
        try:
            with open(a.micro) as f:
                micro = json.load(f)
        except ValueError:
            micro = None
    summary = aggregate(runs, scenarios, servers_present)
    tg = targets(summary, idle, servers_present, idle_tls)
    machine = machine_info(a.root)
    machine["wolfssl"] = wolfssl_info(a.spindle, a.build, micro)
    stamp = a.stamp
    png_name = f"{stamp}.png"
    chart_err = write_chart(work, summary, scenarios, servers_present,
                            os.path.join(a.results_dir, png_name))
    head, rows = table_rows(summary, scenarios, tls, servers_present)
    result = {
        "timestamp": stamp, "command": a.command, "quick": a.quick, "machine": machine,
        "servers_present": servers_present, "missing_notes": scen_def.get("missing", {}),
        "scenarios": scenarios, "tls": tls, "summary": summary, "idle": idle, "idle_tls": idle_tls,
        "targets": tg, "runs": runs, "micro": micro,
        "chart": None if chart_err else png_name, "chart_error": chart_err,
        "content_checks": scen_def.get("content_checks", {}),
    }
    json_path = os.path.join(a.results_dir, f"{stamp}.json")
    with open(json_path, "w") as f:
        json.dump(result, f, indent=1)

    # Console
    print()
    for sc in scenarios:
        print(f"  {sc['short']:10} = {sc['label']}: h2load {sc['args']}")
    print()
    print(text_table(*table_rows(summary, scenarios, tls, servers_present, text=True)))
    for line in tls_lines(summary, scenarios, tls):
        print(line)
    print(wolfssl_sentence(machine["wolfssl"]).replace("**", "").replace("`", ""))
    print()
    print("idle connections (server RSS growth per idle h2c connection):"
          + ("" if idle else " not measured"))
    for srv in SERVERS if idle else ():
        i = idle.get(srv)
        if srv == "nginx":
            continue
        if srv not in servers_present:
            print(f"  {srv:8} missing (not installed)")
        elif not i or i.get("kib_per_conn") is None:
            print(f"  {srv:8} no measurement ({(i or {}).get('error', 'see log')})")
        else:
            cold = i.get("kib_per_conn_cold")
            print(f"  {srv:8} {i['kib_per_conn']:.2f} KiB/conn for the second 1000"
                  + (f", {cold:.2f} for the first" if cold is not None else "")
                  + f"  ({i['conns_alive']}/{i['conns_requested']} alive, RSS "
                  f"{i['rss_before_kib']} -> {i.get('rss_mid_kib', '?')} -> "
                  f"{i['rss_after_kib']} KiB)")
    if idle_tls:
        print("idle TLS connections (server anonymous RSS growth per idle TLS 1.3 connection):")
        for srv in SERVERS:
            i = idle_tls.get(srv)
            if not i or i.get("anon_kib_per_conn") is None:
                print(f"  {srv:8} no measurement ({(i or {}).get('error', 'see log')})")
            else:
                print(f"  {srv:8} {i['anon_kib_per_conn']:.2f} KiB/conn for the second step, "
                      f"{i.get('anon_kib_per_conn_cold') or float('nan'):.2f} for the first  "
                      f"({i['conns_alive']}/{i['conns_requested']} alive, RssAnon "
                      f"{i['anon_before_kib']} -> {i['anon_mid_kib']} -> "
                      f"{i['anon_after_kib']} KiB)")
    pr = paired_ratios(runs, scenarios)
    if pr:
        print()
        print("file rows, per repetition (spindle-static / peer, same repetition):")
        for sc_id, (key, rep_rows) in pr.items():
            for rep, rat in rep_rows:
                print(f"  {sc_id:12} rep {rep}: {key} " + ", ".join(
                    f"{p} {fmt_ratio(v)}" for p, v in rat.items()))
    print()
    print("targets:")
    for t in tg:
        r = t.get("ratio")
        h2c_idle = t["target"] == "memory per idle connection"  # judged in KiB, not as a ratio
        print(f"  {t['status']:>13}  {t['target']}: goal {t['goal']}"
              + (f", ratio {r:.2f}" if r is not None and not h2c_idle else "")
              + (f", {t['value']:.2f} KiB" if h2c_idle and t["value"] is not None
                 else "") + f"  ({t['detail']})")
    print()
    print(f"wrote {json_path}")
    if chart_err:
        print(f"chart: {chart_err}")
    else:
        print(f"wrote {os.path.join(a.results_dir, png_name)}")

    # RESULTS.md
    md = []
    md.append("# spindle benchmark results")
    md.append("")
    md.append(f"Generated by `bench/e2e.sh` on {stamp}"
              + (" (**--quick**: 1/10 of the requests, one repetition; a smoke test, not a "
                 "measurement)" if a.quick else "") + ". Do not edit: rerun the script.")
    md.append("")
    md.append("## Machine")
    md.append("")
    pk = machine["packages"]
    md.append(f"- CPU: {machine['cpu_model']}, {machine['cpus']} CPUs "
              f"({machine['threads_per_core']} thread(s) per core"
              + (f", {machine['hypervisor']} guest" if machine.get("hypervisor") else "") + ")")
    md.append(f"- memory: {machine['mem_gib']} GiB; kernel {machine['kernel']}; {machine['os']}")
    md.append("- packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v))
    md.append(f"- spindle: {machine['spindle_rev']}, CMake Release build (`build-bench/`)")
    md.append("- " + wolfssl_sentence(machine["wolfssl"]))
    md.append("")
    md.append("## Command")
    md.append("")
    md.append("```sh")
    md.append(a.command)
    md.append("```")
    md.append("")
    md.append("Every server runs with one worker pinned to core 0 (`taskset -c 0`): "
              "`spindle-hello --shards 1 --log-level 0 --set max-requests=0`; h2o with "
              "`num-threads: 1` (its helper processes are counted in its CPU and memory); "
              "`nghttpd --no-tls -n 1`. h2load runs on core 1 (`taskset -c 1 h2load -t 1`), "
              "cleartext h2 with prior knowledge, except in the TLS rows (below). A fresh "
              "server is started for every run; "
              f"each scenario runs {scen_def['reps']} time(s) per server, interleaved, and the "
              "table shows the median. Same content from every server: `/` is the 13-byte "
              "\"Hello, World!\", `/1m` 1 MiB (byte i = (i*31+7) & 0xff); response headers "
              "differ (h2o and nghttpd send date, etag, last-modified...), which counts in MiB/s. "
              "**Which rows compare the same work.** In the rows marked *from memory* "
              "spindle is spindle-hello answering from a buffer while h2o and nghttpd read a "
              "file: they show the framework's cost, not a file server's. In the *file* rows "
              "(13 B, 4 KiB, 64 KiB, 1 MiB file, file latency) every server serves the same "
              "file from the same directory: spindle is `spindle-static --root DOCROOT` (same "
              "flags; small files from its per-shard content cache, revalidated every second; "
              "1 MiB mmap'd and sent by reference, see docs/static.md), h2o its `file.dir` "
              "handler, `nghttpd -d DOCROOT`, and nginx 1.22 (only in these rows; one worker, "
              "`sendfile on` (off in the latency row, see below), `tcp_nopush on`, `open_file_cache max=1000 inactive=60s`, `open_file_cache_valid "
              "1s`, no access log, `listen ... http2` for h2c; its HTTP/2 is known to be slow, "
              "but it is the most deployed file server; with `sendfile on` its single-stream "
              "latency was ~44 ms per small response on the development VM, the frame header "
              "written and the body sendfile()d separately meeting the client's delayed ACK, "
              "so the latency row runs it with `sendfile off`, ~0.3 ms).")
    md.append("")
    md.append("Columns: req/s and MiB/s (all bytes h2load received) over h2load's elapsed time; "
              "mean latency from h2load's \"time for request\"; p99 from its `--log-file` "
              "per-request timings; server CPU = utime+stime (+ children) of the server's process "
              "group from /proc/PID/stat, before and after the run, per successful request and "
              "per MiB received; server core = that CPU time over the elapsed time (near 100%: "
              "the server is the bottleneck); h2load core = h2load's own CPU time (rusage) over "
              "the elapsed time (near 100%: the client is the bottleneck, compare CPU per "
              "request rather than req/s, as facts.md advises); peak "
              "RSS = VmHWM summed over the server's processes. Ratios are spindle / peer: below "
              "1.00x is better for spindle on every column except req/s and MiB/s.")
    md.append("")
    if any(sc.get("tls") for sc in scenarios):
        md.append("TLS rows: h2 over TLS with ALPN, h2load `" + tls.get("h2load_args", "?") +
                  " https://127.0.0.1:PORT/...`: it offers only TLS_AES_128_GCM_SHA256 for TLS "
                  "1.3 (and ECDHE-ECDSA-AES128-GCM-SHA256 for 1.2: h2load 1.52 has no option "
                  "to refuse TLS 1.2, so a run that negotiated anything but "
                  f"{tls.get('want', '?')} is flagged in the errors column) and only the P-256 "
                  "group (the only one nghttpd 1.52 accepts). Every server uses the same "
                  + tls.get("cert", "certificate") + ": `spindle-hello ... --tls-port 0 --cert "
                  "CERT --key KEY` (h2load targets the TLS port; the h2c port stays open, "
                  "unused), h2o with `ssl: {certificate-file, key-file, "
                  "ocsp-update-interval: 0}` in its `listen` block, `nghttpd -n 1 -d DOCROOT "
                  "PORT KEY CERT`. Each connection does one full handshake (no resumption); "
                  "with 16 or 8 connections per run the handshakes are a small share of the "
                  "CPU, which is mostly record encryption.")
        md.append("")
    md.append("## Results")
    md.append("")
    md.append(md_table(head, rows))
    md.append("")
    if pr:
        md.append("File rows, each repetition's ratio spindle-static / peer (same repetition, "
                  "servers interleaved; CPU per request, per MiB for 1 MiB, mean latency for the "
                  "latency row):")
        md.append("")
        for sc_id, (key, rows_) in pr.items():
            cells = ["rep %d: " % rep + ", ".join(f"{p} {fmt_ratio(v)}" for p, v in rat.items())
                     for rep, rat in rows_]
            md.append(f"- {sc_id} ({key}): " + "; ".join(cells))
        md.append("")
    tl = tls_lines(summary, scenarios, tls, md=True)
    if tl:
        md.append("Negotiated (h2load's \"TLS Protocol\", \"Cipher\", \"Server Temp Key\"): "
                  + "; ".join(tl) + ".")
        md.append("")
    noisy = [(sc, srv, s["cpu0_other_pct_max"], s["cpu1_other_pct_max"])
             for sc, v in summary.items() for srv, s in v.items()
             if max(s.get("cpu0_other_pct_max", 0), s.get("cpu1_other_pct_max", 0)) > 5]
    if noisy:
        md.append("Noise: other processes (not these servers or h2load) ran on the measured "
                  "cores during some kept runs, after retries: "
                  + ", ".join(f"{sc}/{srv} core 0 up to {p0:.0f}%, core 1 up to {p1:.0f}%"
                              for sc, srv, p0, p1 in noisy)
                  + ". req/s and latency there are understated; CPU per request much less so.")
        md.append("")
    if not chart_err:
        md.append(f"![chart](results/{png_name})")
        md.append("")
    md.append("### Memory per idle connection")
    md.append("")
    md.append("Idle h2c connections (preface, SETTINGS, server SETTINGS ACKed, then idle; "
              "`bench/idle_conns.py`), opened in two steps of 1000 and all kept open; server "
              "RSS (summed over its processes) before, between and after. *First 1000* "
              "includes one-time costs on a fresh server (pools, arenas, tables sized on "
              "first use); *next 1000* is the marginal cost of one more idle connection, the "
              "figure the target is judged on.")
    md.append("")
    md.append("| server | KiB/conn, next 1000 | KiB/conn, first 1000 | RSS KiB: before, "
              "after 1000, after 2000 | alive |")
    md.append("|---|---|---|---|---|")
    for srv in SERVERS:
        i = idle.get(srv)
        if srv == "nginx":
            continue
        if srv not in servers_present:
            md.append(f"| {srv} | missing (not installed) | | | |")
        elif not i or i.get("kib_per_conn") is None:
            md.append(f"| {srv} | no measurement | | | |")
        else:
            cold = i.get("kib_per_conn_cold")
            md.append(f"| {srv} | {i['kib_per_conn']:.2f} | "
                      f"{'-' if cold is None else f'{cold:.2f}'} | {i['rss_before_kib']}, "
                      f"{i.get('rss_mid_kib', '?')}, {i['rss_after_kib']} | "
                      f"{i['conns_alive']}/{i['conns_requested']} |")
    if idle_tls:
        md.append("")
        md.append("Idle TLS connections (TLS 1.3, ALPN h2, the run's certificate; the same "
                  "exchange inside TLS; `bench/idle_conns.py --tls`), two steps of "
                  f"{(next(iter(idle_tls.values())).get('conns_requested') or 0) // 2}; "
                  "anonymous RSS (RssAnon: heap, not the mapped binary).")
        md.append("")
        md.append("| server | KiB/conn, second step | KiB/conn, first step | RssAnon KiB: "
                  "before, after step 1, after step 2 | alive |")
        md.append("|---|---|---|---|---|")
        for srv in SERVERS:
            i = idle_tls.get(srv)
            if srv not in servers_present:
                md.append(f"| {srv} | missing (not installed) | | | |")
            elif not i or i.get("anon_kib_per_conn") is None:
                md.append(f"| {srv} | no measurement | | | |")
            else:
                cold = i.get("anon_kib_per_conn_cold")
                md.append(f"| {srv} | {i['anon_kib_per_conn']:.2f} | "
                          f"{'-' if cold is None else f'{cold:.2f}'} | {i['anon_before_kib']}, "
                          f"{i['anon_mid_kib']}, {i['anon_after_kib']} | "
                          f"{i['conns_alive']}/{i['conns_requested']} |")
    md.append("")
    md.append("## Targets")
    md.append("")
    md.append("| target | goal | measured | status |")
    md.append("|---|---|---|---|")
    for t in tg:
        if t["value"] is None:
            meas = t["detail"]
        elif t["target"] == "memory per idle connection":
            meas = f"{t['value']:.2f} KiB ({t['detail']})"
        else:
            meas = f"{t['ratio']:.2f}x ({t['detail']}: {t['value']:.3g} vs {t['reference']:.3g})"
        md.append(f"| {t['target']} | {t['goal']} | {meas} | **{t['status']}** |")
    md.append("")
    md.append("## Microbenchmarks")
    md.append("")
    if micro:
        cfg = micro.get("config", {})
        md.append(f"`spindle-micro --cpu 0 --json` (Release; median of {cfg.get('runs')} runs of "
                  f"~{cfg.get('time_ms')} ms each after {cfg.get('warmup')} warm-up run(s); "
                  "p10..p90 across runs; MB = 10^6 bytes). `conn/*` drive proto/h2_conn in "
                  "memory through a counting allocator; `ring/*` go through the kernel; "
                  "`tls/*` seal or open one 16 KiB TLS record with the wolfSSL spindle links "
                  "(aesni_build: configured with AES-NI; aesni_used: the AES-NI path taken on "
                  "this CPU). "
                  "cpu = the benchmark thread's CPU time over wall time: below ~95% on a "
                  "compute-only case the thread was preempted by another process and ns/op is "
                  "inflated; CPU ns/op scales ns/op by that share (for `ring/*` and the "
                  "cross-thread `spsc/*` cases, time off the CPU is part of the cost, so read "
                  "ns/op).")
        md.append("")
        md.append("| case | ns/op | p10 .. p90 | cpu | CPU ns/op | unit | ops/s | MB/s | notes |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        for r in micro_rows(micro):
            md.append("| " + " | ".join(r) + " |")
    else:
        md.append("Not run (`--no-micro`), or spindle-micro failed.")
    md.append("")
    md.append("## Raw data")
    md.append("")
    md.append(f"`bench/results/{stamp}.json` holds every run (h2load numbers, CPU samples, load "
              "on both cores), the idle-connection measurements and the micro results.")
    md.append("")
    md += kept_sections(a.md)
    with open(a.md, "w") as f:
        f.write("\n".join(md))
    print(f"wrote {a.md}")
    return 0


# Sections of RESULTS.md that other benchmarks own (bench/tfb.sh's figures,
# pasted by hand): carried over unchanged when this script rewrites the file.
KEPT_HEADINGS = ("## TechEmpower",)


def kept_sections(path):
    try:
        text = open(path).read()
    except OSError:
        return []
    out, keep = [], False
    for line in text.split("\n"):
        if line.startswith("## "):
            keep = line.startswith(KEPT_HEADINGS)
        if keep:
            out.append(line)
    return out


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sample")
    p.add_argument("pgid", type=int)
    p = sub.add_parser("wait-quiet")
    p.add_argument("max_s", type=float)
    p.add_argument("pct", type=float)
    p = sub.add_parser("exec")
    p.add_argument("out_json")
    p.add_argument("timeout", type=float)
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("run")
    p.add_argument("run_dir")
    p = sub.add_parser("noise")
    p.add_argument("run_dir")
    p = sub.add_parser("report")
    p.add_argument("work")
    p.add_argument("--root", required=True)
    p.add_argument("--results-dir", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--stamp", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--micro")
    p.add_argument("--spindle", help="the spindle-hello binary (to tell which wolfSSL it links)")
    p.add_argument("--build", help="its CMake build directory")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", action="store_true",
                   help="a partial run (e2e.sh --only): the markdown goes next to the JSON")
    a = ap.parse_args()
    if a.cmd == "report" and a.only:
        a.md = os.path.join(a.results_dir, f"{a.stamp}.md")
    if a.cmd == "sample":
        cmd_sample(a.pgid)
    elif a.cmd == "wait-quiet":
        cmd_wait_quiet(a.max_s, a.pct)
    elif a.cmd == "exec":
        argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
        return cmd_exec(a.out_json, a.timeout, argv)
    elif a.cmd == "run":
        cmd_run(a.run_dir)
    elif a.cmd == "noise":
        cmd_noise(a.run_dir)
    else:
        return cmd_report(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
