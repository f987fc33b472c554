/**
 * The long-running HTTP server: the API plus, when asked, the built playground. `npm start` runs it with
 * the playground on embedded defaults (API, embedded S3 and web on http://localhost:3000); the GPU
 * container runs it without. Ctrl-C / SIGTERM drains in-flight requests, stops workers, then exits.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { serveStatic } from "@hono/node-server/serve-static";
import { loadSettings, SettingsError } from "@ganserve/core/config";
import { loadSecretKey } from "@ganserve/core/jobs/secrets";
import { registerBundledModels } from "@ganserve/core/models/bundled";
import { buildApp } from "./api/app.ts";
import { v1Routers } from "./api/routers.ts";
import { mountDevKey } from "./dev-key.ts";
import { createRuntime } from "./services.ts";
// Answers given before the request body was read end cleanly: drain or lingering close, never a reset.
import { createServer } from "./unread-body.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export async function runServer(opts: { web: boolean }) {
  let settings: ReturnType<typeof loadSettings>;
  try {
    settings = loadSettings();
    loadSecretKey(settings); // production without GANSERVE_SECRET_KEY stops here, with one line
  } catch (e) {
    if (e instanceof SettingsError) {
      console.error(`ganserve: configuration error: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  const runtime = await createRuntime(settings);
  const { services } = runtime;
  const app = buildApp(services, v1Routers);

  const webDir = path.resolve(settings.GANSERVE_WEB_DIR ?? path.join(repoRoot, "packages/web/dist"));
  if (!opts.web) {
    // data-plane container: API only
  } else if (fs.existsSync(path.join(webDir, "index.html"))) {
    if (runtime.devKey) mountDevKey(app, runtime.devKey);
    const root = path.relative(process.cwd(), webDir) || ".";
    app.use("/*", serveStatic({ root }));
    // Client-side routes of the playground load index.html, but only for browsers asking for a page, so API
    // clients still get a 404 in the error shape for unknown paths.
    const page = serveStatic({ root, path: "index.html" });
    app.get("/*", (c, next) => (c.req.header("accept")?.includes("text/html") ? page(c, next) : next()));
  } else {
    app.get("/", (c) => c.html("<h1>ganserve</h1><p>The playground is not built: run <code>npm run build</code>.</p>"));
  }

  if (settings.GANSERVE_DEMO_MODELS) {
    const added = await registerBundledModels(services.registry, path.join(repoRoot, "models"), services.log);
    if (added.length) services.log.info({ models: added }, "registered the bundled demo models");
  }
  // Warm the shared models in the background; /ready says not ready until that is done.
  let warming = true;
  services.readiness.set("models", async () => (warming ? { ok: false, detail: "warming up models" } : { ok: true }));
  void services.inference
    .preload((name, err) => services.log.warn({ model: name, err }, "could not preload a model"))
    .then((names) => services.log.info({ models: names }, "models warm"))
    .finally(() => (warming = false));
  // Locally the predictions queue is in-process: so is its worker (the same code as the GPU containers').
  const { predictions } = services;
  if (predictions.queue.kind === "memory") {
    predictions.worker.start(settings.GANSERVE_WORKER_START_DELAY_MS);
    services.readiness.set("worker", async () => (predictions.worker.pulling ? { ok: true } : { ok: false, detail: "prediction worker not started" }));
  }
  const adopted = await services.launcher.adopt();
  if (adopted.length) services.log.info({ jobs: adopted }, "re-adopted unfinished fine-tunes");

  const server = serve({ fetch: app.fetch, port: settings.PORT, hostname: settings.HOST, createServer }, (info) => {
    const base = `http://${settings.HOST === "0.0.0.0" ? "localhost" : settings.HOST}:${info.port}`;
    services.log.info({ url: base, storage: runtime.opened.embedded?.endpoint ?? "s3" }, "ganserve listening");
    const lines = [
      "",
      `  ganserve is running at ${base}`,
      `  playground: ${base}/   API reference: ${base}/docs`,
    ];
    if (runtime.devKey)
      lines.push(
        `  dev API key (stored in ${path.join(settings.dataDir, "dev-api-key")}): ${runtime.devKey}`,
        `  try: curl -H "Authorization: Bearer ${runtime.devKey}" ${base}/v1/models`,
      );
    console.log([...lines, ""].join("\n"));
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    services.log.info({ signal }, "shutting down");
    // Stop accepting, let in-flight requests finish, then close storage; force exit if something hangs.
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    server.close(async () => {
      await runtime.close();
      process.exit(0);
    });
    (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // Started by `npm start` (bin/start.mjs) with an IPC channel: when that process is gone, however it died,
  // the channel closes and the server stops instead of serving on as an orphan.
  if (process.channel) {
    process.channel.unref();
    process.on("disconnect", () => stop("parent exited"));
  }
}

export function start(opts: { web: boolean }) {
  runServer(opts).catch((e) => {
    console.error(`ganserve: failed to start: ${(e as Error).stack ?? e}`);
    process.exit(1);
  });
}
