/**
 * The hostile request bodies of the bad-input suite, shared with the keep-alive test that replays them on
 * reused connections. Each case names the 4xx and error code it must get. The models they name are imported
 * by the test that uses them: "sg-fixture" (StyleGAN2, unconditional), "cg-fixture" (CycleGAN, AtoB only)
 * and "spade-fixture" (SPADE, 6 classes).
 */
import sharp from "sharp";
import { buildDatasetZip } from "@ganserve/core/datasets/index";
import { encodeLabelPng } from "@ganserve/core/images/label-png";
import { pngHeaderOnly } from "../../packages/core/test/helpers/zipcraft.ts";

export type HostileCase = { name: string; route: string; body: unknown; status: number; code: string; headers?: Record<string, string> };

/** Images the cases send, base64; made once per run (async, so not at collection time). */
export interface HostileInputs {
  /** A valid 40×40 PNG. */
  goodImage: string;
  /** A 64×64 label map using class 255. */
  label255: string;
  /** An RGB PNG where a label map belongs. */
  rgbLabel: string;
}

export async function hostileInputs(): Promise<HostileInputs> {
  const goodImage = (await sharp({ create: { width: 40, height: 40, channels: 3, background: "#3080c0" } }).png().toBuffer()).toString("base64");
  const ids = new Uint8Array(64 * 64).map((_, i) => (i % 7 === 0 ? 255 : i % 6));
  const label255 = Buffer.from(await encodeLabelPng({ width: 64, height: 64, data: ids })).toString("base64");
  const rgbLabel = (await sharp({ create: { width: 64, height: 64, channels: 3, background: "#102030" } }).png().toBuffer()).toString("base64");
  return { goodImage, label255, rgbLabel };
}

const gen = (over: Record<string, unknown>) => ({ model: "sg-fixture", seeds: [1], ...over });

/**
 * The cases; `inputs` may be undefined when only the names are wanted (at collection time). `maxBodyBytes` is
 * the stack's GANSERVE_MAX_BODY_BYTES: the oversize case sends 1 MiB more than that.
 */
export const hostileCases = (inputs: HostileInputs | undefined, opts: { maxBodyBytes: number }): HostileCase[] => {
  const { goodImage, label255, rgbLabel } = inputs ?? ({} as Partial<HostileInputs>);
  return [
    { name: "truncated PNG", route: "/v1/translate", body: { model: "cg-fixture", image: Buffer.from(goodImage ?? "", "base64").subarray(0, 60).toString("base64") }, status: 400, code: "invalid_image" },
    { name: "50000×50000 PNG header", route: "/v1/translate", body: { model: "cg-fixture", image: pngHeaderOnly(50000, 50000).toString("base64") }, status: 413, code: "image_too_large" },
    { name: "zip instead of image", route: "/v1/translate", body: { model: "cg-fixture", image: Buffer.from(buildDatasetZip([{ path: "a.txt", bytes: new Uint8Array(10) }])).toString("base64") }, status: 415, code: "unsupported_media_type" },
    { name: "negative seed", route: "/v1/generate", body: gen({ seeds: [-1] }), status: 400, code: "validation_failed" },
    { name: "no seeds", route: "/v1/generate", body: gen({ seeds: [] }), status: 400, code: "validation_failed" },
    { name: "10,000 seeds", route: "/v1/generate", body: gen({ seeds: Array.from({ length: 10000 }, (_, i) => i) }), status: 400, code: "validation_failed" },
    { name: "range of 10,000 seeds", route: "/v1/generate", body: gen({ seeds: "0-9999" }), status: 400, code: "validation_failed" },
    { name: "psi=NaN (not JSON)", route: "/v1/generate", body: '{"model":"sg-fixture","seeds":[1],"truncation_psi":NaN}', status: 400, code: "bad_request" },
    { name: "psi as a string", route: "/v1/generate", body: gen({ truncation_psi: "NaN" }), status: 400, code: "validation_failed" },
    { name: "unknown model", route: "/v1/generate", body: gen({ model: "no-such-model" }), status: 404, code: "model_not_found" },
    { name: "unknown version", route: "/v1/generate", body: gen({ version: "v9" }), status: 404, code: "version_not_found" },
    { name: "model name with a path", route: "/v1/generate", body: gen({ model: "../models/x" }), status: 400, code: "validation_failed" },
    { name: "label index 255 on a 6-class model", route: "/v1/translate", body: { model: "spade-fixture", label_map: label255 }, status: 400, code: "invalid_label_map" },
    { name: "RGB label map", route: "/v1/translate", body: { model: "spade-fixture", label_map: rgbLabel }, status: 400, code: "invalid_label_map" },
    { name: "generate on a CycleGAN model", route: "/v1/generate", body: gen({ model: "cg-fixture" }), status: 422, code: "wrong_model_family" },
    { name: "translate on a StyleGAN2 model", route: "/v1/translate", body: { model: "sg-fixture", image: goodImage }, status: 422, code: "wrong_model_family" },
    { name: "CycleGAN without image", route: "/v1/translate", body: { model: "cg-fixture" }, status: 400, code: "validation_failed" },
    { name: "image that is not base64", route: "/v1/translate", body: { model: "cg-fixture", image: "%%%not base64%%%" }, status: 400, code: "validation_failed" },
    { name: "class_idx on an unconditional model", route: "/v1/generate", body: gen({ class_idx: 3 }), status: 400, code: "validation_failed" },
    { name: "truncation_cutoff past num_ws", route: "/v1/generate", body: gen({ truncation_cutoff: 99 }), status: 400, code: "validation_failed" },
    { name: "unknown format", route: "/v1/generate", body: gen({ format: "gif" }), status: 400, code: "validation_failed" },
    { name: "quality 0", route: "/v1/generate", body: gen({ format: "jpeg", quality: 0 }), status: 400, code: "validation_failed" },
    { name: "style-mix layer out of range", route: "/v1/generate", body: gen({ style_mix: { seeds: [2], layers: [40] } }), status: 400, code: "validation_failed" },
    { name: "direction the model lacks", route: "/v1/translate", body: { model: "cg-fixture", image: goodImage, direction: "BtoA" }, status: 400, code: "validation_failed" },
    { name: "wrong content type", route: "/v1/generate", body: "seeds=1", status: 415, code: "unsupported_media_type", headers: { "content-type": "text/plain" } },
    { name: "malformed JSON", route: "/v1/generate", body: '{"model": "sg-fixture", "seeds": [1', status: 400, code: "bad_request" },
    { name: "body over the size limit", route: "/v1/translate", body: { model: "cg-fixture", image: "A".repeat(opts.maxBodyBytes + 1024 * 1024) }, status: 413, code: "payload_too_large" },
    { name: "JSON array body", route: "/v1/generate", body: [1, 2, 3], status: 400, code: "validation_failed" },
  ];
};

/** What goes on the wire for a case: a string body as it is, anything else as JSON. */
export const wireBody = (c: HostileCase): string => (typeof c.body === "string" ? c.body : JSON.stringify(c.body));
