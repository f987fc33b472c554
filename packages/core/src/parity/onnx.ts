/**
 * Parity of the ONNX path against the official fixtures: the same manifest walk and element-wise check as
 * parity/runner.ts (`|out - expected| <= atol + rtol * |expected|`), with adapters that export each fixture's
 * weights (in every format its manifest lists, through the same importers) to ONNX and run them on ONNX Runtime
 * through the serving engine code. Inputs and outputs are converted between the fixtures' NCHW and NHWC.
 */
import fs from "node:fs";
import path from "node:path";
import { loadCheckpoint } from "../checkpoints/index.ts";
import { readSafetensors } from "../checkpoints/safetensors.ts";
import { toFloat32, type RawTensor, type StateDict } from "../checkpoints/tensor.ts";
import { isFamily, type ModelFamily } from "../families.ts";
import { createSession, cycleGan, styleGan2 } from "../inference/engines/onnx.ts";
import type { OrtSession } from "../inference/engines/ort-thread.ts";
import { parseCycleGANConfig } from "../networks/cyclegan/config.ts";
import { buildSemantics, parseSpadeConfig, type IdMap } from "../networks/spade/index.ts";
import { exportCycleGAN } from "../networks/cyclegan/generator.ts";
import { exportSpade } from "../networks/spade/generator.ts";
import { onnxDcganAdapter } from "./dcgan.ts";
import { compare, findManifests } from "./runner.ts";
import { overlayResolved } from "../networks/common/spectral-norm.ts";
import type { CaseRunner, FamilyAdapter, ParityCase, ParityOutput } from "./types.ts";

const FORMATS = ["safetensors", "pth", "pth_legacy", "pkl", "resolved_spectral_norm"] as const;

export function nchwToNhwc(x: Float32Array, [n, c, h, w]: readonly number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) out[(b * h * w + i) * c + k] = x[(b * c + k) * h * w + i];
  return out;
}

export function nhwcToNchw(x: Float32Array, [n, h, w, c]: readonly number[]): ParityOutput {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let i = 0; i < h * w; i++) for (let k = 0; k < c; k++) out[(b * c + k) * h * w + i] = x[(b * h * w + i) * c + k];
  return { shape: [n, c, h, w], data: out };
}

function ioTensor(io: Map<string, RawTensor>, name: unknown, what: string): RawTensor {
  const t = typeof name === "string" ? io.get(name) : undefined;
  if (!t) throw new Error(`${what} ${String(name)} is not in io.safetensors`);
  return t;
}

const isCombined = (sd: StateDict) => [...sd.keys()].some((k) => /^netG_[AB]\./.test(k));

export const onnxCycleganAdapter: FamilyAdapter = {
  family: "cyclegan",
  async load(config, weights): Promise<CaseRunner> {
    const cfg = parseCycleGANConfig(config);
    const combined = isCombined(weights) ? await cycleGan({ config }, weights, 2) : undefined;
    // A bare state dict serves whichever direction a case names, with that direction's channel counts.
    const single = new Map<string, Promise<OrtSession>>();
    return {
      async run(kase, io) {
        const { direction = "AtoB", args } = kase.call as { direction?: "AtoB" | "BtoA"; args?: unknown[] };
        const raw = ioTensor(io, Array.isArray(args) ? args[0] : kase.inputs[0], "cyclegan: input");
        const [n, c, h, w] = raw.shape;
        const x = nchwToNhwc(toFloat32(raw), raw.shape);
        let y: Float32Array;
        if (combined) y = await combined.forward(direction, x, n, h, w);
        else {
          let s = single.get(direction);
          const ch = direction === "AtoB" ? { in: cfg.input_nc, out: cfg.output_nc } : { in: cfg.output_nc, out: cfg.input_nc };
          if (!s) {
            s = createSession(exportCycleGAN(cfg, weights, { channels: ch }), 2);
            single.set(direction, s);
          }
          y = await (await s).run({ x: { data: x, dims: [n, h, w, c] } });
        }
        return new Map([[kase.expected, nhwcToNchw(y, [n, h, w, y.length / (n * h * w)])]]);
      },
      dispose() {
        combined?.dispose();
        for (const s of single.values()) void s.then((x) => x.release());
      },
    };
  },
};

