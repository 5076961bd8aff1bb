#!/usr/bin/env python3
"""Inclusive frame shares of a perf profile (scripts/bench.sh's profile section; docs/benchmarks.md).

    perf record -g --call-graph dwarf -p PID -o perf.data -- sleep 8
    perf script -i perf.data -F comm,tid,period,ip,sym | scripts/bench/perf-shares.py [--top N] [--json]

For every group below: the share of all samples (weighted by period) whose stack holds a matching frame, or whose
thread name matches. A sample counts once per group however many of its frames match. --top N also lists the N
functions with the largest self share (the frame the sample was taken in). --json prints one JSON object
(scripts/bench.sh's profile row) instead of the markdown tables.
"""
import json
import re
import sys
from collections import defaultdict

# (label, thread-name regex or None, frame regex or None): a sample is in the group when either matches.
GROUPS = [
    ("SQLite's worker thread, all of it", r"^sqlx-sqlite", None),
    ("  of it: the WAL checkpoint inside a commit", None, r"sqlite3WalCheckpoint|walCheckpoint"),
    ("  fsync / fdatasync (any thread)", None, r"__x64_sys_(fsync|fdatasync)|^(fsync|fdatasync)$"),
    ("delivery bodies to segment files (pwrite)", None, r"sre_store::bodies"),
    ("hyper HTTP/1 (connection, reads, writes)", None, r"^hyper::proto"),
    ("socket reads and writes in the kernel", None, r"tcp_sendmsg|tcp_recvmsg"),
    ("flume/futex hand-offs", None, r"^flume::|futex_wait|futex_wake"),
    ("kernel scheduler (context switches)", None, r"^__schedule$|^schedule$"),
    ("jemalloc", None, r"^_rjem_|^je_|tikv_jemalloc"),
    ("glibc malloc/free", None, r"^(__libc_)?(malloc|free|realloc|calloc)$|^_int_(malloc|free)"),
    ("memcpy/memmove", None, r"__memmove|__memcpy|^memcpy$|^memmove$"),
    ("JSON log line (JsonLogLayer::on_event)", None, r"JsonLogLayer.*on_event"),
    ("JSON parse (webhook::classify + validation pass)", None, r"sre_gateway::webhook::classify|IgnoredAny"),
    ("tracing-opentelemetry layer", None, r"^<?tracing_opentelemetry"),
    ("OTLP export (batch span processor thread)", r"OpenTelemetry|BatchSpan", r"opentelemetry_otlp"),
    ("HMAC-SHA256", None, r"^sha2::|sha256"),
    ("Redis XADD (redis crate)", None, r"^redis::|^<redis::"),
    ("Prometheus metrics", None, r"^prometheus::|^<prometheus::"),
]


def symbol(line):
    """A frame line of `perf script`: "\t<address> <symbol>+0x<offset>", maybe " (inlined)"."""
    sym = re.sub(r"^[0-9a-f]+\s+", "", line.strip())
    return re.sub(r"\+0x[0-9a-f]+$", "", sym.removesuffix(" (inlined)"))


def samples(stream):
    """(thread name, period, frames innermost first) per sample; a header line starts each sample."""
    comm, period, frames = None, 0, []
    for line in stream:
        if line.startswith("\t"):
            frames.append(symbol(line))
            continue
        if comm is not None:
            yield comm, period, frames
        comm, period, frames = None, 0, []
        parts = line.split()
        if len(parts) >= 3:  # "comm tid period"; comm may hold spaces
            comm = " ".join(parts[:-2])
            period = int(parts[-1]) if parts[-1].isdigit() else 1
    if comm is not None:
        yield comm, period, frames


def table(header, rows):
    print(f"| {header} | share |")
    print("|---|---|")
    for name, share in rows:
        print(f"| {name} | {share:.1f}% |")


def main():
    top = 0
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
    compiled = [(label, re.compile(t) if t else None, re.compile(f) if f else None) for label, t, f in GROUPS]
    total = 0
    per_group = defaultdict(int)
    per_func = defaultdict(int)
    per_thread = defaultdict(int)
    for comm, period, frames in samples(sys.stdin):
        total += period
        per_thread[comm] += period
        for label, tre, fre in compiled:
            if (tre and tre.search(comm)) or (fre and any(fre.search(f) for f in frames)):
                per_group[label] += period
        if top and frames:
            per_func[frames[0]] += period  # self time: the sampled frame itself
    if not total:
        sys.exit("no samples")
    groups = [[label.strip(), round(100.0 * per_group[label] / total, 1)] for label, _, _ in compiled]
    functions = [[f[:110], round(100.0 * p / total, 1)] for f, p in sorted(per_func.items(), key=lambda kv: -kv[1])[:top]]
    threads = [[t, round(100.0 * p / total, 1)] for t, p in sorted(per_thread.items(), key=lambda kv: -kv[1])]
    if "--json" in sys.argv:
        print(json.dumps({"samples_period": total, "groups": groups, "threads": threads, "top": functions}))
        return
    table("frame", groups)
    print()
    table("thread", threads)
    if functions:
        print()
        table("function (self)", [(f"`{f}`", share) for f, share in functions])

if __name__ == "__main__":
    main()
