#!/usr/bin/env python3
"""Project rules for observability/prometheus/alerts.yml that promtool does not check.

- every alert has a `severity` label (critical | warning | info) and `summary`, `description` and
  `runbook_url` annotations; runbook_url is docs/observability.md#<anchor> and that heading exists;
- every alert has at least one firing and one quiet case in observability/prometheus/tests/*.yml;
- every raw metric used by a rule is listed in the contract table of docs/observability.md (histograms via _bucket/_sum/_count).

Usage: check_alerts.py --repo REPO      (exit 1 and one line per problem when something is wrong)
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import sys

import yaml

sys.dont_write_bytecode = True  # keep scripts/lib free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conventions import allowed_series, unknown_metrics  # noqa: E402

SEVERITIES = {"critical", "warning", "info"}
RUNBOOK = re.compile(r"^docs/observability\.md#([a-z0-9-]+)$")


def github_anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def doc_anchors(path: str) -> set[str]:
    anchors = set()
    with open(path) as f:
        for line in f:
            m = re.match(r"^#{1,6}\s+(.*)$", line)
            if m:
                anchors.add(github_anchor(m.group(1)))
            anchors.update(re.findall(r'<a id="([^"]+)"', line))
    return anchors


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    args = ap.parse_args()
    repo = args.repo
    problems: list[str] = []

    allowed = allowed_series(repo)
    doc = os.path.join(repo, "docs", "observability.md")
    anchors = doc_anchors(doc) if os.path.exists(doc) else set()
    if not anchors:
        problems.append("docs/observability.md is missing or has no headings (runbook anchors)")

    with open(os.path.join(repo, "observability", "prometheus", "alerts.yml")) as f:
        rules_doc = yaml.safe_load(f)
    alerts: list[str] = []
    for group in rules_doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            for metric in unknown_metrics(rule.get("expr", ""), allowed):
                problems.append(f"{name}: metric {metric} is not in the contract table of docs/observability.md")
            if "alert" not in rule:
                continue
            alerts.append(name)
            sev = (rule.get("labels") or {}).get("severity")
            if sev not in SEVERITIES:
                problems.append(f"{name}: severity label must be one of {sorted(SEVERITIES)}, got {sev!r}")
            ann = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    problems.append(f"{name}: missing annotation {key}")
            m = RUNBOOK.match(ann.get("runbook_url", ""))
            if not m:
                problems.append(f"{name}: runbook_url must be docs/observability.md#<anchor>")
            elif m.group(1) not in anchors:
                problems.append(f"{name}: runbook anchor #{m.group(1)} has no heading in docs/observability.md")

    if len(set(alerts)) != len(alerts):
        problems.append("duplicate alert names in alerts.yml")

    firing: set[str] = set()
    quiet: set[str] = set()
    test_files = sorted(glob.glob(os.path.join(repo, "observability", "prometheus", "tests", "*.yml")))
    if not test_files:
        problems.append("no unit tests in observability/prometheus/tests/*.yml")
    for path in test_files:
        with open(path) as f:
            tdoc = yaml.safe_load(f) or {}
        for test in tdoc.get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                (firing if case.get("exp_alerts") else quiet).add(case.get("alertname"))
    for name in alerts:
        if name not in firing:
            problems.append(f"{name}: no unit test where it fires")
        if name not in quiet:
            problems.append(f"{name}: no unit test where it stays quiet")
    for name in sorted((firing | quiet) - set(alerts)):
        problems.append(f"tests refer to unknown alert {name}")

    for p in problems:
        print(f"  FAIL {p}")
    if not problems:
        print(f"  ok: {len(alerts)} alerts: labels, annotations, runbook anchors, firing and quiet tests, metric names")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
