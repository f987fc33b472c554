/** Datasets: create (presigned upload form, quota held), finalize (validate + index), get, list. */
import { setTimeout as sleep } from "node:timers/promises";
import { createRoute, z } from "@hono/zod-openapi";
import { CreateDatasetRequest, Dataset, DatasetId, DatasetList } from "@ganserve/core/api/finetune";
import { publicDataset } from "@ganserve/core/datasets/service";
import { newRouter } from "../app.ts";
import type { Services } from "../env.ts";
import { requireJson } from "../middleware/content-type.ts";
import { preferredWait } from "./predictions.ts";
import { jsonError, jsonOk, PreferHeader, tenantOf } from "./shared.ts";

const IdParam = z.object({ id: DatasetId });

const create = createRoute({
  method: "post",
  path: "/datasets",
  tags: ["datasets"],
  summary: "Create a dataset and get a presigned upload form (S3 POST) for its zip, holding its size of your dataset quota",
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { "application/json": { schema: CreateDatasetRequest } } } },
  responses: {
    201: jsonOk(Dataset, "Created; POST the zip with upload.fields to upload.url (the file part last)"),
    400: jsonError("Invalid request"),
    401: jsonError("No or bad key"),
    413: jsonError("size_bytes over the upload limit (reason upload_too_large), or no room left in the dataset quota (reason quota_exceeded)"),
  },
});

const finalize = createRoute({
  method: "post",
  path: "/datasets/{id}/finalize",
  tags: ["datasets"],
  summary:
    "Start validating and indexing the uploaded zip (a job); with `Prefer: wait=N` hold up to N s for its end. Ready: counts per folder and every rejected file with its reason",
  request: { params: IdParam, headers: PreferHeader },
  responses: {
    200: jsonOk(Dataset, "Ready"),
    202: jsonOk(Dataset, "Processing: GET the dataset until it is ready or failed (its error says why)"),
    400: jsonError("The archive is unusable (invalid_archive; details.reason says why), when the job ended within the wait"),
    404: jsonError("No such dataset"),
    409: jsonError("Nothing uploaded yet"),
    413: jsonError("Too large, too many entries, a zip bomb, or over the dataset quota (the upload is deleted), when the job ended within the wait"),
    503: jsonError("The finalize job could not be started (queue_unavailable, Retry-After)"),
  },
});

const get = createRoute({
  method: "get",
  path: "/datasets/{id}",
  tags: ["datasets"],
  summary: "One dataset",
  request: { params: IdParam },
  responses: { 200: jsonOk(Dataset, "Dataset"), 404: jsonError("No such dataset") },
});

const list = createRoute({
  method: "get",
  path: "/datasets",
  tags: ["datasets"],
  summary: "Your datasets, newest first",
  responses: { 200: jsonOk(DatasetList, "Datasets") },
});

export function datasetRoutes({ datasets, datasetQuota, datasetFinalizer, settings }: Services) {
  return newRouter()
    // The form's size is held against the tenant's quota, serialised with its other creates and finalizes.
    .openapi(create, async (c) => c.json(publicDataset(await datasetQuota.create(c.req.valid("json"), tenantOf(c))), 201))
    .openapi(finalize, async (c) => {
      const { id } = c.req.valid("param");
      const tenant = tenantOf(c);
      // The job checks the quota and finalizes, serialised per tenant: concurrent finalizes cannot overrun it.
      const { record, done } = await datasetFinalizer.start(id, tenant);
      if (record.status === "ready") return c.json(publicDataset(record), 200);
      // Only a job in this process can end within the request; one on Batch waits minutes for an instance.
      const wait = done ? preferredWait(c, settings, settings.GANSERVE_PREDICTION_WAIT_S) : 0;
      if (!done || wait === 0) return c.json(publicDataset(record), 202);
      const ctl = new AbortController();
      const ended = await Promise.race([done, sleep(wait * 1000, undefined, { signal: ctl.signal }).catch(() => undefined)]).finally(() => ctl.abort());
      if (ended) return c.json(publicDataset(ended), 200);
      return c.json(publicDataset(await datasets.get(id, tenant)), 202);
    })
    .openapi(get, async (c) => c.json(publicDataset(await datasets.get(c.req.valid("param").id, tenantOf(c))), 200))
    .openapi(list, async (c) => c.json({ datasets: (await datasets.list(tenantOf(c))).map(publicDataset) }, 200));
}