export const onnxSpadeAdapter: FamilyAdapter = {
  family: "spade",
  async load(config, weights): Promise<CaseRunner> {
    const cfg = parseSpadeConfig(config);
    const session = await createSession(exportSpade(cfg, weights), 2);
    const [H, W] = cfg.output_hw;
    const semanticsOf = (kase: ParityCase, io: Map<string, RawTensor>) => {
      const args = Array.isArray(kase.call.args) ? (kase.call.args as unknown[]) : kase.inputs;
      const asMap = (t: RawTensor): IdMap => ({ data: t.data as ArrayLike<number | bigint>, shape: t.shape });
      const label = ioTensor(io, args[0], "spade: label");
      return buildSemantics(cfg, asMap(label), args[1] !== undefined ? asMap(ioTensor(io, args[1], "spade: instance")) : undefined);
    };
    const generate = async (data: Float32Array, n: number) => nhwcToNchw(await session.run({ semantics: { data, dims: [n, H, W, cfg.semantic_nc] } }), [n, H, W, 3]);
    return {
      async run(kase, io) {
        const method = kase.call.method;
        if (method === "Pix2PixModel.preprocess_input") {
          const s = semanticsOf(kase, io);
          return new Map([[kase.expected, nhwcToNchw(s.data, s.shape)]]);
        }
        if (method === "forward") {
          const raw = ioTensor(io, Array.isArray(kase.call.args) ? kase.call.args[0] : kase.inputs[0], "spade: input");
          return new Map([[kase.expected, await generate(nchwToNhwc(toFloat32(raw), raw.shape), raw.shape[0])]]);
        }
        if (method === "preprocess_input+forward") {
          const s = semanticsOf(kase, io);
          const out = new Map([[kase.expected, await generate(s.data, s.shape[0])]]);
          if ((kase.intermediates ?? []).includes("semantics")) out.set("semantics", nhwcToNchw(s.data, s.shape));
          return out;
        }
        throw new Error(`spade: unsupported method ${method}`);
      },
      dispose() {
        void session.release();
      },
    };
  },
};

export const onnxStylegan2Adapter: FamilyAdapter = {
  family: "stylegan2",
  async load(config, weights): Promise<CaseRunner> {
    const e = await styleGan2({ config }, weights, 2);
    const classes = (io: Map<string, RawTensor>, n: number): Float32Array | null => {
      if (e.cDim === 0) return null;
      if (io.has("c")) return toFloat32(io.get("c")!);
      const c = new Float32Array(n * e.cDim);
      for (let i = 0; i < n; i++) c[i * e.cDim + ([1, 3][i % 2] % e.cDim)] = 1;
      return c;
    };
    return {
      async run(kase, io) {
        const call = kase.call;
        const trunc = { truncation_psi: typeof call.truncation_psi === "number" ? call.truncation_psi : 1, truncation_cutoff: typeof call.truncation_cutoff === "number" ? call.truncation_cutoff : undefined };
        const noise = { noise_mode: (call.noise_mode ?? "const") as "const" | "none" | "random", noiseSeed: 0 };
        const map = async (name: string) => {
          const z = ioTensor(io, name, "stylegan2: z");
          const n = z.shape[0];
          return { n, ws: await e.mapping(toFloat32(z), classes(io, n), n, trunc) };
        };
        const img = async (ws: Float32Array, n: number) => nhwcToNchw(await e.synthesis(ws, n, noise), [n, e.resolution, e.resolution, 3]);
        const wsOut = (ws: Float32Array, n: number): ParityOutput => ({ shape: [n, e.numWs, e.wDim], data: ws });
        const out = new Map<string, ParityOutput>();
        const wsNames = (kase.intermediates ?? []).filter((x) => x.startsWith("ws"));
        switch (call.method) {
          case "mapping": {
            const { n, ws } = await map(kase.inputs[0]);
            out.set(kase.expected, wsOut(ws, n));
            break;
          }
          case "forward": {
            const { n, ws } = await map(kase.inputs[0]);
            out.set(kase.expected, await img(ws, n));
            for (const name of wsNames) out.set(name, wsOut(ws, n));
            break;
          }
          case "synthesis": {
            const ws = ioTensor(io, kase.inputs[0], "stylegan2: ws");
            out.set(kase.expected, await img(toFloat32(ws), ws.shape[0]));
            break;
          }
          case "mapping+synthesis": {
            const cut = call.mixing_cutoff;
            if (typeof cut !== "number") throw new Error("stylegan2: mapping+synthesis needs call.mixing_cutoff");
            const a = await map(kase.inputs[0]);
            const b = await map(kase.inputs[1]);
            const per = e.numWs * e.wDim;
            for (let i = 0; i < a.n; i++) a.ws.set(b.ws.subarray(i * per + cut * e.wDim, (i + 1) * per), i * per + cut * e.wDim);
            out.set(kase.expected, await img(a.ws, a.n));
            for (const name of wsNames) out.set(name, wsOut(a.ws, a.n));
            break;
          }
          default:
            throw new Error(`stylegan2: unsupported method ${call.method}`);
        }
        return out;
      },
      dispose: () => e.dispose(),
    };
  },
};

