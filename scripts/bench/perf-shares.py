#!/usr/bin/env python3
"""Inclusive frame shares of a perf profile (docs/benchmarks.md, "Where the gateway's time goes").

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


def samples(stream):
    comm, period, frames = None, 0, []
    for raw in stream:
        line = raw.rstrip("\n")
        if not line.strip():
            if comm is not None:
                yield comm, period, frames
            comm, period, frames = None, 0, []
            continue
        if not line.startswith("\t"):
            if comm is not None:
                yield comm, period, frames
            # "comm tid period" (comm may contain spaces: the last two fields are tid and period)
            parts = line.split()
            if len(parts) < 2:
                continue
            try:
                period = int(parts[-1])
            except ValueError:
                period = 1
            comm, frames = " ".join(parts[:-2]) if len(parts) > 2 else parts[0], []
        else:
            sym = line.strip()
            sym = re.sub(r"^[0-9a-f]+\s+", "", sym)  # an address before the symbol, if -F ip was given
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym.removesuffix(" (inlined)"))
            frames.append(sym)
    if comm is not None:
        yield comm, period, frames


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
    print("| frame | share of the samples |")
    print("|---|---|")
    for label, share in groups:
        print(f"| {label} | {share:.1f}% |")
    print()
    print("| thread | share |")
    print("|---|---|")
    for t, share in threads:
        print(f"| {t} | {share:.1f}% |")
    if functions:
        print()
        print("| function (self) | share |")
        print("|---|---|")
        for f, share in functions:
            print(f"| `{f}` | {share:.1f}% |")


if __name__ == "__main__":
    main()
