"""What every part of bench/e2e_report.py shares: the servers, the file rows,
the table's metrics and the number formats."""
import math
import os


SERVERS = ["spindle", "h2o", "nghttpd", "nginx"]


PEERS = ["h2o", "nghttpd", "nginx"]


# Rows where every server serves the same file (spindle: spindle-static);
# nginx runs only in these.  The others: spindle-hello answers from memory.
FILE_ROWS = ["file-13b", "file-4k", "file-64k", "1mib-file", "file-latency", "file-spin-latency"]


def runs_in(srv, sc_id):
    """Does srv take part in scenario sc_id (nginx: the file rows only)?"""
    return srv != "nginx" or sc_id in FILE_ROWS


CLK_TCK = os.sysconf("SC_CLK_TCK")


MIB = 1 << 20


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


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"
