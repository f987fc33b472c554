/**
 * AWS Lambda entry point of the control plane (API Gateway v2 / function URL events). Settings come from
 * SST links (Storage, ApiKeys, FineTune) through loadSettings(); fine-tunes are submitted to AWS Batch.
 */
import { handle } from "hono/aws-lambda";
import { buildApp } from "./api/app.ts";
import { v1Routers } from "./api/routers.ts";
import { createRuntime } from "./services.ts";

// Built once per container, reused across invocations.
const runtime = await createRuntime();
// `handle` buffers the whole response (and API Gateway HTTP APIs buffer anyway): event routes answer with
// what they have and tell the client when to ask again, instead of holding the function until its timeout.
export const handler = handle(buildApp({ ...runtime.services, eventDelivery: "snapshot" }, v1Routers));
