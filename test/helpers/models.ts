/** Imports fixture checkpoints into a stack's data dir with the real CLI, as a user would. */
import { spawnSync } from "node:child_process";
import path from "node:path";
import sharp from "sharp";
import { official } from "../fixtures/index.ts";
import { repoRoot } from "./stack.ts";

export function ganserve(args: string[], dataDir: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, "packages/functions/bin/ganserve.mjs"), ...args], {
    cwd: repoRoot,
    env: { ...process.env, GANSERVE_DATA_DIR: dataDir, ...env },
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function importModel(file: string, name: string, dataDir: string, extra: string[] = []) {
  const r = ganserve(["import", file, "--name", name, ...extra], dataDir);
  if (r.status !== 0) throw new Error(`import of ${file} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * The official parity checkpoints that the HTTP suites serve beside the demo models, imported with the real
 * CLI: sg-fixture (an unconditional StyleGAN2), cg-fixture (a one-direction CycleGAN), spade-fixture.
 */
export function importFixtureModels(dataDir: string) {
  importModel(path.join(official("stylegan2/z32_w32_res32_skip"), "network-snapshot.pkl"), "sg-fixture", dataDir);
  importModel(path.join(official("cyclegan/resnet_9blocks_instance_ngf8"), "weights.safetensors"), "cg-fixture", dataDir);
  importModel(path.join(official("spade/label6_dontcare_instance_ngf1"), "weights.safetensors"), "spade-fixture", dataDir);
}

/** Raw RGB bytes of an encoded image. */
export async function rgbOf(bytes: Uint8Array | Buffer) {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** How many values differ, and by at most how much. */
export function compareRgb(a: Uint8Array, b: Uint8Array) {
  if (a.length !== b.length) throw new Error(`size mismatch ${a.length} vs ${b.length}`);
  let differing = 0;
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d) differing++;
    if (d > maxDiff) maxDiff = d;
  }
  return { differing, maxDiff, fraction: differing / a.length };
}
