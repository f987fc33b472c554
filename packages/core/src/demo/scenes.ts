/**
 * Procedural outdoor scenes for the SPADE demo: a label map of exact class ids and an image rendered from it
 * with simple per-class textures and shading. Everything is a pure function of (seed, size), so a dataset is
 * reproducible from its seed alone and the evaluation's ground truth is exact.
 *
 * Painter's order: sky, clouds, mountains, ground, water, road, buildings, trees. Each layer writes the label
 * and the colour of the pixels it covers, so the image never disagrees with the label map.
 */
import { buildDatasetZip, type DatasetFile } from "../datasets/build.ts";
import { encodeRgb } from "../images/codec.ts";
import { encodeLabelPng } from "../images/label-png.ts";

export const SCENE_CLASSES = [
  { id: 0, name: "sky", color: "#87b4e6" },
  { id: 1, name: "cloud", color: "#f0f0f5" },
  { id: 2, name: "mountain", color: "#6e6478" },
  { id: 3, name: "grass", color: "#50963c" },
  { id: 4, name: "water", color: "#3264aa" },
  { id: 5, name: "road", color: "#5a5a5f" },
  { id: 6, name: "building", color: "#a06446" },
  { id: 7, name: "tree", color: "#1e5a23" },
] as const;
export const SCENE_LABEL_NC = SCENE_CLASSES.length;
export const SKY = 0, CLOUD = 1, MOUNTAIN = 2, GRASS = 3, WATER = 4, ROAD = 5, BUILDING = 6, TREE = 7;

export interface Scene {
  width: number;
  height: number;
  /** HWC RGB */
  image: Uint8Array;
  /** row-major class ids */
  label: Uint8Array;
}

/** mulberry32: a small seeded PRNG with good enough statistics for layout choices. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Per-pixel texture noise in [-1, 1): a hash, so a pixel's grain does not depend on drawing order. */
function grain(x: number, y: number, seed: number): number {
  let h = Math.imul(x, 374761393) + Math.imul(y, 668265263) + Math.imul(seed, 2246822519);
  h = Math.imul(h ^ (h >>> 13), 1274126177);
  h ^= h >>> 16;
  return ((h >>> 0) / 4294967296) * 2 - 1;
}

/** Seed of the i-th scene of a dataset: decorrelated so neighbouring scenes share nothing. */
export const sceneSeed = (seed: number, i: number) => (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(i + 1, 0xc2b2ae35)) >>> 0;

const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

