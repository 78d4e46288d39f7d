"""The tables of bench/e2e_report.py's report: the results table (console
text and markdown), the chart (gnuplot) and the console
summary."""
import os
import shutil
import subprocess

from e2e_report_common import (METRICS, PEERS, SERVERS, fmt_ratio, ratio, runs_in)


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


def print_console(res, pr, json_path, png_path):
    """The console summary: the rows, the table, idle memory, the file rows'
    per-repetition ratios, the targets, what was written."""
    scenarios, tls, summary, machine = res["scenarios"], res["tls"], res["summary"], res["machine"]
    idle, idle_tls, servers_present = res["idle"], res.get("idle_tls") or {}, res["servers_present"]
    tg = res["targets"]
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
    if res["chart_error"]:
        print(f"chart: {res['chart_error']}")
    else:
        print(f"wrote {png_path}")
