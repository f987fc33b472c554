/**
 * The one Hono app: system routes, docs and the /v1 routers, composed with `app.route`. The same app runs
 * locally (`npm start`), in the GPU container and as the Lambda control plane.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import { ApiError } from "@ganserve/core/errors";
import type { AppEnv, Services } from "./env.ts";
import { requireApiKey } from "./middleware/auth.ts";
import { boundedJsonDepth } from "./middleware/json-depth.ts";
import { rateLimit } from "./middleware/rate-limit.ts";
import { errorResponse, notFound, onError } from "./middleware/errors.ts";
import { requestLog } from "./middleware/request-log.ts";
import { docsRoutes } from "./routes/docs.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { systemRoutes } from "./routes/system.ts";

/** Validation failures become 400 `validation_failed` with the zod issue paths in `details`. */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message, code: i.code }));
        const first = issues[0];
        throw new ApiError("validation_failed", first ? `${first.path || "body"}: ${first.message}` : "invalid request", {
          issues,
        });
      }
    },
  });
}

export type V1Mount = (v1: OpenAPIHono<AppEnv>, services: Services) => void;

export function buildApp(services: Services, mounts: V1Mount[] = []) {
  const app = newRouter();
  app.use("*", requestId({ headerName: "X-Request-Id" }));
  app.use("*", requestLog(services.log, services.metrics));
  app.onError(onError(services.log));
  app.notFound(notFound);

  app.route("/", systemRoutes(services));
  app.route("/", docsRoutes());
  app.route("/", metricsRoutes(services));

  const v1 = newRouter();
  v1.use("*", requireApiKey(services.keys));
  v1.use("*", rateLimit(services.limiter));
  v1.use(
    "*",
    bodyLimit({
      maxSize: services.settings.GANSERVE_MAX_BODY_BYTES,
      // The rest of the body is not read here: the server drains it or closes the connection cleanly
      // (http-server.ts, unread-body.ts), as for every answer given before the body was read.
      onError: (c) =>
        errorResponse(c, new ApiError("payload_too_large", `request body exceeds ${services.settings.GANSERVE_MAX_BODY_BYTES} bytes`)),
    }),
  );
  // After the size limit: a body within it may still nest deep enough to overflow a recursive walk.
  v1.use("*", boundedJsonDepth);
  for (const mount of mounts) mount(v1, services);
  app.route("/v1", v1);

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "ganserve",
      version: "0.1.0",
      description: "Inference and fine-tuning for StyleGAN2, SPADE and CycleGAN generators.",
    },
    security: [{ bearer: [] }],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  return app;
}

export type App = ReturnType<typeof buildApp>;
