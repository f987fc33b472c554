# syntax=docker/dockerfile:1
# GPU fine-tune worker: one AWS Batch job per fine-tune; reads datasets/ and models/, writes jobs/ and models/.
# Build from the repository root (the context is the npm workspace):
#   docker build -f containers/finetune.Dockerfile -t ganserve-finetune .
#
# CUDA: see inference.Dockerfile. tfjs-node-gpu 4.22.0 -> libtensorflow 2.9.1 -> CUDA 11.x sonames + cuDNN 8.

FROM node:20.20.2-bookworm-slim AS node

FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04 AS deps
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/functions/package.json packages/functions/
COPY packages/sdk/package.json packages/sdk/
COPY packages/web/package.json packages/web/
ENV ONNXRUNTIME_NODE_INSTALL=skip
# `sst` is a runtime dependency for its SDK only (sst/resource: how config reads links); its CLI binary, the
# optional sst-<platform> package (about 72 MB), deploys stacks and never runs in a container.
RUN npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/sst-*
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
ENV NODE_ENV=production \
    TMPDIR=/tmp/ganserve \
    GANSERVE_DATA_DIR=/tmp/ganserve \
    TF_CPP_MIN_LOG_LEVEL=1
USER 10001:10001
# A batch job has no port to probe; the worker's liveness is its progress events in jobs/<id>/.
HEALTHCHECK NONE
CMD ["node", "--import", "tsx", "packages/functions/src/worker.ts"]
