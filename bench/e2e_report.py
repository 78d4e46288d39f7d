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
  e2e_report.py render JSON --md PATH  write the markdown of a saved results
                                       JSON again (after a fix to the report)

The parts: e2e_report_proc.py (/proc sampling), e2e_report_run.py (one
run), e2e_report_data.py (loading, medians, targets), e2e_report_render.py
(tables, chart, console), e2e_report_md.py (RESULTS.md), and
e2e_report_common.py (servers, metrics, number formats).
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # the e2e_report_* modules: no __pycache__ in bench/
from e2e_report_data import (aggregate, load_work, machine_info,  # noqa: E402
                             paired_ratios, targets, wolfssl_info)
from e2e_report_md import write_markdown  # noqa: E402
from e2e_report_proc import cmd_exec, cmd_sample, cmd_wait_quiet  # noqa: E402
from e2e_report_render import print_console, write_chart  # noqa: E402
from e2e_report_run import cmd_noise, cmd_run  # noqa: E402


def cmd_report(a):
    scen_def, runs, idle, idle_tls, micro = load_work(a.work, a.micro)
    scenarios = scen_def["scenarios"]
    tls = scen_def.get("tls")
    tls = tls if isinstance(tls, dict) else {}
    servers_present = scen_def["servers_present"]
    summary = aggregate(runs, scenarios, servers_present)
    tg = targets(summary, idle, servers_present, idle_tls)
    machine = machine_info(a.root)
    machine["wolfssl"] = wolfssl_info(a.spindle, a.build, micro)
    stamp = a.stamp
    png_name = f"{stamp}.png"
    png_path = os.path.join(a.results_dir, png_name)
    chart_err = write_chart(a.work, summary, scenarios, servers_present, png_path)
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
    pr = paired_ratios(runs, scenarios)
    print_console(result, pr, json_path, png_path)
    write_markdown(a.md, result, scen_def["reps"], pr)
    print(f"wrote {a.md}")
    return 0


def cmd_render(json_path, md_path):
    """The markdown of a saved results JSON, written again: the repetitions
    per scenario are the highest run's; the chart is the one saved then."""
    with open(json_path) as f:
        r = json.load(f)
    r.setdefault("idle_tls", {})
    r.setdefault("chart_error", None if r.get("chart") else "no chart saved")
    r["tls"] = r.get("tls") if isinstance(r.get("tls"), dict) else {}
    reps = max((run.get("rep", 1) for run in r["runs"]), default=1)
    write_markdown(md_path, r, reps, paired_ratios(r["runs"], r["scenarios"]))
    print(f"wrote {md_path}")
    return 0


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
    p = sub.add_parser("render")
    p.add_argument("json")
    p.add_argument("--md", required=True)
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
    elif a.cmd == "render":
        return cmd_render(a.json, a.md)
    else:
        return cmd_report(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
#!/usr/bin/python3
