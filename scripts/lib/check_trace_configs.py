#!/usr/bin/env python3
"""Structural checks of the OpenTelemetry Collector and Tempo configs (their binaries are not available
on these machines, so the configs are checked as data).

Collector (observability/otel-collector/config.yml):
  - OTLP gRPC and HTTP receivers listen on 0.0.0.0:4317 / :4318; health_check extension enabled;
  - every pipeline references defined components, every defined component is used;
  - memory_limiter is the first processor of every pipeline, batch is in every pipeline;
  - the traces pipeline scrubs (transform drops http.url and url.full) and exports to Tempo and to the
    spanmetrics and servicegraph connectors, which feed a metrics pipeline ending in the prometheus
    exporter on :8889;
  - connector dimensions are low-cardinality: never one of the pipeline ids.
Tempo (observability/tempo/tempo.yml):
  - OTLP receiver; metrics-generator remote-writes to http://prometheus:9090/api/v1/write with exemplars;
  - service-graphs and span-metrics enabled in overrides; messaging-system latency histogram on;
  - dimensions never include the pipeline ids; span status_message stays off.

Usage: check_trace_configs.py --repo REPO
"""
from __future__ import annotations

import argparse
import os
import sys

import yaml

IDS = {"delivery_id", "run_id", "run_key", "failure_id", "correlation_id", "trace_id", "span_id",
       "http.url", "url.full", "user_agent.original", "pr_url"}


def base(name: str) -> str:
    return name.split("/", 1)[0]


