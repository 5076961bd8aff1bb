#!/usr/bin/env python3
"""Static checks of docker-compose.yml without a Docker engine.

1. The parsed file (YAML anchors and merge keys resolved) validates against the official Compose
   JSON schema (draft-07), which catches misspelled keys, wrong types and bad depends_on conditions.
2. Project rules: every sre-agent process has a `<binary> health-probe` healthcheck and the OTel env;
   every image is pinned (explicit tag, never `latest`); depends_on targets exist and healthy-waits point
   at services with a healthcheck; named volumes are declared; bind-mounted config files exist; only the
   host ports a user needs are published.

Usage: check_compose.py --repo REPO --schema compose-spec.json
Exit status 0 when everything passes, 1 otherwise; one line per problem on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

import yaml
from jsonschema import Draft7Validator

OURS = {
    "gateway": "sre-gateway",
    "orchestrator": "sre-orchestrator",
    "planner": "sre-planner",
    "policy": "sre-policy",
    "scanner": "sre-scanner",
    "validator": "sre-validator",
    "pr": "sre-pr",
}
REQUIRED_INFRA = {"redis", "postgres", "otel-collector", "tempo", "prometheus", "grafana"}
ALLOWED_HOST_PORTS = {8000, 9090, 3001, 3200, 4317, 4318}
REPOS_USERS = {"planner", "scanner", "validator", "pr"}


def image_problem(image: str) -> str | None:
    name, _, tag = image.rpartition(":")
    if "@sha256:" in image:
        return None
    if not name or "/" in tag:  # no tag at all (a registry port is not a tag)
        return "has no tag"
    if tag == "latest":
        return "uses :latest"
    return None


def host_port(spec) -> int | None:
    if isinstance(spec, dict):
        return int(spec["published"]) if spec.get("published") is not None else None
    parts = str(spec).split(":")
    if len(parts) == 1:
        return None  # container port only: random host port, not published by us
    return int(parts[-2].split("-")[0])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--schema", required=True)
    args = ap.parse_args()

    problems: list[str] = []
    path = os.path.join(args.repo, "docker-compose.yml")
    with open(path) as f:
        doc = yaml.safe_load(f)
    with open(args.schema) as f:
        schema = json.load(f)

    for err in sorted(Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        problems.append(f"schema: {where}: {err.message}")

    services = doc.get("services") or {}
    volumes = set((doc.get("volumes") or {}).keys())

    missing = (set(OURS) | REQUIRED_INFRA) - set(services)
    if missing:
        problems.append(f"missing services: {', '.join(sorted(missing))}")

    for name, svc in services.items():
        image = svc.get("image")
        if not image:
            problems.append(f"{name}: no image (every service needs a pinned image; ours: sre-agent:local)")
        elif (p := image_problem(image)):
            problems.append(f"{name}: image {image} {p}")

        for port in svc.get("ports") or []:
            hp = host_port(port)
            if hp is not None and hp not in ALLOWED_HOST_PORTS:
                problems.append(f"{name}: publishes host port {hp}; allowed: {sorted(ALLOWED_HOST_PORTS)}")

        deps = svc.get("depends_on") or {}
        dep_items = deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)
        for dep, cond in dep_items:
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep}")
                continue
            if (cond or {}).get("condition") == "service_healthy" and not services[dep].get("healthcheck"):
                problems.append(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")

        for vol in svc.get("volumes") or []:
            src = vol.get("source") if isinstance(vol, dict) else str(vol).split(":")[0]
            if not src:
                continue
            if src.startswith((".", "/")):
                if src.startswith(".") and not os.path.exists(os.path.join(args.repo, src)):
                    problems.append(f"{name}: bind mount source {src} does not exist in the repository")
            elif src not in volumes:
                problems.append(f"{name}: volume {src} is not declared under top-level volumes")

    for name, binary in OURS.items():
        svc = services.get(name)
        if not svc:
            continue
        if svc.get("image") != "sre-agent:local":
            problems.append(f"{name}: image must be sre-agent:local (one image for all processes)")
        if svc.get("command") != [binary]:
            problems.append(f"{name}: command must be [{binary}]")
        test = (svc.get("healthcheck") or {}).get("test")
        if test != ["CMD", binary, "health-probe"]:
            problems.append(f'{name}: healthcheck test must be ["CMD", "{binary}", "health-probe"], got {test}')
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") != "http://otel-collector:4317":
            problems.append(f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT must be http://otel-collector:4317")
        if env.get("OTEL_SERVICE_NAME") != name:
            problems.append(f"{name}: OTEL_SERVICE_NAME must equal the Prometheus service label ({name})")
        if not str(env.get("SRE_HTTP_ADDR", "")).startswith("0.0.0.0:"):
            problems.append(f"{name}: SRE_HTTP_ADDR must listen on 0.0.0.0 inside the container")
        if name not in ("gateway", "orchestrator") and not str(env.get("SRE_GRPC_ADDR", "")).startswith("0.0.0.0:"):
            problems.append(f"{name}: SRE_GRPC_ADDR must listen on 0.0.0.0 inside the container")
        if name in REPOS_USERS:
            repos_dir = env.get("SRE_REPOS_DIR")
            mounts = [v for v in svc.get("volumes") or [] if isinstance(v, str) and v.startswith("repos:")]
            if not repos_dir or not any(v.split(":")[1] == repos_dir for v in mounts):
                problems.append(f"{name}: the shared `repos` volume must be mounted at SRE_REPOS_DIR")
        if name in ("gateway", "orchestrator") and not str(env.get("DATABASE_URL", "")).startswith("postgres://"):
            problems.append(f"{name}: DATABASE_URL must point at the postgres service")

    orch_env = (services.get("orchestrator") or {}).get("environment") or {}
    for svc, port in (("planner", 50051), ("policy", 50052), ("scanner", 50053), ("validator", 50054), ("pr", 50055)):
        key = f"SRE_{svc.upper()}_URL"
        if orch_env.get(key) != f"http://{svc}:{port}":
            problems.append(f"orchestrator: {key} must be http://{svc}:{port}")

    prom_cmd = " ".join((services.get("prometheus") or {}).get("command") or [])
    for flag in ("--enable-feature=exemplar-storage", "--web.enable-remote-write-receiver"):
        if flag not in prom_cmd:
            problems.append(f"prometheus: command lacks {flag}")
    graf_vols = " ".join(str(v) for v in (services.get("grafana") or {}).get("volumes") or [])
    if "observability/grafana/dashboards:/var/lib/grafana/dashboards" not in graf_vols:
        problems.append("grafana: observability/grafana/dashboards must be mounted at /var/lib/grafana/dashboards")

    for p in problems:
        print(f"  FAIL {p}")
    if not problems:
        print(f"  ok: {len(services)} services valid against the Compose schema and the project rules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
