#!/usr/bin/env python3
"""Helpers of scripts/drills.sh (standard library only): the fake GitHub's seed, signed webhooks sent in
parallel, waiting on runs, and each drill's counts and verdict.

    drills.py seed OUT.json
    drills.py send STATE.json RESULTS.jsonl SPEC...          SPEC = EVENT:JOB[:DELIVERY_ID], sent in parallel
    drills.py wait-running STATE.json JOB... [--timeout S]    prints RUN_ID=ATTEMPTS of the running runs, once
                                                              there is one (--timeout 0: at once, maybe none)
    drills.py report NAME STATE.json RESULTS.jsonl JOB... [--timeout S] [--restart-at MS] [--watch ID,...]
                                                              [--problems FILE]  (one more problem a line)
    drills.py wait-done STATE.json JOB... [--timeout S]       until every job's run is terminal (exit 1 if not)
    drills.py latency RESULTS.jsonl [LABEL]                   n, p50, p95, max of the webhook answers, and codes
    drills.py answers RESULTS.jsonl                           the non-2xx answers: status and body, counted
    drills.py metric URL NAME                                 one sample of a Prometheus exposition (0 if absent)

DRILL_PARALLEL bounds the webhooks in flight at once (default 50).

The gateway URL and webhook secret come from DRILL_GATEWAY and DRILL_SECRET.
"""

import concurrent.futures
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

REPO = "drill/app"
INSTALLATION = 42
APP_ID = 77
WORKFLOW = "CI"
STEP = "ruff check --select W291 --output-format concise app.py"

# Drill -> (workflow run id, check suite id, failed jobs). Job ids are run id + index (from 1).
RUNS = {
    "a": (1100, 1199, [f"a{i}" for i in range(1, 5)]),
    "b": (1200, 1299, ["b"]),
    "c": (1300, 1399, [f"c{i}" for i in range(1, 11)]),
    "d": (1400, 1499, ["d-planner", "d-policy", "d-scanner", "d-validator", "d-pr"]),
    "e": (1500, 1599, [f"e{i}" for i in range(1, 10)]),
    "f": (1600, 1699, [f"f{i}" for i in range(1, 5)]),
    "g": (1700, 1799, [f"g{i}" for i in range(1, 11)]),
    "h": (1800, 1899, ["h"]),
    "i": (1900, 1999, [f"i{i}" for i in range(1, 11)]),
    "j": (2000, 2099, [f"j{i}" for i in range(1, 9)]),
    "k": (2100, 2199, [f"k{i}" for i in range(1, 4)]),
    "l": (2200, 2299, ["l1"]),
}
TERMINAL = {"success", "fail", "blocked", "skipped"}


def job_ids():
    """Job name -> (job id, workflow run id, check suite id)."""
    out = {}
    for run_id, suite, jobs in RUNS.values():
        for i, name in enumerate(jobs, start=1):
            out[name] = (run_id + i, run_id, suite)
    return out


def job_log():
    lines = [
        "##[group]Run actions/checkout@v4",
        f"Syncing repository: {REPO}",
        "##[endgroup]",
        f"##[group]Run {STEP}",
        STEP,
        "shell: /usr/bin/bash -e {0}",
        "##[endgroup]",
        "app.py:1:15: W291 [*] Trailing whitespace",
        "app.py:2:17: W291 [*] Trailing whitespace",
        "Found 2 errors.",
        "[*] 2 fixable with `--fix`.",
        "##[error]Process completed with exit code 1.",
    ]
    return "".join(f"2026-12-01T10:00:{i:02}.0000000Z {line}\n" for i, line in enumerate(lines))