def check_collector(path: str, problems: list[str]):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    rel = "otel-collector/config.yml"
    recv = ((cfg.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}
    if (recv.get("grpc") or {}).get("endpoint") != "0.0.0.0:4317":
        problems.append(f"{rel}: receivers.otlp.protocols.grpc.endpoint must be 0.0.0.0:4317")
    if (recv.get("http") or {}).get("endpoint") != "0.0.0.0:4318":
        problems.append(f"{rel}: receivers.otlp.protocols.http.endpoint must be 0.0.0.0:4318")

    service = cfg.get("service") or {}
    if "health_check" not in (service.get("extensions") or []) or "health_check" not in (cfg.get("extensions") or {}):
        problems.append(f"{rel}: the health_check extension must be defined and enabled")

    defined = {kind: set((cfg.get(kind) or {}).keys()) for kind in ("receivers", "processors", "exporters", "connectors")}
    used = {kind: set() for kind in defined}
    pipelines = service.get("pipelines") or {}
    for pname, p in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in p.get(kind) or []:
                if comp in defined[kind]:
                    used[kind].add(comp)
                elif kind in ("receivers", "exporters") and comp in defined["connectors"]:
                    used["connectors"].add(comp)
                else:
                    problems.append(f"{rel}: pipeline {pname} uses undefined {kind[:-1]} {comp}")
        procs = p.get("processors") or []
        if not procs or base(procs[0]) != "memory_limiter":
            problems.append(f"{rel}: pipeline {pname}: memory_limiter must be the first processor")
        if not any(base(x) == "batch" for x in procs):
            problems.append(f"{rel}: pipeline {pname}: no batch processor")
    for kind in defined:
        for comp in sorted(defined[kind] - used[kind]):
            problems.append(f"{rel}: {kind[:-1]} {comp} is defined but not used in any pipeline")

    traces = pipelines.get("traces") or {}
    exps = traces.get("exporters") or []
    tempo_exp = [e for e in exps if base(e) in ("otlp", "otlp_grpc")]
    if not tempo_exp or (cfg["exporters"][tempo_exp[0]] or {}).get("endpoint") != "tempo:4317":
        problems.append(f"{rel}: traces pipeline must export OTLP to tempo:4317")
    for conn in ("spanmetrics", "servicegraph"):
        if conn not in exps:
            problems.append(f"{rel}: traces pipeline must feed the {conn} connector")
        elif not any(conn in (p.get("receivers") or []) for p in pipelines.values()):
            problems.append(f"{rel}: no metrics pipeline receives from the {conn} connector")
    if not any(base(x) == "transform" for x in traces.get("processors") or []):
        problems.append(f"{rel}: traces pipeline needs the transform processor that drops high-cardinality attributes")
    statements = " ".join(str(s) for name, p in (cfg.get("processors") or {}).items()
                          if base(name) == "transform" for s in (p or {}).get("trace_statements") or [])
    for attr in ("http.url", "url.full"):
        if f'"{attr}"' not in statements:
            problems.append(f"{rel}: transform processor must delete the span attribute {attr}")

    prom = [name for name in defined["exporters"] if base(name) == "prometheus"]
    if not prom or not str((cfg["exporters"][prom[0]] or {}).get("endpoint", "")).endswith(":8889"):
        problems.append(f"{rel}: a prometheus exporter must listen on :8889")
    elif ((cfg["exporters"][prom[0]] or {}).get("resource_to_telemetry_conversion") or {}).get("enabled"):
        problems.append(f"{rel}: resource_to_telemetry_conversion must stay off (cardinality)")

    conns = cfg.get("connectors") or {}
    sm_dims = {d.get("name") for d in (conns.get("spanmetrics") or {}).get("dimensions") or []}
    sg_dims = set((conns.get("servicegraph") or {}).get("dimensions") or [])
    for bad in sorted((sm_dims | sg_dims) & IDS):
        problems.append(f"{rel}: {bad} must never be a connector dimension (unbounded)")


def check_tempo(path: str, problems: list[str]):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    rel = "tempo/tempo.yml"
    otlp = (((cfg.get("distributor") or {}).get("receivers") or {}).get("otlp") or {}).get("protocols") or {}
    if (otlp.get("grpc") or {}).get("endpoint") != "0.0.0.0:4317":
        problems.append(f"{rel}: distributor OTLP gRPC receiver must listen on 0.0.0.0:4317")
    if (cfg.get("server") or {}).get("http_listen_port") != 3200:
        problems.append(f"{rel}: server.http_listen_port must be 3200")
    mg = cfg.get("metrics_generator") or {}
    rw = ((mg.get("storage") or {}).get("remote_write") or [])
    if not any(r.get("url") == "http://prometheus:9090/api/v1/write" and r.get("send_exemplars") is True for r in rw):
        problems.append(f"{rel}: metrics_generator.storage.remote_write needs http://prometheus:9090/api/v1/write with send_exemplars: true")
    if not (mg.get("storage") or {}).get("path"):
        problems.append(f"{rel}: metrics_generator.storage.path is required")
    procs = (((cfg.get("overrides") or {}).get("defaults") or {}).get("metrics_generator") or {}).get("processors") or []
    for p in ("service-graphs", "span-metrics"):
        if p not in procs:
            problems.append(f"{rel}: overrides.defaults.metrics_generator.processors must enable {p}")
    proc = mg.get("processor") or {}
    sg, sm = proc.get("service_graphs") or {}, proc.get("span_metrics") or {}
    if sg.get("enable_messaging_system_latency_histogram") is not True:
        problems.append(f"{rel}: service_graphs.enable_messaging_system_latency_histogram must be true (Redis queue edge)")
    if (sm.get("intrinsic_dimensions") or {}).get("status_message"):
        problems.append(f"{rel}: span_metrics.intrinsic_dimensions.status_message must stay off (cardinality)")
    for bad in sorted((set(sg.get("dimensions") or []) | set(sm.get("dimensions") or [])) & IDS):
        problems.append(f"{rel}: {bad} must never be a metrics-generator dimension (unbounded)")
    storage = (cfg.get("storage") or {}).get("trace") or {}
    if storage.get("backend") != "local":
        problems.append(f"{rel}: storage.trace.backend must be local")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    args = ap.parse_args()
    obs = os.path.join(args.repo, "observability")
    problems: list[str] = []
    check_collector(os.path.join(obs, "otel-collector", "config.yml"), problems)
    check_tempo(os.path.join(obs, "tempo", "tempo.yml"), problems)
    for p in problems:
        print(f"  FAIL {p}")
    if not problems:
        print("  ok: collector pipelines, scrubbing, connectors and Tempo metrics-generator are consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
