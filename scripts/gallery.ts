/**
 * `npm run gallery`: one image grid per shipped demo model (docs/gallery/<name>.png, also the model's
 * models/<name>/sample.png), made with the serving
 * engine from models/<name>/, and the README gallery snippet on stdout (the lead pastes it).
 *  - stylegan2: one row per class, 8 seeds each;
 *  - cyclegan: the first 8 held-out google emoji (--emoji-zip: the eval zip train:demo prints) and their translations;
 *  - spade: procedural label maps (seed 99) as palette images above the generated scenes;
 *  - dcgan: two rows of the model's seeds 0-15 (torch.manual_seed seeds for the Fashion-MNIST demo).
 * `--only <name>` redraws one model's grid.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { renderScene, sceneSeed } from "../packages/core/src/demo/scenes.ts";
import { initBackend } from "../packages/core/src/engine/backend.ts";
import { loadModelFolder } from "../packages/core/src/eval/load.ts";
import { decodeImage, readZipImages } from "../packages/core/src/eval/zip-images.ts";
import { encodeRgb, floatToUint8, uint8ToFloat, type RgbImage } from "../packages/core/src/images/codec.ts";
import type { Engine } from "../packages/core/src/inference/engine.ts";
import { tfjsEngines } from "../packages/core/src/inference/engines/tfjs.ts";
import type { ModelJson } from "../packages/core/src/models/model-json.ts";
import { samplerZ, seedToZ } from "../packages/core/src/random/index.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { "emoji-zip": { type: "string" }, scale: { type: "string" }, only: { type: "string" } } });
const SCALE = Number(values.scale ?? 2);

/** Tiles equally sized images into rows × cols, nearest-upscaled by SCALE so 32 px tiles stay visible. */
function grid(tiles: RgbImage[][]): RgbImage {
  const th = tiles[0][0].height * SCALE;
  const tw = tiles[0][0].width * SCALE;
  const pad = 2;
  const cols = Math.max(...tiles.map((r) => r.length));
  const width = cols * (tw + pad) + pad;
  const height = tiles.length * (th + pad) + pad;
  const data = new Uint8Array(width * height * 3).fill(255);
  for (const [r, row] of tiles.entries())
    for (const [c, t] of row.entries())
      for (let y = 0; y < th; y++)
        for (let x = 0; x < tw; x++) {
          const s = (Math.floor(y / SCALE) * t.width + Math.floor(x / SCALE)) * 3;
          const d = ((pad + r * (th + pad) + y) * width + pad + c * (tw + pad) + x) * 3;
          data[d] = t.data[s];
          data[d + 1] = t.data[s + 1];
          data[d + 2] = t.data[s + 2];
        }
  return { data, width, height };
}

/** n NHWC images → RGB tiles; a one-channel image is shown as gray RGB. */
const split = (out: Float32Array, n: number, h: number, w: number, conv: "tanh" | "stylegan2" | "torchvision", channels = 3): RgbImage[] =>
  Array.from({ length: n }, (_, i) => {
    const px = floatToUint8(out.subarray(i * h * w * channels, (i + 1) * h * w * channels), conv);
    return { data: channels === 3 ? px : Uint8Array.from({ length: h * w * 3 }, (_, j) => px[Math.floor(j / 3)]), width: w, height: h };
  });

