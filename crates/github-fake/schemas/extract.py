#!/usr/bin/env python3
"""Extracts the response schemas of the endpoints sre-github-fake serves from GitHub's REST description.

Usage: npm pack @octokit/openapi && tar xzf octokit-openapi-*.tgz
       python3 extract.py package/generated/api.github.com.json > rest-fragments.json

Keeps only what the schema test checks (type, nullable, required, properties, items, enum, allOf/anyOf/oneOf),
with every $ref resolved, so the repository carries a few hundred kilobytes instead of the 10 MB description.
"""
import json
import sys

OPERATIONS = [
    ("post", "/app/installations/{installation_id}/access_tokens", "201"),
    ("get", "/installation/repositories", "200"),
    ("get", "/repos/{owner}/{repo}", "200"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", "200"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs", "200"),
    ("get", "/repos/{owner}/{repo}/actions/jobs/{job_id}", "200"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}", "200"),
    ("get", "/repos/{owner}/{repo}/commits", "200"),
    ("get", "/repos/{owner}/{repo}/branches/{branch}", "200"),
    ("get", "/repos/{owner}/{repo}/pulls", "200"),
    ("post", "/repos/{owner}/{repo}/pulls", "201"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}", "200"),
    ("patch", "/repos/{owner}/{repo}/pulls/{pull_number}", "200"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/labels", "200"),
    ("get", "/repos/{owner}/{repo}/labels", "200"),
    ("post", "/repos/{owner}/{repo}/labels", "201"),
    ("post", "/repos/{owner}/{repo}/check-runs", "201"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}", "200"),
    ("post", "/repos/{owner}/{repo}/pulls", "422"),
    ("get", "/repos/{owner}/{repo}", "404"),
]
KEEP = {"type", "nullable", "required", "properties", "items", "enum", "allOf", "anyOf", "oneOf"}


def main() -> None:
    spec = json.load(open(sys.argv[1]))

    def resolve(ref: str):
        node = spec
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node

    def clean(node, depth=0):
        if depth > 40:
            return {}
        if isinstance(node, dict):
            if "$ref" in node:
                return clean(resolve(node["$ref"]), depth + 1)
            out = {}
            for k, v in node.items():
                if k not in KEEP:
                    continue
                if k == "properties":
                    out[k] = {name: clean(s, depth + 1) for name, s in v.items()}
                elif k in ("allOf", "anyOf", "oneOf"):
                    out[k] = [clean(s, depth + 1) for s in v]
                elif k == "items":
                    out[k] = clean(v, depth + 1)
                else:
                    out[k] = v
            return out
        return node

    result = {}
    for method, path, status in OPERATIONS:
        response = spec["paths"][path][method]["responses"][status]
        if "$ref" in response:
            response = resolve(response["$ref"])
        schema = response["content"]["application/json"]["schema"]
        result[f"{method.upper()} {path} {status}"] = clean(schema)
    json.dump(result, sys.stdout, separators=(",", ":"), sort_keys=True)


if __name__ == "__main__":
    main()
