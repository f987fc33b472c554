/**
 * Translate's preprocessing: the uploaded files checked against what the model takes, decoded and brought to
 * the network's input size (CycleGAN's load_size/crop/resize options, SPADE's label maps with the official
 * nearest resize). Everything here runs per request before batching, so it holds no state and knows nothing
 * of batchers or metrics.
 */
import { ApiError } from "../errors.ts";
import { decodeRgb, readImageSize, resizeRgb, uint8ToFloat, type RgbImage } from "../images/codec.ts";
import { decodeLabelPng, type LabelMap } from "../images/label-png.ts";
import { admitCycleGan, type PassBudget } from "./admission.ts";
import type { CycleGANEngine, SpadeEngine } from "./engine.ts";
import type { TranslateInputs, TranslateParams } from "./params.ts";

/**
 * The user's image and its network-sized copy; size is a multiple of the model's sizeMultiple. The network size
 * follows from the header alone, so an input over the model's cost limit (admission.ts) is refused before a
 * pixel is decoded; `slots` is the item's share of a forward pass.
 */
export async function cycleGanInput(engine: CycleGANEngine, config: Record<string, unknown>, p: TranslateParams, inputs: TranslateInputs, maxPixels: number, budget: PassBudget) {
  if (!inputs.image) throw new ApiError("validation_failed", "image: required for a CycleGAN model");
  if (inputs.label_map) throw new ApiError("validation_failed", "label_map: only SPADE models take a label map");
  const header = await readImageSize(inputs.image, { maxPixels, field: "image" });
  const size = cycleNetSize(header, engine, p);
  if (size.w * size.h > maxPixels) throw new ApiError("image_too_large", `the network input would be ${size.w}×${size.h}; use preprocess=resize`);
  const slots = admitCycleGan(config, budget, size, engine.sizeMultiple, { ...header, preprocess: p.preprocess ?? "resize" });
  const original = await decodeRgb(inputs.image, { maxPixels, field: "image" });
  const net = await cyclePreprocess(original, p, size);
  return { original, net, size, slots };
}

function cycleNetSize(img: { width: number; height: number }, engine: CycleGANEngine, p: TranslateParams) {
  const m = engine.sizeMultiple;
  const round = (v: number) => Math.max(m, Math.round(v / m) * m);
  let w = img.width;
  let h = img.height;
  if (p.preprocess !== "none") {
    // Scale the shorter side to load_size (default: the training size), keeping the aspect ratio.
    const target = p.load_size ?? engine.trainSize;
    if (p.preprocess === "crop") w = h = target;
    else {
      const s = target / Math.min(w, h);
      w *= s;
      h *= s;
    }
  }
  return { w: round(w), h: round(h) };
}

async function cyclePreprocess(img: RgbImage, p: TranslateParams, size: { w: number; h: number }) {
  let src = img;
  if (p.preprocess === "crop") {
    const side = Math.min(img.width, img.height);
    const sharp = (await import("sharp")).default;
    const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .extract({ left: Math.floor((img.width - side) / 2), top: Math.floor((img.height - side) / 2), width: side, height: side })
      .raw()
      .toBuffer({ resolveWithObject: true });
    src = { data: new Uint8Array(data), width: info.width, height: info.height };
  }
  return resizeRgb(src, size.w, size.h);
}

/**
 * The label map (and instance map, style image) validated against the model and resized to its input:
 * `label` keeps the user's size for resizing the output back; `sized` and `instance` are network-sized.
 */
export async function spadeInput(engine: SpadeEngine, inputs: TranslateInputs, maxPixels: number) {
  if (!inputs.label_map) throw new ApiError("validation_failed", "label_map: required for a SPADE model");
  if (inputs.image) throw new ApiError("validation_failed", "image: a SPADE model takes label_map, not image");
  const label = decodeLabelPng(inputs.label_map, { maxPixels, field: "label_map" });
  let instance: LabelMap | undefined;
  if (inputs.instance_map) {
    if (!engine.useInstance) throw new ApiError("validation_failed", "instance_map: this model does not use instance maps");
    instance = decodeLabelPng(inputs.instance_map, { maxPixels, field: "instance_map" });
    if (instance.width !== label.width || instance.height !== label.height)
      throw new ApiError("validation_failed", `instance_map: ${instance.width}×${instance.height} differs from label_map ${label.width}×${label.height}`);
  }
  let style: Float32Array | undefined;
  if (inputs.style_image) {
    if (!engine.useVae) throw new ApiError("validation_failed", "style_image: this model has no style encoder (use_vae is off)");
    const img = await decodeRgb(inputs.style_image, { maxPixels, field: "style_image" });
    style = uint8ToFloat((await resizeRgb(img, 256, 256)).data);
  }
  const maxId = engine.labelNc + (engine.containDontcare ? 0 : -1);
  for (const v of label.data)
    if (v > maxId) throw new ApiError("invalid_label_map", `label_map: class id ${v} is out of range 0..${maxId} for this model`, { value: v, max: maxId });
  const sized = nearest(label, engine.width, engine.height);
  // Without an instance map, each class region is its own instance (what the official test does with labels).
  const inst = engine.useInstance ? nearest(instance ?? label, engine.width, engine.height) : null;
  return { label, sized, instance: inst, style };
}

/** Legacy nearest resize (floor indexing), as the official code resizes label maps. */
function nearest(map: LabelMap, w: number, h: number): Int32Array {
  if (map.width === w && map.height === h) return map.data;
  const out = new Int32Array(w * h);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(map.height - 1, Math.floor((y * map.height) / h));
    for (let x = 0; x < w; x++) out[y * w + x] = map.data[sy * map.width + Math.min(map.width - 1, Math.floor((x * map.width) / w))];
  }
  return out;
}
