#!/usr/bin/env python3
"""Helpers of scripts/bench.sh (standard library only).

  bench.py body OUT                       the signed benchmarks' ~17 KB workflow_run failure payload
  bench.py sample PID STOPFILE OUT        samples a process's RSS (and CPU time) until STOPFILE exists
  bench.py wrk WRK_OUT SAMPLE KEY=VAL...  one wrk level as a JSON line (wrk output + the receiver's sample)
  bench.py run RUN.json VALIDATION.json   one pipeline run's timings as a JSON line
  bench.py scrape URL N                   N scrapes of a /metrics URL: p50/max ms and bytes, as JSON
  bench.py report RESULTS.jsonl OUT.md    the markdown tables and ratios
"""
import json
import os
import re
import statistics
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def body(out):
    # A workflow_run payload padded to GitHub's usual size with fields GitHub sends (a long display_title and
    # pull_requests list), so parsing and storage see a realistic body. Same as scripts/bench-ingest.sh.
    payload = {
        "action": "completed",
        "workflow_run": {
            "id": 9876543210, "name": "lint", "head_branch": "main",
            "head_sha": "0123456789abcdef0123456789abcdef01234567", "conclusion": "failure", "run_attempt": 1,
            "display_title": "x" * 200,
            "pull_requests": [{"id": i, "number": i, "url": "https://api.github.com/repos/bench/none/pulls/%d" % i}
                              for i in range(215)],
        },
        "repository": {"full_name": "bench/none", "name": "none", "owner": {"login": "bench"}},
    }
    data = json.dumps(payload, separators=(",", ":"))
    with open(out, "w") as f:
        f.write(data)
    print(len(data))


def proc_cpu_s(pid):
    """utime + stime (+ reaped children) of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sample(pid, stopfile, out):
    pid = int(pid)
    start_cpu, start = proc_cpu_s(pid), time.monotonic()
    peak = idle = proc_rss_kb(pid)
    cpu = start_cpu
    while not os.path.exists(stopfile):
        try:
            peak = max(peak, proc_rss_kb(pid))
            cpu = proc_cpu_s(pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - start
    with open(out, "w") as f:
        json.dump({"rss_start_mb": idle / 1024, "rss_peak_mb": peak / 1024,
                   "cpu_pct": 100 * (cpu - start_cpu) / elapsed if elapsed else 0}, f)


def wrk(wrk_out, sample_file, *kv):
    text = open(wrk_out).read()
    m = re.search(r"^BENCH (.*)$", text, re.M)
    if not m:
        sys.exit(f"no BENCH line in {wrk_out}:\n{text}")
    row = {k: float(v) for k, v in (p.split("=") for p in m.group(1).split())}
    row.update(json.load(open(sample_file)))
    for pair in kv:
        k, v = pair.split("=", 1)
        row[k] = int(v) if v.isdigit() else v
    print(json.dumps(row))


def run_timings(run_file, validation_file):
    run = json.load(open(run_file))
    try:
        validation = json.load(open(validation_file))
    except (OSError, ValueError):
        validation = {}
    total = run["updated_at_ms"] - run["created_at_ms"]
    # The sandboxed commands' own time: the failing step without and with the patch, and the test command.
    sandboxed = sum((validation.get(k) or {}).get("duration_ms", 0) for k in ("before", "after", "test"))
    stages = {s["stage"]: s["duration_ms"] for s in run.get("stages", [])}
    print(json.dumps({"run_id": run["run_id"], "status": run["status"], "total_ms": total,
                      "sandboxed_ms": sandboxed, "scans_ms": stages.get("scans", 0), "stages": stages}))


def scrape(url, n):
    times, size = [], 0
    for _ in range(int(n)):
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=5) as r:
            size = len(r.read())
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({"p50_ms": statistics.median(times), "max_ms": times[-1], "bytes": size}))


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def f0(x):
    return f"{x:,.0f}"


def f1(x):
    return f"{x:,.1f}"


def cpu_per_request_us(r):
    """The receiver's CPU time per answered request, in microseconds (None without requests)."""
    return r["cpu_pct"] / 100 / r["rps"] * 1e6 if r.get("rps") else None


def cpu_us(r):
    us = cpu_per_request_us(r)
    return f0(us) if us is not None else "-"


