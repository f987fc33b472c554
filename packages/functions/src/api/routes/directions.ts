/**
 * Latent directions of a StyleGAN2 version: list (SeFa's and your uploads), get one, delete, under the version;
 * uploads are POST /v1/directions, naming model and version in the body as /v1/generate does.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { DirectionInfo, DirectionList, DirectionName, DirectionUpload } from "@ganserve/core/api/inference";
import { ModelName, VersionRef } from "@ganserve/core/models/model-json";
import { newRouter } from "../app.ts";
import type { Services } from "../env.ts";
import { requireJson } from "../middleware/content-type.ts";
import { jsonError, jsonOk } from "./shared.ts";

const VersionParams = z.object({ name: ModelName, version: VersionRef });
const DirectionParams = VersionParams.extend({ direction: DirectionName });
const notFound = jsonError("No such model, version or direction");
const wrongFamily = jsonError("Not a StyleGAN2 model (wrong_model_family), or a vector of the wrong shape (unprocessable)");

const list = createRoute({
  method: "get",
  path: "/models/{name}/versions/{version}/directions",
  tags: ["latents"],
  summary: "Directions in w for edits: SeFa's (from the weights, largest eigenvalue first) and the ones you uploaded",
  request: { params: VersionParams },
  responses: { 200: jsonOk(DirectionList, "Directions"), 404: notFound, 422: wrongFamily },
});

const get = createRoute({
  method: "get",
  path: "/models/{name}/versions/{version}/directions/{direction}",
  tags: ["latents"],
  summary: "One direction with its unit vector",
  request: { params: DirectionParams },
  responses: { 200: jsonOk(DirectionInfo, "Direction"), 404: notFound, 422: wrongFamily },
});

const put = createRoute({
  method: "post",
  path: "/directions",
  tags: ["latents"],
  summary: "Store a named direction (e.g. an InterFaceGAN boundary) for your edits on a StyleGAN2 version",
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { "application/json": { schema: DirectionUpload } } } },
  responses: { 200: jsonOk(DirectionInfo, "Stored"), 400: jsonError("Invalid request"), 404: notFound, 422: wrongFamily },
});

const del = createRoute({
  method: "delete",
  path: "/models/{name}/versions/{version}/directions/{direction}",
  tags: ["latents"],
  summary: "Delete one of your uploaded directions",
  request: { params: DirectionParams },
  responses: { 204: { description: "Deleted" }, 404: notFound },
});

export function directionRoutes({ registry, inference }: Services) {
  const resolve = (name: string, version: string, tenant: string | undefined) => registry.resolve(name, version, tenant);
  return newRouter()
    .openapi(list, async (c) => {
      const { name, version } = c.req.valid("param");
      const tenant = c.get("apiKey")?.tenant;
      const record = await resolve(name, version, tenant);
      const { w_dim, directions } = await inference.directions.list(record, tenant);
      return c.json({ model: record.name, version: record.version, w_dim, directions }, 200);
    })
    .openapi(get, async (c) => {
      const { name, version, direction } = c.req.valid("param");
      const tenant = c.get("apiKey")?.tenant;
      return c.json(await inference.directions.get(await resolve(name, version, tenant), tenant, direction), 200);
    })
    .openapi(put, async (c) => {
      const { model, version, name, vector, description } = c.req.valid("json");
      const tenant = c.get("apiKey")?.tenant;
      return c.json(await inference.directions.put(await resolve(model, version, tenant), tenant, name, vector, description), 200);
    })
    .openapi(del, async (c) => {
      const { name, version, direction } = c.req.valid("param");
      const tenant = c.get("apiKey")?.tenant;
      await inference.directions.delete(await resolve(name, version, tenant), tenant, direction);
      return c.body(null, 204);
    });
}