def seed(out):
    jobs_yaml = "".join(
        f"  {name}:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n"
        f"      - name: Lint\n        run: {STEP}\n"
        for _, _, names in RUNS.values()
        for name in names
    )
    workflow = f"name: {WORKFLOW}\non: [push]\njobs:\n{jobs_yaml}"
    runs = []
    for run_id, suite, names in RUNS.values():
        jobs = [
            {
                "id": run_id + i,
                "name": name,
                "conclusion": "failure",
                "steps": [["Set up job", "success"], ["Lint", "failure"]],
                "log": job_log(),
            }
            for i, name in enumerate(names, start=1)
        ]
        jobs.append({"id": run_id + 99, "name": f"build-{run_id}", "conclusion": "success",
                     "steps": [["Set up job", "success"], ["Build", "success"]]})
        runs.append({"id": run_id, "check_suite_id": suite, "workflow_name": WORKFLOW, "jobs": jobs})
    doc = {
        "app": {"id": APP_ID, "slug": "sre-agent", "installation_id": INSTALLATION},
        "users": [{"login": "dev", "email": "dev@example.com"}],
        "repos": [{
            "full_name": REPO,
            "default_branch": "main",
            "commits": [{
                "files": {"app.py": "def add(a, b):   \n    return a + b  \n", ".github/workflows/ci.yml": workflow},
                "message": "app with trailing whitespace",
                "author": ["Dev", "dev@example.com"],
            }],
            "runs": runs,
        }],
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)


def payload(event, job, sha):
    job_id, run_id, suite = job_ids()[job]
    repo = {"full_name": REPO}
    inst = {"id": INSTALLATION}
    if event == "workflow_job":
        body = {"action": "completed", "workflow_job": {
            "id": job_id, "run_id": run_id, "run_attempt": 1, "name": job, "workflow_name": WORKFLOW,
            "head_sha": sha, "head_branch": "main", "status": "completed", "conclusion": "failure"}}
    elif event == "check_run":
        body = {"action": "completed", "check_run": {
            "id": job_id, "name": job, "head_sha": sha, "status": "completed", "conclusion": "failure",
            "check_suite": {"id": suite, "head_branch": "main"}}}
    elif event == "workflow_run":
        body = {"action": "completed", "workflow_run": {
            "id": run_id, "name": WORKFLOW, "head_sha": sha, "head_branch": "main", "run_attempt": 1,
            "check_suite_id": suite, "status": "completed", "conclusion": "failure"}}
    elif event == "check_suite":
        body = {"action": "completed", "check_suite": {
            "id": suite, "head_sha": sha, "head_branch": "main", "status": "completed", "conclusion": "failure",
            "app": {"name": "GitHub Actions", "slug": "github-actions"}}}
    else:
        raise SystemExit(f"unknown event {event}")
    body["repository"] = repo
    body["installation"] = inst
    return json.dumps(body).encode()


def http(method, url, body=None, headers=None, timeout=15):
    headers = dict(headers or {})
    token = os.environ.get("DRILL_API_TOKEN")
    if token and "/api/v1/" in url:
        headers.setdefault("authorization", f"Bearer {token}")
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def gateway():
    return os.environ.get("DRILL_GATEWAY", "http://127.0.0.1:18000")


def deliver(event, job, delivery, sha):
    body = payload(event, job, sha)
    secret = os.environ["DRILL_SECRET"].encode()
    sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-github-event": event, "x-github-delivery": delivery,
               "x-hub-signature-256": sig}
    started = time.time()
    status, text = http("POST", gateway() + "/webhooks/github", body, headers)
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {"raw": text[:200]}
    return {"event": event, "job": job, "delivery": delivery, "status": status, "answer": answer,
            "ms": round((time.time() - started) * 1000), "at_ms": round(started * 1000)}


