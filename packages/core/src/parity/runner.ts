/**
 * `npm run parity -- <dir>`: finds every fixture `manifest.json` under a directory, loads the weights in
 * every format the manifest lists through the same importers users get, runs each case on the active backend
 * and checks `|out - expected| <= atol + rtol * |expected|` element-wise, for the expected output and every
 * intermediate the adapter returns. Nothing here knows a particular fixture: only the manifest schema.
 */
import fs from "node:fs";
import path from "node:path";
import { loadCheckpoint } from "../checkpoints/index.ts";
import { readSafetensors } from "../checkpoints/safetensors.ts";
import { toFloat32, type StateDict } from "../checkpoints/tensor.ts";
import { isFamily, type ModelFamily } from "../families.ts";
import { cycleganAdapter } from "./cyclegan.ts";
import { dcganAdapter } from "./dcgan.ts";
import { overlayResolved } from "../networks/common/spectral-norm.ts";
import { spadeAdapter } from "./spade.ts";
import { stylegan2Adapter } from "./stylegan2.ts";
import type { CaseRunner, FamilyAdapter, ParityCase, ParityOutput } from "./types.ts";

const ADAPTERS: Record<ModelFamily, FamilyAdapter> = { stylegan2: stylegan2Adapter, cyclegan: cycleganAdapter, spade: spadeAdapter, dcgan: dcganAdapter };
/** Manifest `weights` keys that name a weights file, in the order they are tried. */
const FORMATS = ["safetensors", "pth", "pth_legacy", "pkl", "resolved_spectral_norm"] as const;

interface Manifest {
  family: string;
  model: string;
  config: Record<string, unknown>;
  weights: Record<string, unknown>;
  io: { file: string };
  cases: ParityCase[];
}

export interface ParityResult {
  passed: number;
  failed: number;
  lines: string[];
}

export function findManifests(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findManifests(p));
    else if (e.name === "manifest.json") out.push(p);
  }
  return out.sort();
}

export function compare(out: ParityOutput, expected: { shape: number[]; data: Float32Array }, atol: number, rtol: number) {
  if (out.shape.join("x") !== expected.shape.join("x"))
    return { ok: false, maxDiff: Infinity, note: `shape [${out.shape}] != expected [${expected.shape}]` };
  let maxDiff = 0;
  let ok = true;
  for (let i = 0; i < expected.data.length; i++) {
    const d = Math.abs(out.data[i] - expected.data[i]);
    if (!(d <= atol + rtol * Math.abs(expected.data[i]))) ok = false;
    if (!(d <= maxDiff)) maxDiff = d;
  }
  return { ok, maxDiff, note: "" };
}

async function loadWeights(dir: string, m: Manifest, format: (typeof FORMATS)[number], base: () => Promise<StateDict>): Promise<StateDict> {
  const file = path.join(dir, String(m.weights[format]));
  const bytes = new Uint8Array(fs.readFileSync(file));
  if (format === "resolved_spectral_norm") return overlayResolved(await base(), readSafetensors(bytes, file).tensors);
  return (await loadCheckpoint(bytes, path.basename(file))).stateDict;
}

export async function runParity(root: string, print: (line: string) => void = console.log): Promise<ParityResult> {
  const result: ParityResult = { passed: 0, failed: 0, lines: [] };
  const emit = (ok: boolean, line: string) => {
    ok ? result.passed++ : result.failed++;
    result.lines.push(line);
    print(line);
  };
  for (const manifestPath of findManifests(root)) {
    const dir = path.dirname(manifestPath);
    const m = JSON.parse(fs.readFileSync(manifestPath, "utf8")) as Manifest;
    const label = path.relative(root, dir) || m.model;
    const adapter = isFamily(m.family) ? ADAPTERS[m.family] : undefined;
    if (!adapter) {
      emit(false, `FAIL ${label}: unknown family '${m.family}'`);
      continue;
    }
    const io = readSafetensors(new Uint8Array(fs.readFileSync(path.join(dir, m.io.file))), m.io.file).tensors;
    const base = () => loadWeights(dir, m, "safetensors", async () => new Map());
    for (const format of FORMATS) {
      if (typeof m.weights[format] !== "string") continue;
      let runner: CaseRunner;
      try {
        runner = await adapter.load(m.config, await loadWeights(dir, m, format, base));
      } catch (e) {
        for (const k of m.cases) emit(false, `FAIL ${label}/${k.name} [${format}] load: ${(e as Error).message}`);
        continue;
      }
      try {
        for (const kase of m.cases) {
          const start = performance.now();
          try {
            const outputs = await runner.run(kase, io);
            const ms = (performance.now() - start).toFixed(1);
            const checks = [kase.expected, ...(kase.intermediates ?? [])].filter((n) => n === kase.expected || outputs.has(n));
            let ok = true;
            const parts: string[] = [];
            for (const name of checks) {
              const got = outputs.get(name);
              const want = io.get(name);
              if (!got || !want) {
                ok = false;
                parts.push(`${name}: ${got ? "not in io" : "not produced"}`);
                continue;
              }
              const c = compare(got, { shape: want.shape, data: toFloat32(want) }, kase.atol, kase.rtol);
              ok &&= c.ok;
              parts.push(`${name} max|diff|=${c.maxDiff.toExponential(2)}${c.note ? ` ${c.note}` : ""}`);
            }
            emit(ok, `${ok ? "PASS" : "FAIL"} ${label}/${kase.name} [${format}] ${parts.join(", ")} (atol ${kase.atol}, ${ms} ms)`);
          } catch (e) {
            emit(false, `FAIL ${label}/${kase.name} [${format}] error: ${(e as Error).message}`);
          }
        }
      } finally {
        runner.dispose();
      }
    }
  }
  return result;
}
