/**
 * Schemas shared by every route. They are plain zod with `.meta()`: the HTTP layer turns them into request
 * validation and OpenAPI, and the SDK derives its types from them, so each shape is written once.
 */
import { z } from "zod";

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ example: "validation_failed", description: "Stable machine-readable code" }),
      message: z.string().meta({ example: "seeds: Too big: expected array to have <=64 items" }),
      details: z.unknown().optional(),
      requestId: z.string().meta({ example: "0f6e1c1a-5b1e-4a0e-9d4c-2f8c7e1b9a10" }),
    }),
  })
  .meta({ id: "Error", description: "Every failure has this shape" });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const Health = z.object({ status: z.literal("ok"), uptime_s: z.number(), version: z.string() }).meta({ id: "Health" });

/**
 * Public and unauthenticated, so it says ready or not and which check failed, nothing a tenant put there
 * (no model names: those of fine-tuned models are tenant data).
 */
export const Readiness = z
  .object({
    status: z.enum(["ready", "not_ready"]),
    checks: z
      .record(z.string(), z.object({ ok: z.boolean(), detail: z.string().optional() }))
      .meta({ description: "One entry per check (storage, models warmed up), with a fixed reason when it fails" }),
  })
  .meta({ id: "Readiness" });
export type Readiness = z.infer<typeof Readiness>;
