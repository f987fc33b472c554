# syntax=docker/dockerfile:1
# GPU inference server: the Hono data plane (/v1/generate, /v1/translate, /ready, /metrics) on tfjs-node-gpu.
# Build from the repository root (the context is the npm workspace):
#   docker build -f containers/inference.Dockerfile -t ganserve-inference .
#
# CUDA: @tensorflow/tfjs-node-gpu 4.22.0 loads libtensorflow 2.9.1, built against CUDA 11.2 / cuDNN 8.1. It opens
# libcudart.so.11.0, libcublas.so.11 and libcudnn.so.8 by soname, so any CUDA 11.x runtime with cuDNN 8 satisfies
# it (CUDA minor-version compatibility); 11.8 is the last 11.x and the oldest image NVIDIA still publishes for it.
# The host driver (ECS GPU AMI) is newer than 11.8 needs and stays backwards compatible.

FROM node:20.20.2-bookworm-slim AS node

FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04 AS deps
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Manifests first, so source edits do not invalidate the (slow) dependency layers.
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/functions/package.json packages/functions/
COPY packages/sdk/package.json packages/sdk/
COPY packages/web/package.json packages/web/
# onnxruntime-node's install script would fetch CUDA 12 add-ons this image cannot use.
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --omit=dev --no-audit --no-fund
# Not a workspace dependency (its install downloads libtensorflow, which the dev machines cannot reach); added
# here on top of the locked tree so it shares the locked @tensorflow/tfjs-core.
RUN npm install --no-save --omit=dev --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0 \
 && npm cache clean --force

FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 10001 ganserve \
 && useradd --system --uid 10001 --gid ganserve --home-dir /app --shell /usr/sbin/nologin ganserve \
 && mkdir -p /tmp/ganserve && chown ganserve:ganserve /tmp/ganserve
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json ./
COPY --chown=root:root packages/core ./packages/core
COPY --chown=root:root packages/functions ./packages/functions
# /app is read-only for the service user; local state (model cache, dev key) goes to a writable directory.
ENV NODE_ENV=production \
    PORT=8080 \
    GANSERVE_DATA_DIR=/tmp/ganserve \
    TF_CPP_MIN_LOG_LEVEL=1
USER 10001:10001
EXPOSE 8080
# ECS relies on the ALB's /ready check; this one serves `docker run` and local orchestration.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--import", "tsx", "packages/functions/src/server.ts"]