def report(results, out):
    rows = [json.loads(line) for line in open(results) if line.strip()]
    meta = next((r for r in rows if r.get("section") == "meta"), {})
    md = [f"# sre-agent benchmark, {meta.get('date', '?')}", "",
          f"Machine: {meta.get('machine', '?')}. Load: {meta.get('load', '?')}. "
          f"{meta.get('duration', '?')} s per level, wrk 2 threads, the same signed {meta.get('body_bytes', '?')}-byte "
          "workflow_run failure payload, every request its own X-GitHub-Delivery. Compare only within one run.", ""]

    ingest = [r for r in rows if r.get("section") == "ingest"]
    if ingest:
        md += ["## (a, b, f) Webhook ingest: the gateway (orchestrator stopped) and its peers", "",
               "| receiver | conns | req/s | p50 ms | p90 ms | p99 ms | non-2xx | socket errors | receiver CPU | "
               "CPU per request us | peak RSS MB |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in ingest:
            md.append(f"| {r['receiver']} | {r['conns']} | {f0(r['rps'])} | {r['p50']:.2f} | {r['p90']:.2f} | "
                      f"{r['p99']:.2f} | {int(r['non2xx'])} | {int(r['errors'])} | {r['cpu_pct']:.0f}% | "
                      f"{cpu_us(r)} | {f1(r['rss_peak_mb'])} |")
        by = {(r["receiver"], r["conns"]): r for r in ingest}
        ours = sorted({r["receiver"] for r in ingest if r["receiver"].startswith("sre-gateway")})
        peers = sorted({r["receiver"] for r in ingest if not r["receiver"].startswith("sre-gateway")})
        if ours and peers:
            md += ["", "Ratios ours / peer (throughput; p99 latency):", "",
                   "| gateway | peer | conns | req/s ratio | p99 ratio |", "|---|---|---|---|---|"]
            for o in ours:
                for p in peers:
                    for c in sorted({r["conns"] for r in ingest}):
                        a, b = by.get((o, c)), by.get((p, c))
                        if a and b and b["rps"] and b["p99"]:
                            md.append(f"| {o} | {p} | {c} | {a['rps'] / b['rps']:.2f}x | {a['p99'] / b['p99']:.2f}x |")
        md.append("")

    tele = [r for r in rows if r.get("section") == "telemetry"]
    if tele:
        md += ["## (c) Telemetry overhead: the gateway on SQLite, orchestrator stopped", "",
               "| telemetry | conns | req/s | p50 ms | p99 ms | vs off | gateway CPU | CPU per request us | vs off |",
               "|---|---|---|---|---|---|---|---|---|"]
        off = next((r for r in tele if r["mode"] == "off"), None)
        for r in tele:
            rel = f"{100 * (r['rps'] / off['rps'] - 1):+.1f}%" if off else "-"
            per, base = cpu_per_request_us(r), off and cpu_per_request_us(off)
            cpu_rel = f"{100 * (per / base - 1):+.1f}%" if per and base else "-"
            md.append(f"| {r['mode_label']} | {r['conns']} | {f0(r['rps'])} | {r['p50']:.2f} | {r['p99']:.2f} | {rel} | "
                      f"{r['cpu_pct']:.0f}% | {cpu_us(r)} | {cpu_rel} |")
        md.append("")

    runs = [r for r in rows if r.get("section") == "pipeline"]
    if runs:
        md += ["## (d) Orchestration overhead: pipeline runs of a trivial failing step, one at a time", "",
               "Per run from the store: total = updated_at_ms - created_at_ms (gateway ingest to the final record); "
               "sandboxed = the validator's commands' own time (failing step without and with the patch); "
               "scans = the scans stage (gitleaks, trivy and syft run as tools, in parallel).", "",
               "| store | runs | success | total p50 ms | total p99 ms | sandboxed p50 ms | overhead p50 ms | "
               "overhead p99 ms | overhead without scans p50 ms | without scans p99 ms |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for db in sorted({r["db"] for r in runs}):
            rs = [r for r in runs if r["db"] == db]
            total = [r["total_ms"] for r in rs]
            over = [r["total_ms"] - r["sandboxed_ms"] for r in rs]
            bare = [r["total_ms"] - r["sandboxed_ms"] - r["scans_ms"] for r in rs]
            ok = sum(r["status"] == "success" for r in rs)
            md.append(f"| {db} | {len(rs)} | {ok} | {f0(pct(total, 50))} | {f0(pct(total, 99))} | "
                      f"{f0(pct([r['sandboxed_ms'] for r in rs], 50))} | {f0(pct(over, 50))} | {f0(pct(over, 99))} | "
                      f"{f0(pct(bare, 50))} | {f0(pct(bare, 99))} |")
        stages = sorted({s for r in runs for s in r["stages"]})
        md += ["", "Stage durations, p50 ms (all runs): " +
               ", ".join(f"{s} {f0(pct([r['stages'].get(s, 0) for r in runs], 50))}" for s in stages), ""]

    scrapes = [r for r in rows if r.get("section") == "scrape"]
    if scrapes:
        md += ["## (e) /metrics scrape after load, and RSS per process", "",
               "| process | store | scrape p50 ms | scrape max ms | bytes | RSS idle MB | RSS under load (peak) MB |",
               "|---|---|---|---|---|---|---|"]
        for r in scrapes:
            md.append(f"| {r['process']} | {r['db']} | {r['p50_ms']:.2f} | {r['max_ms']:.2f} | {f0(r['bytes'])} | "
                      f"{f1(r['rss_idle_mb'])} | {f1(r['rss_load_mb'])} |")
        md.append("")
    prof = next((r for r in rows if r.get("section") == "profile"), None)
    if prof:
        level = next((r for r in rows if r.get("section") == "profile_level"), None)
        md += ["## Profile: the gateway at 64 connections (SQLite, 100% traces), `perf record -g --call-graph dwarf`", ""]
        if "skipped" in prof:
            md += [f"Skipped: {prof['skipped']}.", ""]
        else:
            if level:
                md += [f"{prof['seconds']} s of samples inside a level that ran at {f0(level['rps'])} req/s with "
                       f"the gateway at {level['cpu_pct']:.0f}% CPU ({cpu_us(level)} us per delivery; perf's own "
                       "unwinding copies slow it). Shares of the gateway's samples whose stack holds the frame "
                       "(inclusive: a sample counts once per row, rows overlap).", ""]
            md += ["| frame | share |", "|---|---|"] + [f"| {g} | {v:.1f}% |" for g, v in prof["groups"]]
            md += ["", "By thread:", "", "| thread | share |", "|---|---|"]
            md += [f"| {t} | {v:.1f}% |" for t, v in prof.get("threads", [])]
            md += ["", "Top functions (self: the frame each sample was taken in):", "", "| function | share |", "|---|---|"]
            md += [f"| `{fn.replace('|', '/')}` | {v:.1f}% |" for fn, v in prof["top"]]
        md.append("")
    open(out, "w").write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"body": body, "sample": sample, "wrk": wrk, "run": run_timings, "scrape": scrape, "report": report}[cmd](*args)
