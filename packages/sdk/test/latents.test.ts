import { describe, expect, it } from "vitest";
import { decodeLatent, encodeLatent, Ganserve } from "../src/index.ts";
import { fakeFetch, json, type Handler } from "./fake-fetch.ts";

const client = (...handlers: Handler[]) => {
  const f = fakeFetch(...handlers);
  return { sdk: new Ganserve({ baseUrl: "http://api.test/", apiKey: "k", fetch: f.fetch }), calls: f.calls };
};

describe("latent space", () => {
  it("encodes and decodes float32 latents as the API's base64 (little-endian), exactly", () => {
    const w = Float32Array.from([0.1, -2.5, 3.4028234663852886e38, 1e-45, 0]);
    const b64 = encodeLatent(w);
    expect(Buffer.from(b64, "base64")).toEqual(Buffer.from(w.buffer));
    expect(decodeLatent(b64)).toEqual(w);
  });

  it("videos, projections and directions go to their routes", async () => {
    const { sdk, calls } = client(
      () => json({ video: { frames: 90 } }),
      () => json({ w: "AAAA" }),
      () => json({ directions: [] }),
      () => json({ name: "smile" }),
      () => new Response(null, { status: 204 }),
    );
    await sdk.generate.video({ model: "m", keyframes: { seeds: [1, 2, 3] } });
    await sdk.project({ model: "m", image: new Uint8Array([1, 2, 3]), steps: 10 });
    await sdk.models.directions("m");
    await sdk.models.putDirection({ model: "m", version: "v1", name: "smile", vector: [1, 0] });
    await sdk.models.deleteDirection("m", "v1", "smile");
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "POST http://api.test/v1/generate/video",
      "POST http://api.test/v1/generate/project",
      "GET http://api.test/v1/models/m/versions/latest/directions",
      "POST http://api.test/v1/directions",
      "DELETE http://api.test/v1/models/m/versions/v1/directions/smile",
    ]);
    // The projection's image travels as base64 in the JSON body.
    expect(JSON.parse(calls[1].body as string)).toEqual({ model: "m", image: "AQID", steps: 10 });
  });
});
