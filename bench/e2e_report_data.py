"""The data of bench/e2e_report.py's report: what e2e.sh left in WORK,
the medians per scenario and server, the targets, the per-repetition
ratios of the file rows, and what the machine and the wolfSSL build are."""
import glob
import json
import os
import re
import subprocess

from e2e_report_common import FILE_ROWS, METRICS, PEERS, SERVERS, median, ratio
from e2e_report_run import parse_run


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
            ("file-latency", "single-stream mean latency, 13 B file (apps/static)", 0.8),
            ("file-spin-latency",
             "single-stream mean latency, 13 B file, low-latency mode (--ring-spin-us 200)", 0.6)):
        if sc not in summary:
            continue
        peer_means = {p: get(sc, p, "lat_mean_ms") for p in PEERS
                      if get(sc, p, "lat_mean_ms") is not None}
        best = min(peer_means, key=peer_means.get) if peer_means else None
        detail = f"best peer: {best}" if best else "no peer measured"
        cpu = get(sc, "spindle", "cpu_us_per_req")
        if sc.endswith("spin-latency") and cpu is not None:
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


def per_server_json(d, servers):
    """{server: d/SERVER.json} for those that wrote one (unparsable: an
    error entry)."""
    out = {}
    for srv in servers:
        p = os.path.join(d, srv + ".json")
        if os.path.exists(p):
            try:
                with open(p) as f:
                    out[srv] = json.load(f)
            except ValueError:
                out[srv] = {"error": "unparsable output"}
    return out


def load_work(work, micro_path):
    """What bench/e2e.sh left in WORK (scenarios.json, runs/*/*/*, idle/,
    idle-tls/) and the micro results: (scenario definitions, runs, idle,
    idle_tls, micro).  Each run is parsed again (e2e_report_run.parse_run)."""
    with open(os.path.join(work, "scenarios.json")) as f:
        scen_def = json.load(f)
    runs = []
    for d in sorted(glob.glob(os.path.join(work, "runs", "*", "*", "*"))):
        if os.path.exists(os.path.join(d, "meta.env")):
            runs.append(parse_run(d))
    idle = per_server_json(os.path.join(work, "idle"), [s for s in SERVERS if s != "nginx"])
    idle_tls = per_server_json(os.path.join(work, "idle-tls"), SERVERS)
    micro = None
    if micro_path and os.path.exists(micro_path):
        try:
            with open(micro_path) as f:
                micro = json.load(f)
        except ValueError:
            micro = None
    return scen_def, runs, idle, idle_tls, micro
