/**
 * Interactive API reference at /docs, served from the swagger-ui-dist package so it works offline
 * (the usual middlewares load the UI from a CDN).
 */
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { Hono } from "hono";
import type { AppEnv } from "../env.ts";

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ganserve API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#ui", persistAuthorization: true });</script>
</body></html>`;

export function docsRoutes() {
  const dir = path.dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  return new Hono<AppEnv>()
    .get("/docs", (c) => c.html(PAGE))
    .get("/docs/assets/:file", (c) => {
      const file = c.req.param("file");
      const type = ASSETS[file];
      if (!type) return c.notFound();
      c.header("Cache-Control", "public, max-age=86400");
      return c.body(fs.readFileSync(path.join(dir, file)), 200, { "Content-Type": type });
    });
}
