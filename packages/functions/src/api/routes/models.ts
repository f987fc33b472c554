/** GET /v1/models, /v1/models/{name}, /v1/models/{name}/versions/{version}. */
import { createRoute, z } from "@hono/zod-openapi";
import { ErrorBody } from "@ganserve/core/api/common";
import { ModelInfo, ModelList, ModelVersion } from "@ganserve/core/api/inference";
import { describeModel, type ModelUrls } from "@ganserve/core/api/describe";
import { modelKeys } from "@ganserve/core/storage/keys";
import { ModelName, VersionRef } from "@ganserve/core/models/model-json";
import type { ModelJson } from "@ganserve/core/models/model-json";
import { newRouter } from "../app.ts";
import type { Services } from "../env.ts";
import { jsonError } from "./shared.ts";

const list = createRoute({
  method: "get",
  path: "/models",
  tags: ["models"],
  summary: "Every model you can use, with its versions, input spec and defaults",
  responses: { 200: { description: "Models", content: { "application/json": { schema: ModelList } } }, 401: jsonError("No or bad key") },
});

const get = createRoute({
  method: "get",
  path: "/models/{name}",
  tags: ["models"],
  summary: "One model",
  request: { params: z.object({ name: ModelName }) },
  responses: {
    200: { description: "Model", content: { "application/json": { schema: ModelInfo } } },
    404: jsonError("No such model"),
  },
});

const version = createRoute({
  method: "get",
  path: "/models/{name}/versions/{version}",
  tags: ["models"],
  summary: "One version's record (config in official option names, provenance, checksum)",
  request: { params: z.object({ name: ModelName, version: VersionRef }) },
  responses: {
    200: { description: "Version record", content: { "application/json": { schema: ModelVersion } } },
    404: { description: "No such model or version", content: { "application/json": { schema: ErrorBody } } },
  },
});

export function modelRoutes(services: Services) {
  const { registry, storage } = services;
  const presign = (key: string) => storage.presignGet(key, 3600);
  const urls = async (r: ModelJson): Promise<ModelUrls> => ({
    sample: r.sample ? await presign(r.sample) : undefined,
    examples: await Promise.all((r.examples ?? []).map((e) => (e.file ? presign(modelKeys.example(r.name, r.version, e.file)) : undefined))),
  });
  return newRouter()
    .openapi(list, async (c) => {
      const tenant = c.get("apiKey")?.tenant;
      const models = await registry.list(tenant);
      return c.json({ models: await Promise.all(models.map(async (m) => describeModel(m.record, m.versions, tenant, await urls(m.record)))) }, 200);
    })
    .openapi(get, async (c) => {
      const tenant = c.get("apiKey")?.tenant;
      const { name } = c.req.valid("param");
      const record = await registry.resolve(name, "latest", tenant);
      return c.json(describeModel(record, await registry.versions(name), tenant, await urls(record)), 200);
    })
    .openapi(version, async (c) => {
      const { name, version: v } = c.req.valid("param");
      return c.json(await registry.resolve(name, v, c.get("apiKey")?.tenant), 200);
    });
}