export function renderScene(seed: number, size = 64): Scene {
  const W = size;
  const H = size;
  const rnd = mulberry32(seed);
  const r = (lo: number, hi: number) => lo + (hi - lo) * rnd();
  const image = new Uint8Array(W * H * 3);
  const label = new Uint8Array(W * H);
  const set = (x: number, y: number, cls: number, rgb: readonly [number, number, number]) => {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    const i = y * W + x;
    label[i] = cls;
    image[i * 3] = clamp(rgb[0]);
    image[i * 3 + 1] = clamp(rgb[1]);
    image[i * 3 + 2] = clamp(rgb[2]);
  };
  const g = (x: number, y: number) => grain(x, y, seed);

  const horizon = Math.floor(H * r(0.36, 0.58));
  const warm = r(0, 1); // time of day: 0 noon .. 1 late afternoon

  for (let y = 0; y < horizon; y++) {
    const t = y / Math.max(1, horizon - 1);
    for (let x = 0; x < W; x++)
      set(x, y, SKY, [60 + 100 * t + 30 * warm * t, 110 + 90 * t + 10 * warm, 200 + 35 * t - 15 * warm * t]);
  }

  const clouds = Math.floor(r(0, 4));
  for (let c = 0; c < clouds; c++) {
    const cx = r(0, W), cy = r(2, Math.max(3, horizon * 0.6)), rx = r(0.08, 0.2) * W, ry = r(0.03, 0.06) * H;
    for (let y = Math.floor(cy - ry); y <= cy + ry; y++)
      for (let x = Math.floor(cx - rx); x <= cx + rx; x++) {
        if (y >= horizon || ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 > 1) continue;
        const shade = 250 - 35 * ((y - (cy - ry)) / (2 * ry));
        set(x, y, CLOUD, [shade, shade, shade + 5]);
      }
  }

  if (rnd() < 0.7) {
    const peaks = Array.from({ length: 1 + Math.floor(r(0, 3)) }, () => ({ x: r(-0.1, 1.1) * W, h: r(0.25, 0.75) * horizon, s: r(0.6, 1.4) }));
    const base: [number, number, number] = [r(95, 125), r(90, 110), r(110, 135)];
    for (let x = 0; x < W; x++) {
      const ridge = horizon - Math.max(0, ...peaks.map((p) => p.h - Math.abs(x - p.x) * p.s));
      for (let y = Math.ceil(ridge); y < horizon; y++) {
        const depth = (y - ridge) / Math.max(1, horizon - ridge);
        const k = 1.15 - 0.35 * depth + 0.05 * g(x, y);
        set(x, y, MOUNTAIN, [base[0] * k, base[1] * k, base[2] * k]);
      }
    }
  }

  const grass: [number, number, number] = [r(60, 100), r(130, 165), r(45, 70)];
  for (let y = horizon; y < H; y++) {
    const t = (y - horizon) / Math.max(1, H - 1 - horizon);
    for (let x = 0; x < W; x++) {
      const k = 1.1 - 0.3 * t + 0.12 * g(x, y);
      set(x, y, GRASS, [grass[0] * k, grass[1] * k, grass[2] * k]);
    }
  }

  const water = (x: number, y: number) => {
    const ripple = 12 * Math.sin(y * 1.9 + Math.sin(x * 0.35) * 1.5);
    set(x, y, WATER, [45 + ripple * 0.5, 95 + ripple, 170 + ripple + 10 * g(x, y)]);
  };
  const waterKind = rnd();
  if (waterKind < 0.3) {
    const depth = Math.floor(r(0.15, 0.4) * (H - horizon));
    for (let y = horizon; y < horizon + depth; y++) for (let x = 0; x < W; x++) water(x, y);
  } else if (waterKind < 0.65) {
    const cy = horizon + r(0.35, 0.7) * (H - horizon), cx = r(0.15, 0.85) * W, rx = r(0.15, 0.35) * W, ry = r(0.08, 0.18) * H;
    for (let y = Math.max(horizon, Math.floor(cy - ry)); y <= Math.min(H - 1, cy + ry); y++)
      for (let x = Math.floor(cx - rx); x <= cx + rx; x++) if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) water(x, y);
  }

  if (rnd() < 0.7) {
    const vx = r(0.3, 0.7) * W, bx = r(0.2, 0.8) * W, bw = r(0.12, 0.22) * W;
    for (let y = horizon; y < H; y++) {
      const t = (y - horizon) / Math.max(1, H - 1 - horizon);
      const cx = vx + (bx - vx) * t;
      const hw = 0.8 + (bw - 0.8) * t;
      for (let x = Math.floor(cx - hw); x <= Math.ceil(cx + hw); x++) {
        if (Math.abs(x - cx) > hw) continue;
        const dash = Math.abs(x - cx) < 0.5 + 0.6 * t && Math.floor(y / 3) % 2 === 0;
        const v = 88 + 10 * g(x, y) - 15 * t;
        set(x, y, ROAD, dash ? [215, 195, 70] : [v, v, v + 5]);
      }
    }
  }

  const buildings = Math.floor(r(0, 5));
  const palettes: [number, number, number][] = [[160, 85, 65], [165, 165, 170], [195, 175, 135], [120, 110, 125]];
  for (let b = 0; b < buildings; b++) {
    const bw = Math.floor(r(0.1, 0.22) * W), bh = Math.floor(r(0.15, 0.45) * H), x0 = Math.floor(r(-0.05, 0.95) * W), bottom = horizon + Math.floor(r(0, 3));
    const col = palettes[Math.floor(rnd() * palettes.length)];
    const lit = rnd() < 0.5;
    for (let y = bottom - bh; y < bottom; y++)
      for (let x = x0; x < x0 + bw; x++) {
        const window = (x - x0) % 3 === 1 && (y - (bottom - bh)) % 4 === 2 && x < x0 + bw - 1;
        const side = x - x0 < bw * 0.3 ? 0.85 : 1;
        set(x, y, BUILDING, window ? (lit ? [230, 210, 120] : [60, 70, 90]) : [col[0] * side, col[1] * side, col[2] * side]);
      }
  }

  const trees = Math.floor(r(0, 7));
  const spots = Array.from({ length: trees }, () => ({ x: r(0, W), y: horizon + 2 + r(0, 1) * (H - horizon - 2) })).sort((a, b) => a.y - b.y);
  for (const { x: tx, y: ty } of spots) {
    const t = (ty - horizon) / Math.max(1, H - horizon);
    const rad = 1.5 + 6 * t;
    const trunkH = Math.max(1, rad * 0.8), trunkW = Math.max(0.5, rad / 4);
    for (let y = Math.floor(ty - trunkH); y <= ty; y++) for (let x = Math.floor(tx - trunkW); x <= tx + trunkW; x++) set(x, y, TREE, [95, 62, 32]);
    const cy = ty - trunkH - rad * 0.8;
    for (let y = Math.floor(cy - rad); y <= cy + rad; y++)
      for (let x = Math.floor(tx - rad); x <= tx + rad; x++) {
        const dx = (x - tx) / rad, dy = (y - cy) / rad;
        if (dx * dx + dy * dy > 1) continue;
        const k = 1 - 0.35 * (dx + dy) * 0.5 + 0.1 * g(x, y);
        set(x, y, TREE, [30 * k, 95 * k, 38 * k]);
      }
  }
  return { width: W, height: H, image, label };
}

export interface ScenesDatasetOptions {
  n: number;
  seed: number;
  size?: number;
}

/** A spade-layout zip: images/scene-<i>.png and labels/scene-<i>.png (8-bit class ids). */
export async function buildScenesDataset(opts: ScenesDatasetOptions): Promise<{ zip: Uint8Array; count: number }> {
  const files: DatasetFile[] = [];
  for (let i = 0; i < opts.n; i++) {
    const s = renderScene(sceneSeed(opts.seed, i), opts.size ?? 64);
    const stem = `scene-${String(i).padStart(5, "0")}`;
    files.push({ path: `images/${stem}.png`, bytes: await encodeRgb({ data: s.image, width: s.width, height: s.height }, "png") });
    files.push({ path: `labels/${stem}.png`, bytes: await encodeLabelPng({ width: s.width, height: s.height, data: s.label }) });
  }
  return { zip: buildDatasetZip(files), count: opts.n };
}
