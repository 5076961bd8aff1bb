#!/usr/bin/env python3
"""Checks of the Grafana dashboards and provisioning in observability/grafana/.

static  (no server needed)
  - every dashboard JSON parses, has a unique stable uid, a title, the `$service` variable
    (label_values(up, service)), unique panel ids and titles;
  - every data source reference anywhere is an object whose uid is `prometheus` or `tempo`;
  - every Prometheus query uses only metric names from the contract table of docs/observability.md, filters sre_agent_* series
    with service=~"$service", and parses as PromQL (promtool check rules on a generated rule file);
  - observability/grafana/allow-empty.txt names existing dashboards and panels;
  - provisioning: data sources `prometheus` (exemplars -> tempo) and `tempo` (service map and
    traces-to-metrics -> prometheus, node graph on); dashboards provider reads /var/lib/grafana/dashboards.

live    (after smoke traffic, against a real Prometheus)
  - every Prometheus query of every panel, with Grafana variables replaced ($service -> .*,
    $__rate_interval and $__interval -> 1m, $__range -> 5m), goes to PROM_URL/api/v1/query; a rejected
    query fails, an empty result fails unless allow-empty.txt lists the panel.
  - prints "N queries validated, M with data, K allowed empty".

Usage: check_dashboards.py static --repo REPO --promtool PATH
       check_dashboards.py live --repo REPO [--prom-url URL] [-v]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

sys.dont_write_bytecode = True  # keep scripts/lib free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conventions import allowed_series, selectors_missing_label, unknown_metrics  # noqa: E402

ALLOWED_DS_UIDS = {"prometheus", "tempo"}
SERVICE_MATCHER = 'service=~"$service"'
DASH_DIR = ("observability", "grafana", "dashboards")
ALLOW_EMPTY = ("observability", "grafana", "allow-empty.txt")


# ----------------------------------------------------------------------------- loading
def load_dashboards(repo: str, problems: list[str]) -> list[tuple[str, dict]]:
    out = []
    files = sorted(glob.glob(os.path.join(repo, *DASH_DIR, "*.json")))
    if not files:
        problems.append("no dashboards in observability/grafana/dashboards/*.json")
    for path in files:
        rel = os.path.relpath(path, repo)
        try:
            with open(path) as f:
                out.append((rel, json.load(f)))
        except (OSError, json.JSONDecodeError) as e:
            problems.append(f"{rel}: does not parse: {e}")
    return out


def iter_panels(panels: list[dict]):
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels") or [])


def prometheus_targets(dash: dict):
    """(panel, target) for every target that runs against the Prometheus data source."""
    for panel in iter_panels(dash.get("panels") or []):
        for target in panel.get("targets") or []:
            ds = target.get("datasource") or panel.get("datasource") or {}
            if isinstance(ds, dict) and ds.get("uid") == "prometheus" and target.get("expr"):
                yield panel, target


def to_promql(expr: str) -> str:
    """Replace the Grafana variables our dashboards use with values Prometheus accepts."""
    expr = re.sub(r"\$\{service(?::[a-z]+)?\}|\$service\b", ".*", expr)
    expr = re.sub(r"\$__rate_interval\b|\$\{__rate_interval\}", "1m", expr)
    expr = re.sub(r"\$__interval\b|\$\{__interval\}", "1m", expr)
    expr = re.sub(r"\$__range_s\b", "300", expr)
    expr = re.sub(r"\$__range\b|\$\{__range\}", "5m", expr)
    return expr


def load_allow_empty(repo: str, problems: list[str]) -> dict[tuple[str, str], str]:
    path = os.path.join(repo, *ALLOW_EMPTY)
    entries: dict[tuple[str, str], str] = {}
    if not os.path.exists(path):
        return entries
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.match(r"^(\S+)\s(.+?)\s{2,}(\S.*)$", line)
            if not m:
                problems.append(f"allow-empty.txt:{n}: expected '<dashboard-uid> <panel title>  <reason>'")
                continue
            entries[(m.group(1), m.group(2).strip())] = m.group(3).strip()
    return entries


# ----------------------------------------------------------------------------- static
def walk_datasources(node, where: str, problems: list[str]):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                if not isinstance(value, dict) or value.get("uid") not in ALLOWED_DS_UIDS:
                    problems.append(f"{where}: datasource {value!r} must be {{\"uid\": \"prometheus\"|\"tempo\"}}")
            else:
                walk_datasources(value, where, problems)
    elif isinstance(node, list):
        for item in node:
            walk_datasources(item, where, problems)


def check_provisioning(repo: str, allowed: dict[str, str], problems: list[str]):
    prov = os.path.join(repo, "observability", "grafana", "provisioning")
    with open(os.path.join(prov, "datasources", "datasource.yml")) as f:
        ds_doc = yaml.safe_load(f)
    by_uid = {d.get("uid"): d for d in ds_doc.get("datasources", [])}
    prom, tempo = by_uid.get("prometheus"), by_uid.get("tempo")
    if not prom or prom.get("type") != "prometheus":
        problems.append("datasource.yml: no data source with uid prometheus and type prometheus")
    else:
        dests = (prom.get("jsonData") or {}).get("exemplarTraceIdDestinations") or []
        if not any(d.get("datasourceUid") == "tempo" and d.get("name") == "trace_id" for d in dests):
            problems.append("datasource.yml: prometheus needs exemplarTraceIdDestinations {name: trace_id, datasourceUid: tempo}")
    if not tempo or tempo.get("type") != "tempo":
        problems.append("datasource.yml: no data source with uid tempo and type tempo")
    else:
        jd = tempo.get("jsonData") or {}
        if (jd.get("serviceMap") or {}).get("datasourceUid") != "prometheus":
            problems.append("datasource.yml: tempo serviceMap.datasourceUid must be prometheus")
        if (jd.get("nodeGraph") or {}).get("enabled") is not True:
            problems.append("datasource.yml: tempo nodeGraph.enabled must be true")
        t2m = jd.get("tracesToMetrics") or {}
        if t2m.get("datasourceUid") != "prometheus":
            problems.append("datasource.yml: tempo tracesToMetrics.datasourceUid must be prometheus")
        for q in t2m.get("queries") or []:
            for metric in unknown_metrics(q.get("query", ""), allowed):
                problems.append(f"datasource.yml: tracesToMetrics query {q.get('name')!r}: {metric} is not in the contract table of docs/observability.md")
    other = set(by_uid) - ALLOWED_DS_UIDS
    if other:
        problems.append(f"datasource.yml: unexpected data source uids {sorted(other)}")

    with open(os.path.join(prov, "dashboards", "dashboards.yml")) as f:
        dp = yaml.safe_load(f)
    paths = [(p.get("options") or {}).get("path") for p in dp.get("providers", [])]
    if "/var/lib/grafana/dashboards" not in paths:
        problems.append("dashboards.yml: no file provider with options.path /var/lib/grafana/dashboards")


def promql_syntax(promtool: str, queries: list[tuple[str, str]], problems: list[str]):
    """Parse every query with promtool by wrapping them as recording rules."""
    def run(items):
        rules = {"groups": [{"name": "dashboard-queries",
                             "rules": [{"record": f"dashboard:query_{i}", "expr": e} for i, (_, e) in enumerate(items)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump(rules, f)
            name = f.name
        try:
            return subprocess.run([promtool, "check", "rules", name], capture_output=True, text=True)
        finally:
            os.unlink(name)

    if not queries:
        return
    res = run(queries)
    if res.returncode == 0:
        return
    for where, expr in queries:  # pinpoint the culprit(s)
        one = run([(where, expr)])
        if one.returncode != 0:
            msg = (one.stdout + one.stderr).strip().splitlines()
            problems.append(f"{where}: PromQL does not parse: {msg[-1] if msg else '?'}")


def cmd_static(args) -> int:
    repo = args.repo
    problems: list[str] = []
    allowed = allowed_series(repo)
    dashboards = load_dashboards(repo, problems)
    allow_empty = load_allow_empty(repo, problems)
    uids: dict[str, str] = {}
    titles_by_uid: dict[str, set[str]] = {}
    queries: list[tuple[str, str]] = []
    n_panels = 0

    for rel, dash in dashboards:
        uid = dash.get("uid")
        if not uid or not re.fullmatch(r"[a-z0-9-]{3,40}", uid):
            problems.append(f"{rel}: uid {uid!r} must be a stable lower-case id (3-40 chars)")
        elif uid in uids:
            problems.append(f"{rel}: uid {uid} already used by {uids[uid]}")
        else:
            uids[uid] = rel
        if not dash.get("title"):
            problems.append(f"{rel}: no title")
        if dash.get("id") not in (None,):
            problems.append(f"{rel}: remove the numeric `id` (Grafana assigns it; uid is the stable key)")

        variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list", [])}
        svc = variables.get("service")
        q = svc.get("query") if svc else None
        q = q.get("query") if isinstance(q, dict) else q
        if not svc or "label_values(up, service)" not in (q or "").replace("  ", " "):
            problems.append(f"{rel}: needs a `service` variable with query label_values(up, service)")

        walk_datasources(dash, rel, problems)

        ids, titles = set(), set()
        for panel in iter_panels(dash.get("panels") or []):
            n_panels += 1
            pid, title = panel.get("id"), panel.get("title", "")
            if pid in ids:
                problems.append(f"{rel}: duplicate panel id {pid}")
            ids.add(pid)
            if panel.get("type") == "row":
                continue
            if not title:
                problems.append(f"{rel}: panel {pid} has no title")
            if title in titles:
                problems.append(f"{rel}: duplicate panel title {title!r} (allow-empty.txt keys on titles)")
            if "  " in title:
                problems.append(f"{rel}: panel title {title!r} contains two spaces")
            titles.add(title)
        titles_by_uid[uid] = titles

        for panel, target in prometheus_targets(dash):
            where = f"{rel} / {panel.get('title')} / {target.get('refId')}"
            expr = target["expr"]
            for metric in unknown_metrics(expr, allowed):
                problems.append(f"{where}: metric {metric} is not in the contract table of docs/observability.md "
                                "(counters end in _total; histograms only as _bucket/_sum/_count)")
            for sel in selectors_missing_label(expr, SERVICE_MATCHER):
                problems.append(f"{where}: selector {sel} lacks {SERVICE_MATCHER}")
            queries.append((where, to_promql(expr)))

    for (uid, title), reason in allow_empty.items():
        if uid not in titles_by_uid:
            problems.append(f"allow-empty.txt: unknown dashboard uid {uid}")
        elif title not in titles_by_uid[uid]:
            problems.append(f"allow-empty.txt: dashboard {uid} has no panel titled {title!r}")

    check_provisioning(repo, allowed, problems)
    promql_syntax(args.promtool, queries, problems)

    for p in problems:
        print(f"  FAIL {p}")
    if not problems:
        print(f"  ok: {len(dashboards)} dashboards, {n_panels} panels, {len(queries)} Prometheus queries parse and use "
              f"conventions metric names; {len(allow_empty)} allow-empty entries; provisioning consistent")
    return 1 if problems else 0


# ----------------------------------------------------------------------------- live
def prom_get(base: str, path: str, params: dict) -> dict:
    url = f"{base.rstrip('/')}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=15) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return {"status": "error", "error": f"HTTP {e.code}: {body[:200]}"}


def cmd_live(args) -> int:
    repo, base = args.repo, args.prom_url
    problems: list[str] = []
    dashboards = load_dashboards(repo, problems)
    allow_empty = load_allow_empty(repo, problems)

    try:
        build = prom_get(base, "/api/v1/status/buildinfo", {})
    except (urllib.error.URLError, OSError) as e:
        print(f"  FAIL Prometheus at {base} is not reachable ({e}); start the mesh (scripts/up.sh) and send "
              "smoke traffic (scripts/smoke.sh) first, or set PROM_URL")
        return 1
    print(f"  Prometheus {build.get('data', {}).get('version', '?')} at {base}")

    values = prom_get(base, "/api/v1/label/service/values", {"match[]": "up"}).get("data") or []
    if values:
        print(f"  $service values (label_values(up, service)): {', '.join(values)}")
    else:
        problems.append("label_values(up, service) is empty: no scrape target carries a `service` label")

    # Every panel target, then its result. A series that smoke traffic has just created needs a scrape or
    # two (and rate()/increase() two samples) before it shows: empty results are asked again until the
    # deadline (--wait) before they count as failures.
    targets = []
    for rel, dash in dashboards:
        uid = dash.get("uid")
        for panel, target in prometheus_targets(dash):
            title = panel.get("title")
            targets.append((uid, title, f"{uid} / {title} / {target.get('refId')}", to_promql(target["expr"])))

    def evaluate(query):
        res = prom_get(base, "/api/v1/query", {"query": query})
        if res.get("status") != "success":
            return "rejected", res.get("error")
        result = (res.get("data") or {}).get("result")
        if isinstance(result, list) and len(result) == 0:
            return "empty", None
        return "data", result

    results = {t[2]: evaluate(t[3]) for t in targets}
    deadline = time.monotonic() + args.wait
    waiting = [t for t in targets if results[t[2]][0] == "empty" and (t[0], t[1]) not in allow_empty]
    while waiting and time.monotonic() < deadline:
        time.sleep(2)
        for t in waiting:
            results[t[2]] = evaluate(t[3])
        waiting = [t for t in waiting if results[t[2]][0] == "empty"]

    n = with_data = allowed_empty = nan_only = 0
    for uid, title, where, query in targets:
        n += 1
        state, value = results[where]
        if state == "rejected":
            problems.append(f"{where}: Prometheus rejected the query: {value}\n         {query}")
            continue
        if state == "empty":
            if (uid, title) in allow_empty:
                allowed_empty += 1
                if args.verbose:
                    print(f"  empty (allowed: {allow_empty[(uid, title)]}): {where}")
            else:
                problems.append(f"{where}: no data (waited {args.wait:.0f} s)\n         {query}")
            continue
        with_data += 1
        samples = [r.get("value", [None, None])[1] for r in value] if isinstance(value, list) else []
        if samples and all(isinstance(v, str) and v.lower() == "nan" for v in samples):
            nan_only += 1
        if args.verbose:
            print(f"  data ({len(value) if isinstance(value, list) else 1} series): {where}")

    ex = prom_get(base, "/api/v1/query_exemplars",
                  {"query": '{__name__=~"sre_agent_.+_bucket"}', "start": "0", "end": "9999999999"})
    ex_data = ex.get("data") or []
    n_ex = sum(len(s.get("exemplars") or []) for s in ex_data)
    print(f"  exemplars stored for sre_agent_*_bucket series: {n_ex} (informational; they need OpenMetrics scraping)")

    for p in problems:
        print(f"  FAIL {p}")
    note = f" ({nan_only} of them NaN only: series exist but no activity in the window)" if nan_only else ""
    print(f"  {n} queries validated, {with_data} with data, {allowed_empty} allowed empty{note}")
    return 1 if problems else 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("static")
    s.add_argument("--repo", required=True)
    s.add_argument("--promtool", required=True)
    s.set_defaults(func=cmd_static)
    live = sub.add_parser("live")
    live.add_argument("--repo", required=True)
    live.add_argument("--prom-url", default=os.environ.get("PROM_URL", "http://127.0.0.1:9090"))
    live.add_argument("-v", "--verbose", action="store_true")
    live.add_argument("--wait", type=float, default=float(os.environ.get("SRE_LIVE_WAIT", "45")),
                      help="seconds to keep asking queries that are still empty (fresh series need scrapes)")
    live.set_defaults(func=cmd_live)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
