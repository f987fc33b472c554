# syntax=docker/dockerfile:1
# GPU prediction worker: pulls predictions from SQS, batches them on ONNX Runtime's CUDA execution provider,
# writes the results to S3, and answers /health and /ready for ECS. Build from the repository root (the
# context is the npm workspace):
#   docker build -f containers/inference.Dockerfile -t ganserve-inference .
#
# CUDA: onnxruntime-node 1.30's CUDA add-on (libonnxruntime_providers_cuda.so) is built for CUDA 12 and cuDNN 9;
# the nvidia/cuda 12.x "cudnn-runtime" images ship exactly those runtime libraries. The add-on is not on npm
# (too large): onnxruntime-node's own install script fetches it at image build, where the internet is
# reachable. The host driver (ECS GPU AMI, AL2023) supports CUDA 12. TF.js (only for what ONNX does not cover)
# runs on its CPU/wasm backends here: tfjs-node-gpu needs CUDA 11 + cuDNN 8, which cannot share this image.

FROM node:20.20.2-bookworm-slim AS node

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04 AS deps
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
# `sst` is a runtime dependency for its SDK only (sst/resource: how config reads links); its CLI binary, the
# optional sst-<platform> package (about 72 MB), deploys stacks and never runs in a container.
RUN npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/sst-* \
 && ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && npm cache clean --force

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 10001 ganserve \
 && useradd --system --uid 10001 --gid ganserve --home-dir /app --shell /usr/sbin/nologin ganserve \
 && mkdir -p /tmp/ganserve && chown ganserve:ganserve /tmp/ganserve
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json ./
COPY --chown=root:root packages/core ./packages/core
COPY --chown=root:root packages/functions ./packages/functions
# /app is read-only for the service user; local state (model cache) goes to a writable directory.
# HOST: the health server must answer on the task's own address, not only on loopback. The task definition
# sets the same (infra/inference.ts GPU_WORKER_ENV); this covers `docker run`.
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    GANSERVE_HOST=0.0.0.0 \
    GANSERVE_ORT_PROVIDERS=cuda,cpu \
    GANSERVE_DATA_DIR=/tmp/ganserve
USER 10001:10001
EXPOSE 8080
# ECS runs the task definition's own check (the same /ready); this one serves `docker run`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--import", "tsx", "packages/functions/src/prediction-worker.ts"]