async function tilesFor(record: ModelJson, engine: Engine): Promise<RgbImage[][]> {
  if (engine.family === "stylegan2") {
    const rows: RgbImage[][] = [];
    for (let cls = 0; cls < Math.max(1, engine.cDim); cls++) {
      const n = 8;
      const z = new Float32Array(n * engine.zDim);
      for (let i = 0; i < n; i++) z.set(seedToZ(i, engine.zDim), i * engine.zDim);
      const c = engine.cDim ? Float32Array.from({ length: n * engine.cDim }, (_, j) => (j % engine.cDim === cls ? 1 : 0)) : null;
      const img = await engine.synthesis(await engine.mapping(z, c, n, { truncation_psi: 0.8 }), n, { noise_mode: "const" });
      rows.push(split(img, n, engine.resolution, engine.resolution, "stylegan2"));
    }
    return rows;
  }
  if (engine.family === "cyclegan") {
    if (!values["emoji-zip"]) throw new Error(`${record.name}: pass --emoji-zip <held-out eval zip printed by train:demo> for the input row`);
    const entries = (await readZipImages(new Uint8Array(fs.readFileSync(values["emoji-zip"])), "cyclegan")).filter((e) => e.role === "testA").slice(0, 8);
    const inputs = await Promise.all(entries.map(decodeImage));
    const { width: w, height: h } = inputs[0];
    const x = new Float32Array(inputs.length * w * h * 3);
    for (const [i, im] of inputs.entries()) x.set(uint8ToFloat(im.data), i * w * h * 3);
    return [inputs, split(await engine.forward("AtoB", x, inputs.length, h, w), inputs.length, h, w, "tanh")];
  }
  if (engine.family === "dcgan") {
    // Two rows of torch seeds 0-15: what /v1/generate gives for them.
    const n = 16;
    const z = new Float32Array(n * engine.zDim);
    for (let i = 0; i < n; i++) z.set(samplerZ(engine.seedRng, i, engine.zDim), i * engine.zDim);
    const s = engine.resolution;
    const tiles = split(await engine.forward(z, n), n, s, s, "torchvision", engine.channels);
    return [tiles.slice(0, 8), tiles.slice(8)];
  }
  const n = 8;
  const { height: h, width: w } = engine;
  const scenes = Array.from({ length: n }, (_, i) => renderScene(sceneSeed(99, i), w));
  const label = new Int32Array(n * h * w);
  for (const [i, s] of scenes.entries()) label.set(s.label, i * h * w);
  const palette = (record.classes ?? []).map((c) => [1, 3, 5].map((o) => parseInt(c.color.slice(o, o + 2), 16)));
  const painted = scenes.map((s) => ({ data: Uint8Array.from({ length: h * w * 3 }, (_, j) => palette[s.label[Math.floor(j / 3)]]?.[j % 3] ?? 0), width: w, height: h }));
  return [painted, split(await engine.forward(label, null, n, { seed: 0 }), n, h, w, "tanh"), scenes.map((s) => ({ data: s.image, width: w, height: h }))];
}

const backend = await initBackend();
const outDir = path.join(ROOT, "docs", "gallery");
fs.mkdirSync(outDir, { recursive: true });
const snippet: string[] = ["## Demo models", "", "| model | family | samples |", "| --- | --- | --- |"];
for (const name of fs.readdirSync(path.join(ROOT, "models")).filter((n) => !n.startsWith("_") && (!values.only || n === values.only)).sort()) {
  const dir = path.join(ROOT, "models", name);
  if (!fs.existsSync(path.join(dir, "model.json"))) continue;
  const { record, weights } = loadModelFolder(dir);
  const engine = await tfjsEngines(backend as never).load(record, weights);
  try {
    const png = await encodeRgb(grid(await tilesFor(record, engine)), "png");
    fs.writeFileSync(path.join(outDir, `${name}.png`), png);
    // The same grid is the model's sample image (the Models page shows it; registered with the model).
    fs.writeFileSync(path.join(ROOT, "models", name, "sample.png"), png);
    console.error(`wrote docs/gallery/${name}.png and models/${name}/sample.png`);
    snippet.push(`| \`${name}\` | ${record.family} | ![${name}](docs/gallery/${name}.png) |`);
  } finally {
    engine.dispose();
  }
}
snippet.push("", "Rows: StyleGAN2, one class per row; CycleGAN, Google emoji (top) → Twitter style (bottom); SPADE, label map, generated, ground truth; DCGAN, seeds 0-15. See [docs/demo-models.md](docs/demo-models.md).");
console.log(snippet.join("\n"));
