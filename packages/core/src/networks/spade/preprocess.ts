/**
 * Label map (+ instance map) → SPADE semantics, as upstream `Pix2PixModel.preprocess_input` builds them:
 * one-hot over `label_nc + contain_dontcare_label` channels, then (unless `no_instance`) one channel of instance
 * edges. Done on the host in exact arithmetic: the values are 0/1, and a bad label has to be reported precisely
 * before any tensor work (upstream's `scatter_` would just crash on it).
 *
 * Output layout is NHWC, channels `[classes..., edge]`.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { SpadeConfig } from "./config.ts";

/** Integer map of class or instance ids. Shape [H, W], [N, H, W] or [N, 1, H, W] (the official NCHW). */
export interface IdMap {
  data: ArrayLike<number | bigint>;
  shape: readonly number[];
}

export interface SemanticsOptions {
  /**
   * Map the value 255 to `label_nc` first, as upstream's Pix2pixDataset does for "don't care" pixels. Off by
   * default: a caller who sends class ids should get an error for 255 unless they ask for the dataset convention.
   */
  dontcare255?: boolean;
}

/** Invalid label or instance map: a client error (the API maps it to 4xx). */
export class LabelMapError extends Error {
  override name = "LabelMapError";
  readonly code = "invalid_label_map";
  constructor(
    message: string,
    readonly detail: { map: "label" | "instance"; value?: string; n?: number; y?: number; x?: number } = { map: "label" },
  ) {
    super(message);
  }
}

type PreprocessConfig = Pick<SpadeConfig, "label_nc" | "contain_dontcare_label" | "no_instance">;

interface Dims {
  n: number;
  h: number;
  w: number;
}

function dimsOf(m: IdMap, which: "label" | "instance"): Dims {
  const s = m.shape;
  let d: Dims | undefined;
  if (s.length === 2) d = { n: 1, h: s[0], w: s[1] };
  else if (s.length === 3) d = { n: s[0], h: s[1], w: s[2] };
  else if (s.length === 4 && s[1] === 1) d = { n: s[0], h: s[2], w: s[3] };
  if (!d || !s.every((x) => Number.isSafeInteger(x) && x > 0))
    throw new LabelMapError(`${which} map has shape [${s.join(", ")}]; expected [H, W], [N, H, W] or [N, 1, H, W]`, { map: which });
  if (m.data.length !== d.n * d.h * d.w)
    throw new LabelMapError(`${which} map has ${m.data.length} values for shape [${s.join(", ")}]`, { map: which });
  return d;
}

const at = (i: number, d: Dims) => {
  const hw = d.h * d.w;
  return { n: Math.floor(i / hw), y: Math.floor((i % hw) / d.w), x: i % d.w };
};

/**
 * Edge channel of upstream `get_edges`: a pixel is 1 when its id differs from its left, right, upper or lower
 * neighbour (both pixels of an unequal pair are marked; pixels past the border are not compared).
 */
export function instanceEdges(ids: ArrayLike<number | bigint>, d: Dims): Uint8Array {
  const e = new Uint8Array(d.n * d.h * d.w);
  for (let n = 0; n < d.n; n++) {
    const base = n * d.h * d.w;
    for (let y = 0; y < d.h; y++) {
      const row = base + y * d.w;
      for (let x = 0; x < d.w; x++) {
        const i = row + x;
        if (x + 1 < d.w && ids[i] !== ids[i + 1]) e[i] = e[i + 1] = 1;
        if (y + 1 < d.h && ids[i] !== ids[i + d.w]) e[i] = e[i + d.w] = 1;
      }
    }
  }
  return e;
}

/** Checks every label value; returns them as class indices or throws LabelMapError naming the first bad one. */
export function validateLabels(config: PreprocessConfig, label: IdMap, opts: SemanticsOptions = {}): Int32Array {
  const d = dimsOf(label, "label");
  const classes = config.label_nc + (config.contain_dontcare_label ? 1 : 0);
  const out = new Int32Array(label.data.length);
  for (let i = 0; i < out.length; i++) {
    const raw = label.data[i];
    let v = typeof raw === "bigint" ? (raw >= -(2n ** 31n) && raw < 2n ** 31n ? Number(raw) : NaN) : raw;
    if (opts.dontcare255 && v === 255) v = config.label_nc;
    if (!Number.isInteger(v) || v < 0 || v >= classes) {
      const p = at(i, d);
      const allowed = config.contain_dontcare_label
        ? `0..${config.label_nc} (label_nc=${config.label_nc}, ${config.label_nc} is the dontcare class)`
        : `0..${config.label_nc - 1} (label_nc=${config.label_nc}, no dontcare class)`;
      throw new LabelMapError(`label map value ${String(raw)} at (n=${p.n}, y=${p.y}, x=${p.x}) is not a class id in ${allowed}`, {
        map: "label",
        value: String(raw),
        ...p,
      });
    }
    out[i] = v;
  }
  return out;
}

export interface Semantics {
  /** NHWC. */
  shape: [number, number, number, number];
  data: Float32Array;
}

/** Builds the semantics input; `instance` is required unless `no_instance`, and must match the label map's size. */
export function buildSemantics(config: PreprocessConfig, label: IdMap, instance?: IdMap, opts: SemanticsOptions = {}): Semantics {
  const d = dimsOf(label, "label");
  const classes = config.label_nc + (config.contain_dontcare_label ? 1 : 0);
  const c = classes + (config.no_instance ? 0 : 1);
  const ids = validateLabels(config, label, opts);
  const data = new Float32Array(ids.length * c);
  for (let i = 0; i < ids.length; i++) data[i * c + ids[i]] = 1;
  if (!config.no_instance) {
    if (!instance) throw new LabelMapError("this model uses instance edges (no_instance=false): an instance map is required", { map: "instance" });
    const di = dimsOf(instance, "instance");
    if (di.n !== d.n || di.h !== d.h || di.w !== d.w)
      throw new LabelMapError(`instance map is ${di.n}x${di.h}x${di.w} but the label map is ${d.n}x${d.h}x${d.w}`, { map: "instance" });
    for (let i = 0; i < instance.data.length; i++) {
      const v = instance.data[i];
      if (typeof v === "number" && !Number.isFinite(v)) {
        const p = at(i, di);
        throw new LabelMapError(`instance map value ${v} at (n=${p.n}, y=${p.y}, x=${p.x}) is not an id`, { map: "instance", value: String(v), ...p });
      }
    }
    const e = instanceEdges(instance.data, d);
    for (let i = 0; i < e.length; i++) data[i * c + classes] = e[i];
  }
  return { shape: [d.n, d.h, d.w, c], data };
}

/** `buildSemantics` as a float32 NHWC tensor (the caller owns it). */
export function semanticsTensor(config: PreprocessConfig, label: IdMap, instance?: IdMap, opts?: SemanticsOptions): tf.Tensor4D {
  const s = buildSemantics(config, label, instance, opts);
  return tf.tensor4d(s.data, s.shape, "float32");
}
