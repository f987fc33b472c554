/** Fine-tunes: create, get, list, cancel, and a server-sent event stream of progress. */
import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { CreateFineTuneRequest, FineTune, FineTuneEvent, FineTuneId, FineTuneList } from "@ganserve/core/api/finetune";
import { newRouter } from "../app.ts";
import type { Services } from "../env.ts";
import { requireJson } from "../middleware/content-type.ts";
import { jsonError, jsonOk, SNAPSHOT_RETRY_MS, tenantOf } from "./shared.ts";

const IdParam = z.object({ id: FineTuneId });

const create = createRoute({
  method: "post",
  path: "/fine-tunes",
  tags: ["fine-tunes"],
  summary: "Start fine-tuning a base model on a dataset; the result is published as a new model version",
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { "application/json": { schema: CreateFineTuneRequest } } } },
  responses: {
    201: jsonOk(FineTune, "Queued"),
    400: jsonError("Invalid request"),
    404: jsonError("Unknown base model or dataset"),
    409: jsonError("Dataset not ready, or the model name belongs to someone else"),
    422: jsonError("Dataset layout does not fit the model family"),
    429: jsonError("Too many fine-tunes queued or running for this tenant (rate_limited, Retry-After)"),
  },
});

const get = createRoute({
  method: "get",
  path: "/fine-tunes/{id}",
  tags: ["fine-tunes"],
  summary: "Status, step, losses, ETA, sample grids and the resulting model version",
  request: { params: IdParam },
  responses: { 200: jsonOk(FineTune, "Fine-tune"), 404: jsonError("No such fine-tune") },
});

const list = createRoute({
  method: "get",
  path: "/fine-tunes",
  tags: ["fine-tunes"],
  summary: "Your fine-tunes, newest first",
  responses: { 200: jsonOk(FineTuneList, "Fine-tunes") },
});

const cancel = createRoute({
  method: "post",
  path: "/fine-tunes/{id}/cancel",
  tags: ["fine-tunes"],
  summary: "Ask the worker to stop at the next step boundary",
  request: { params: IdParam },
  responses: { 200: jsonOk(FineTune, "Cancel requested"), 404: jsonError("No such fine-tune"), 409: jsonError("Already finished") },
});

const events = createRoute({
  method: "get",
  path: "/fine-tunes/{id}/events",
  tags: ["fine-tunes"],
  summary: "Server-sent events (status, progress, checkpoint, sample, log, done); resumable with Last-Event-ID",
  request: { params: IdParam, headers: z.object({ "last-event-id": z.string().regex(/^\d+$/).optional() }) },
  responses: {
    200: {
      description:
        "text/event-stream of FineTuneEvent objects; ends after the `done` event. Where responses are buffered (the AWS deployment) it answers at once with the events so far, the header `Ganserve-Events: snapshot` and a `retry:` delay: ask again then with Last-Event-ID (EventSource does this by itself), or poll GET /v1/fine-tunes/{id}",
      content: { "text/event-stream": { schema: FineTuneEvent } },
    },
    404: jsonError("No such fine-tune"),
  },
});

/** How often the stream looks for new events in storage. */
const POLL_MS = 250;

export function fineTuneRoutes({ fineTunes, jobs, fineTuneSlots, eventDelivery = "stream" }: Services) {
  return newRouter()
    .openapi(create, async (c) => {
      const t = tenantOf(c);
      return c.json(await fineTuneSlots.run(t, () => fineTunes.create(c.req.valid("json"), t)), 201);
    })
    .openapi(get, async (c) => c.json(await fineTunes.get(c.req.valid("param").id, tenantOf(c)), 200))
    .openapi(list, async (c) => c.json({ fine_tunes: await fineTunes.list(tenantOf(c)) }, 200))
    .openapi(cancel, async (c) => c.json(await fineTunes.cancel(c.req.valid("param").id, tenantOf(c)), 200))
    .openapi(events, async (c) => {
      const { id } = c.req.valid("param");
      await jobs.get(id, tenantOf(c)); // 404 before the stream starts
      let after = Number(c.req.header("last-event-id") ?? c.req.query("last_event_id") ?? 0);
      if (eventDelivery === "snapshot") {
        c.header("Ganserve-Events", "snapshot");
        return streamSSE(c, async (stream) => {
          const batch = await jobs.events(id, after);
          for (const e of batch) await stream.writeSSE({ id: String(e.seq), event: e.type, data: JSON.stringify(e) });
          if (batch.at(-1)?.type !== "done") await stream.write(`retry: ${SNAPSHOT_RETRY_MS}\n\n`);
        }) as never;
      }
      return streamSSE(c, async (stream) => {
        let closed = false;
        stream.onAbort(() => {
          closed = true;
        });
        let idle = 0;
        while (!closed) {
          const batch = await jobs.events(id, after);
          for (const e of batch) {
            await stream.writeSSE({ id: String(e.seq), event: e.type, data: JSON.stringify(e) });
            after = e.seq;
            if (e.type === "done") return;
          }
          // A comment line now and then keeps proxies from closing an idle stream.
          if (batch.length === 0 && ++idle % 60 === 0) await stream.write(": keep-alive\n\n");
          await stream.sleep(POLL_MS);
        }
      }) as never;
    });
}
