"""Metric names from the contract table of docs/observability.md, which dashboards and alert rules must follow.

The table rows look like: | `sre_agent_http_requests_total` | counter | labels | process | first scrape |
Counters are used exactly as listed (with `_total`), gauges as listed, histograms only through their
`_bucket`, `_sum` and `_count` series.
"""
from __future__ import annotations

import os
import re

ROW = re.compile(r"^\|\s*`(sre_agent_[a-z0-9_]+)`\s*\|\s*([a-z]+)")
# identifiers in PromQL; recording rules (`sre_agent:...`) contain a colon and are not raw metrics
IDENT = re.compile(r"(?<![A-Za-z0-9_:])(sre_agent_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"(?<![A-Za-z0-9_:])(sre_agent_[a-z0-9_]+)\s*(\{[^}]*\})?")


def allowed_series(repo: str) -> dict[str, str]:
    """Series name -> the contract row it comes from (`name (type)`)."""
    out: dict[str, str] = {}
    with open(os.path.join(repo, "docs", "observability.md")) as f:
        text = f.read()
    begin, end = "<!-- contract:metrics:begin -->", "<!-- contract:metrics:end -->"
    if begin not in text or end not in text:
        raise SystemExit("docs/observability.md: no contract:metrics table")
    for line in text[text.index(begin):text.index(end)].splitlines():
        m = ROW.match(line)
        if not m:
            continue
        name, kind = m.group(1), m.group(2)
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                out[name + suffix] = f"{name} (histogram)"
        else:
            out[name] = f"{name} ({kind})"
    if not out:
        raise SystemExit("docs/observability.md: no metric table rows found")
    return out


def strip_strings(expr: str) -> str:
    """Drop label values so that names inside quotes are not taken for metrics."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def unknown_metrics(expr: str, allowed: dict[str, str]) -> list[str]:
    return sorted({m for m in IDENT.findall(strip_strings(expr)) if m not in allowed})


def selectors_missing_label(expr: str, matcher: str) -> list[str]:
    """sre_agent_* selectors in expr whose braces do not contain `matcher` (e.g. service=~"$service")."""
    bad = []
    for m in SELECTOR.finditer(expr):
        braces = m.group(2) or ""
        if matcher not in braces.replace(" ", ""):
            bad.append(m.group(0))
    return bad