def load_state(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def send(state_path, results_path, specs):
    sha = load_state(state_path)["heads"][REPO]
    parsed = []
    for spec in specs:
        parts = spec.split(":")
        delivery = parts[2] if len(parts) > 2 else str(uuid.uuid4())
        parsed.append((parts[0], parts[1], delivery))
    parallel = int(os.environ.get("DRILL_PARALLEL", "50"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(parallel, len(parsed)))) as pool:
        results = list(pool.map(lambda p: deliver(p[0], p[1], p[2], sha), parsed))
    with open(results_path, "a", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    codes = {}
    for r in results:
        codes[r["status"]] = codes.get(r["status"], 0) + 1
    print("sent %d: %s" % (len(results), ", ".join(f"{n} x {c}" for c, n in sorted(codes.items()))))


def runs_of(state, jobs):
    """The drill's runs (by run_key) from the runs API: {run_key: run}."""
    sha = state["heads"][REPO]
    keys = {f"{REPO}@{sha}/{job}" for job in jobs}
    status, text = http("GET", gateway() + "/api/v1/runs?limit=500")
    if status != 200:
        return None
    out = {}
    for run in json.loads(text)["runs"]:
        if run["run_key"] in keys:
            out.setdefault(run["run_key"], []).append(run)
    return out


def wait_running(state_path, jobs, timeout):
    state = load_state(state_path)
    deadline = time.time() + timeout
    while True:
        runs = runs_of(state, jobs) or {}
        running = [f"{r['run_id']}={r['attempts']}" for rs in runs.values() for r in rs if r["status"] == "running"]
        if running or timeout == 0:
            print(",".join(running))
            return 0
        if time.time() > deadline:
            break
        time.sleep(0.2)
    print(f"no run of {' '.join(jobs)} was running within {timeout} s", file=sys.stderr)
    return 1


def wait_done(state_path, jobs, timeout):
    state = load_state(state_path)
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = runs_of(state, jobs) or {}
        if len(runs) == len(jobs) and all(r["status"] in TERMINAL for rs in runs.values() for r in rs):
            return 0
        time.sleep(0.5)
    print(f"the runs of {' '.join(jobs)} did not all end within {timeout} s", file=sys.stderr)
    return 1


def load_results(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def percentile(values, q):
    values = sorted(values)
    if not values:
        return 0
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def latency(results_path, label):
    results = load_results(results_path)
    ms = [r["ms"] for r in results]
    codes = {}
    for r in results:
        codes[r["status"]] = codes.get(r["status"], 0) + 1
    print(f"{label or results_path}: n {len(ms)} p50 {percentile(ms, 0.5)} ms p95 {percentile(ms, 0.95)} ms "
          f"max {max(ms) if ms else 0} ms; answered " + ", ".join(f"{c} x{n}" for c, n in sorted(codes.items())))
    print(json.dumps({"n": len(ms), "p50": percentile(ms, 0.5), "p95": percentile(ms, 0.95),
                      "max": max(ms) if ms else 0}), file=sys.stderr)
    return 0


def answers(results_path):
    counts = {}
    for r in load_results(results_path):
        if r["status"] in (200, 202):
            continue
        key = f"{r['status']} {json.dumps(r['answer'], sort_keys=True)[:240]}"
        counts[key] = counts.get(key, 0) + 1
    for key, n in sorted(counts.items()):
        print(f"    x{n}  {key}")
    return 0


def metric(url, name):
    status, text = http("GET", url)
    value = 0.0
    if status == 200:
        for line in text.splitlines():
            if line.startswith(name + " ") or line == name:
                value = float(line.split()[-1])
    print(int(value) if value.is_integer() else value)
    return 0


def report(name, state_path, results_path, jobs, timeout, restart_at_ms, watch, problems_path=""):
    state = load_state(state_path)
    results = []
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = [json.loads(line) for line in f if line.strip()]
    answered = {}
    for r in results:
        answered[r["status"]] = answered.get(r["status"], 0) + 1
    accepted_keys = {r["answer"].get("run_key") for r in results if r["status"] in (200, 202)} - {None}
    accepted = sum(1 for r in results if r["status"] == 202)
    expected = {f"{REPO}@{state['heads'][REPO]}/{job}" for job in jobs}

    deadline = time.time() + timeout
    resumed = {}
    runs = {}
    while True:
        now_ms = time.time() * 1000
        runs = runs_of(state, jobs) or runs
        for rs in runs.values():
            for r in rs:
                if r["run_id"] in watch and r["run_id"] not in resumed and restart_at_ms:
                    # claimed again after the restart: a new attempt, or done
                    if r["attempts"] > watch[r["run_id"]] or r["status"] in TERMINAL:
                        resumed[r["run_id"]] = (now_ms - restart_at_ms) / 1000
        done = set(runs) >= expected and all(r["status"] in TERMINAL for rs in runs.values() for r in rs)
        if done or time.time() > deadline:
            break
        time.sleep(0.5)
    status, text = http("GET", state["control_url"] + f"/pulls?repo={REPO}")
    pulls = json.loads(text) if status == 200 else []
    by_head = {}
    for p in pulls:
        by_head[p["head"]] = by_head.get(p["head"], 0) + 1

    lines = []
    problems = []
    completed = 0
    lost = 0
    duplicated = 0
    per_key = {}
    for key in sorted(expected):
        rs = runs.get(key, [])
        if len(rs) > 1:
            duplicated += len(rs) - 1
            problems.append(f"{key}: {len(rs)} runs")
        if not rs:
            lost += 1
            problems.append(f"{key}: no run")
            continue
        r = rs[0]
        pr = r.get("pr") or {}
        n_prs = by_head.get(pr.get("branch", ""), 0)
        per_key[n_prs] = per_key.get(n_prs, 0) + 1
        if r["status"] == "success":
            completed += 1
        if r["status"] != "success" or n_prs == 0:
            lost += 1
            problems.append(f"{key.rsplit('/', 1)[1]}: {r['status']} ({r['reason'][:120]}), {n_prs} PR")
        if n_prs > 1:
            duplicated += n_prs - 1
            problems.append(f"{key.rsplit('/', 1)[1]}: {n_prs} PRs")
        lines.append(f"  {key.rsplit('/', 1)[1]:<12} {r['status']:<8} attempts {r['attempts']}  "
                     f"PR #{pr.get('number', '-')} ({n_prs} on GitHub)")
    stray = sorted(accepted_keys - expected)
    if stray:
        problems.append(f"runs for keys outside the drill: {stray}")
    if problems_path and os.path.exists(problems_path):
        with open(problems_path, encoding="utf-8") as f:
            problems.extend(line.strip() for line in f if line.strip())

    print("\n".join(lines))
    codes = ", ".join(f"{c}: {n}" for c, n in sorted(answered.items()))
    print(f"  deliveries answered {codes or 'none'}; accepted (202) {accepted}; run keys {len(expected)}; "
          f"completed {completed}")
    print(f"  PRs per run_key: {', '.join(f'{n} PR x {k}' for n, k in sorted(per_key.items())) or 'none'}; "
          f"lost {lost}, duplicated {duplicated}")
    if watch and restart_at_ms:
        missing = [w for w in watch if w not in resumed]
        if resumed:
            print(f"  resumed after the restart: {len(resumed)} of {len(watch)} in-flight run(s), "
                  f"slowest {max(resumed.values()):.1f} s")
        if missing:
            problems.append(f"{len(missing)} in-flight run(s) never resumed")
        elif max(resumed.values()) > 60:
            problems.append(f"a run resumed {max(resumed.values()):.1f} s after the restart (bound 60 s)")
    verdict = "PASS" if not problems else "FAIL"
    print(f"VERDICT drill {name}: {verdict}" + ("" if not problems else " - " + "; ".join(problems)))
    return 0 if verdict == "PASS" else 1


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    opts = {"--timeout": "180", "--restart-at": "0", "--watch": "", "--problems": ""}
    positional = []
    i = 0
    while i < len(args):
        if args[i] in opts:
            opts[args[i]] = args[i + 1]
            i += 2
        else:
            positional.append(args[i])
            i += 1
    if cmd == "seed":
        seed(positional[0])
        return 0
    if cmd == "send":
        send(positional[0], positional[1], positional[2:])
        return 0
    if cmd == "wait-running":
        return wait_running(positional[0], positional[1:], float(opts["--timeout"]))
    if cmd == "report":
        watch = {}
        for item in filter(None, opts["--watch"].split(",")):
            run_id, _, attempts = item.partition("=")
            watch[run_id] = int(attempts or 1)
        return report(positional[0], positional[1], positional[2], positional[3:], float(opts["--timeout"]),
                      float(opts["--restart-at"]), watch, opts["--problems"])
    if cmd == "wait-done":
        return wait_done(positional[0], positional[1:], float(opts["--timeout"]))
    if cmd == "latency":
        return latency(positional[0], positional[1] if len(positional) > 1 else "")
    if cmd == "answers":
        return answers(positional[0])
    if cmd == "metric":
        return metric(positional[0], positional[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
