/**
 * POST /v1/translate (CycleGAN image → image, SPADE label map → image). Takes JSON with base64 fields or
 * multipart/form-data with files under the same field names.
 */
import { createRoute } from "@hono/zod-openapi";
import { Direction, ImageFormat, OutputMode, Preprocess, TRANSLATE_FILE_FIELDS, TranslateRequest, TranslateResponse, type TranslateFileField } from "@ganserve/core/api/inference";
import { ApiError } from "@ganserve/core/errors";
import type { TranslateInputs, TranslateParams } from "@ganserve/core/inference/params";
import { newRouter } from "../app.ts";
import type { Services } from "../env.ts";
import { fromBase64 } from "@ganserve/core/predictions/handlers";
import { createAndWait } from "./predictions.ts";
import { inferenceErrors, predictionAccepted, PreferHeader } from "./shared.ts";

/** Form fields arrive as strings; these are numbers in TranslateRequest (optional or defaulted). */
type SchemaDef = { def: { type: string; innerType?: SchemaDef } };
const NUMBER_FIELDS = new Set(
  Object.entries(TranslateRequest.shape as Record<string, SchemaDef>)
    .filter(([, s]) => (s.def.innerType ?? s).def.type === "number")
    .map(([k]) => k),
);

const multipartSchema = {
  type: "object" as const,
  required: ["model"],
  properties: {
    model: { type: "string" as const },
    version: { type: "string" as const },
    direction: { type: "string" as const, enum: Direction.unwrap().options },
    preprocess: { type: "string" as const, enum: Preprocess.unwrap().options },
    seed: { type: "integer" as const },
    format: { type: "string" as const, enum: ImageFormat.unwrap().options },
    output: { type: "string" as const, enum: OutputMode.unwrap().options },
    ...Object.fromEntries(TRANSLATE_FILE_FIELDS.map((f) => [f, { type: "string" as const, format: "binary" }])),
  },
};

const translate = createRoute({
  method: "post",
  path: "/translate",
  tags: ["inference"],
  summary: "Image → image (CycleGAN) or label map → image (SPADE); output has the input's size. Runs as a prediction: 202 with it when not done within the wait.",
  request: {
    headers: PreferHeader,
    body: {
      content: {
        "application/json": { schema: TranslateRequest },
        "multipart/form-data": { schema: multipartSchema },
      },
    },
  },
  responses: { 200: { description: "Translated image", content: { "application/json": { schema: TranslateResponse } } }, 202: predictionAccepted, ...inferenceErrors },
});

/**
 * Runs as a prediction whose input carries the files in base64 (a multipart upload is converted): the
 * worker, in this process or a GPU container, decodes them again.
 */
async function run(c: Parameters<typeof createAndWait>[0], services: Services, body: TranslateParams, files: Partial<Record<TranslateFileField, string>>) {
  if (services.settings.GANSERVE_SYNC_INFERENCE) {
    const inputs: TranslateInputs = {};
    for (const f of TRANSLATE_FILE_FIELDS) inputs[f] = fromBase64(f, files[f] ?? body[f]);
    return c.json(await services.inference.translate(body, inputs, c.get("apiKey")?.tenant), 200);
  }
  const { model, version, ...rest } = body;
  const input: Record<string, unknown> = { ...rest, ...files };
  return createAndWait(c, services, { model, version, task: "translate", input }, (rec, r) => ({
    model: rec.model,
    version: rec.version,
    params: r.params,
    image: r.output[0],
    timings: r.timings,
  }));
}

export function translateRoutes(services: Services) {
  return newRouter().openapi(translate, async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (/^application\/(.+\+)?json\b/i.test(type)) {
      // The route declares two content types, so Hono cannot type `valid("json")`; the JSON validator has run.
      const body = c.req.valid("json" as never) as TranslateParams;
      // Checked here so that bad base64 is a 400 naming the field, as before predictions; passed on as sent.
      for (const f of TRANSLATE_FILE_FIELDS) fromBase64(f, body[f]);
      return (await run(c, services, body, {})) as never;
    }
    if (!/^multipart\/form-data/i.test(type))
      throw new ApiError("unsupported_media_type", `send application/json or multipart/form-data, not '${type || "none"}'`);
    let form: Record<string, string | File | (string | File)[]>;
    try {
      form = await c.req.parseBody({ all: true });
    } catch (e) {
      throw new ApiError("bad_request", `malformed multipart body: ${(e as Error).message}`);
    }
    const fields: Record<string, unknown> = {};
    const inputs: TranslateInputs = {};
    for (const [k, v] of Object.entries(form)) {
      if (Array.isArray(v)) throw new ApiError("validation_failed", `${k}: given more than once`);
      if ((TRANSLATE_FILE_FIELDS as readonly string[]).includes(k)) {
        inputs[k as TranslateFileField] = typeof v === "string" ? fromBase64(k, v) : new Uint8Array(await v.arrayBuffer());
      } else if (typeof v === "string") fields[k] = NUMBER_FIELDS.has(k) && v.trim() !== "" ? Number(v) : v;
    }
    const parsed = TranslateRequest.safeParse(fields);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message, code: i.code }));
      throw new ApiError("validation_failed", `${issues[0].path || "body"}: ${issues[0].message}`, { issues });
    }
    const files = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
    return (await run(c, services, parsed.data, files)) as never;
  });
}
