/** Prometheus metrics for /metrics: one registry per process, named ganserve_*. */
import client from "prom-client";

export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "ganserve_" });
  const requests = new client.Counter({
    name: "ganserve_http_requests_total",
    help: "HTTP requests by route and status",
    labelNames: ["method", "route", "status"],
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: "ganserve_http_request_duration_seconds",
    help: "HTTP request latency",
    labelNames: ["method", "route"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const batchSize = new client.Histogram({
    name: "ganserve_batch_size",
    help: "Items per forward pass",
    labelNames: ["model"],
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  });
  const forwardPasses = new client.Counter({
    name: "ganserve_forward_passes_total",
    help: "Forward passes run",
    labelNames: ["model"],
    registers: [registry],
  });
  const forwardSeconds = new client.Histogram({
    name: "ganserve_forward_duration_seconds",
    help: "Forward pass time",
    labelNames: ["model"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const queueDepth = new client.Gauge({
    name: "ganserve_queue_depth",
    help: "Items waiting per model",
    labelNames: ["model"],
    registers: [registry],
  });
  const modelLoadSeconds = new client.Histogram({
    name: "ganserve_model_load_duration_seconds",
    help: "Time to load and warm a model",
    labelNames: ["model"],
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const modelBytes = new client.Gauge({
    name: "ganserve_model_cache_bytes",
    help: "Bytes of weights held by loaded models",
    registers: [registry],
  });
  return { registry, requests, latency, batchSize, forwardPasses, forwardSeconds, queueDepth, modelLoadSeconds, modelBytes };
}

export type Metrics = ReturnType<typeof createMetrics>;