const ADAPTERS: Record<ModelFamily, FamilyAdapter> = { stylegan2: onnxStylegan2Adapter, cyclegan: onnxCycleganAdapter, spade: onnxSpadeAdapter, dcgan: onnxDcganAdapter };

export interface OnnxParityLine {
  ok: boolean;
  label: string;
  maxDiff: number;
  line: string;
}

/** Every case of every manifest under `root`, for every weights format the manifest lists. */
export async function runOnnxParity(root: string): Promise<OnnxParityLine[]> {
  const lines: OnnxParityLine[] = [];
  for (const manifestPath of findManifests(root)) {
    const dir = path.dirname(manifestPath);
    const m = JSON.parse(fs.readFileSync(manifestPath, "utf8")) as { family: string; model: string; config: Record<string, unknown>; weights: Record<string, unknown>; io: { file: string }; cases: ParityCase[] };
    const label = path.relative(root, dir) || m.model;
    const adapter = isFamily(m.family) ? ADAPTERS[m.family] : undefined;
    if (!adapter) throw new Error(`${label}: unknown family ${m.family}`);
    const io = readSafetensors(new Uint8Array(fs.readFileSync(path.join(dir, m.io.file))), m.io.file).tensors;
    const load = async (format: string): Promise<StateDict> => {
      const file = path.join(dir, String(m.weights[format]));
      const bytes = new Uint8Array(fs.readFileSync(file));
      if (format === "resolved_spectral_norm") return overlayResolved(await load("safetensors"), readSafetensors(bytes, file).tensors);
      return (await loadCheckpoint(bytes, path.basename(file))).stateDict;
    };
    for (const format of FORMATS) {
      if (typeof m.weights[format] !== "string") continue;
      const runner = await adapter.load(m.config, await load(format));
      try {
        for (const kase of m.cases) {
          const outputs = await runner.run(kase, io);
          let ok = true;
          let worst = 0;
          const parts: string[] = [];
          for (const name of [kase.expected, ...(kase.intermediates ?? []).filter((n) => outputs.has(n))]) {
            const got = outputs.get(name);
            const want = io.get(name);
            if (!got || !want) {
              ok = false;
              parts.push(`${name}: missing`);
              continue;
            }
            const c = compare(got, { shape: want.shape, data: toFloat32(want) }, kase.atol, kase.rtol);
            ok &&= c.ok;
            worst = Math.max(worst, c.maxDiff);
            parts.push(`${name} max|diff|=${c.maxDiff.toExponential(2)}${c.note ? ` ${c.note}` : ""}`);
          }
          const id = `${label}/${kase.name} [${format}]`;
          lines.push({ ok, label: id, maxDiff: worst, line: `${ok ? "PASS" : "FAIL"} ${id} ${parts.join(", ")} (atol ${kase.atol})` });
        }
      } finally {
        runner.dispose();
      }
    }
  }
  return lines;
}
