"""/proc sampling for bench/e2e.sh: the server's process group (CPU ticks,
VmHWM, VmRSS), per-CPU time, waiting for a quiet machine, and running
h2load with its own CPU time recorded (e2e_report.py sample, wait-quiet,
exec)."""
import glob
import json
import os
import subprocess
import time


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
