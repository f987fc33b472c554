/**
 * `node --import tsx scripts/demo-examples.ts [--emoji-dir DIR]`: writes the example inputs the playground
 * offers for each demo model (`models/<demo>/examples/*.png`) and lists them in its model.json. All come
 * from the held-out splits, so an example is never a training image: emoji whose name hashes to the test
 * split (composited on white at the demo's size), and SPADE scenes from the evaluation seed.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { EMOJI_PACKAGES, EMOJI_SETS, compositeOnWhite, emojiSplitOf } from "../packages/core/src/demo/emoji.ts";
import { EMOJI_TRAIN_SIZE } from "../packages/core/src/demo/recipes.ts";
import { renderScene, sceneSeed } from "../packages/core/src/demo/scenes.ts";
import { resolveNpmPackage } from "../packages/core/src/demo/sources.ts";
import { encodeLabelPng } from "../packages/core/src/images/label-png.ts";
import { ModelJson, type ModelExample } from "../packages/core/src/models/model-json.ts";
import { ensureEmojiPackages } from "./demo-data.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const { values } = parseArgs({ options: { "emoji-dir": { type: "string" } } });

/** Writes the files and replaces the record's `examples` (key order of the rest kept). */
function writeExamples(model: string, files: { file: string; bytes: Uint8Array }[], examples: ModelExample[]) {
  const dir = path.join(ROOT, "models", model);
  fs.rmSync(path.join(dir, "examples"), { recursive: true, force: true });
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f.file)), { recursive: true });
    fs.writeFileSync(path.join(dir, f.file), f.bytes);
  }
  const recordPath = path.join(dir, "model.json");
  // Written as read plus `examples`: the schema check must not drop the fields it does not know (training).
  const record = { ...JSON.parse(fs.readFileSync(recordPath, "utf8")), examples };
  ModelJson.parse(record);
  fs.writeFileSync(recordPath, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`${model}: ${examples.length} examples`);
}

// CycleGAN: held-out emoji, drawn by the set each direction starts from.
const emojiDir = values["emoji-dir"] ?? ensureEmojiPackages();
const EMOJI: { code: string; caption: string; direction: "AtoB" | "BtoA" }[] = [
  { code: "1f436", caption: "dog (Google → Twitter)", direction: "AtoB" },
  { code: "1f339", caption: "rose (Google → Twitter)", direction: "AtoB" },
  { code: "1f62e", caption: "open mouth (Google → Twitter)", direction: "AtoB" },
  { code: "1f308", caption: "rainbow (Twitter → Google)", direction: "BtoA" },
];
const emojiFiles: { file: string; bytes: Uint8Array }[] = [];
for (const e of EMOJI) {
  if (emojiSplitOf(`${e.code}.png`) !== "test") throw new Error(`${e.code} is a training image, not held out`);
  const set = e.direction === "AtoB" ? "A" : "B";
  const src = path.join(resolveNpmPackage(EMOJI_PACKAGES[set], emojiDir), "img", EMOJI_SETS[set], "64", `${e.code}.png`);
  emojiFiles.push({ file: `examples/${e.code}-${EMOJI_SETS[set]}.png`, bytes: await compositeOnWhite(fs.readFileSync(src), EMOJI_TRAIN_SIZE) });
}
writeExamples(
  "emoji-cyclegan",
  emojiFiles,
  EMOJI.map((e, i) => ({ caption: e.caption, file: emojiFiles[i].file, direction: e.direction })),
);

// SPADE: label maps of held-out scenes (seed 2 is the evaluation set; training used seed 1).
const scenes = [0, 1, 2].map((i) => renderScene(sceneSeed(2, i), 64));
const sceneFiles = await Promise.all(
  scenes.map(async (s, i) => ({ file: `examples/scene-${i}.png`, bytes: await encodeLabelPng({ width: s.width, height: s.height, data: s.label }) })),
);
writeExamples(
  "scenes-spade",
  sceneFiles,
  sceneFiles.map((f, i) => ({ caption: `held-out scene ${i + 1}`, file: f.file })),
);

// StyleGAN2: a class and eight seeds; nothing to ship but the request.
const FASHION: [number, string][] = [
  [7, "Sneaker"],
  [1, "Trouser"],
  [8, "Bag"],
  [3, "Dress"],
];
writeExamples(
  "fashion-stylegan2",
  [],
  FASHION.map(([c, name]) => ({ caption: `${name}, seeds 0–7`, class_idx: c, seeds: [0, 1, 2, 3, 4, 5, 6, 7] })),
);

// The DCGAN demo is unconditional: its examples are seed ranges, torch.manual_seed seeds as the API draws them.
writeExamples("fashion-dcgan", [], [
  { caption: "torch seeds 0–7", seeds: [0, 1, 2, 3, 4, 5, 6, 7] },
  { caption: "torch seeds 42–49", seeds: [42, 43, 44, 45, 46, 47, 48, 49] },
]);
