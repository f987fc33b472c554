/**
 * Gets the demo training data onto this machine when it is missing: the emoji npm packages into a
 * scratch prefix (never the workspace: they are not project dependencies) and Fashion-MNIST from Debian
 * (only as root; otherwise the message says what to run).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { EMOJI_PACKAGES } from "../packages/core/src/demo/emoji.ts";
import { DemoDataMissing, FASHION_MNIST_DEB, findFashionMnist, resolveNpmPackage, type FashionMnistFiles } from "../packages/core/src/demo/sources.ts";

/** Pinned: the split and the shipped model's provenance refer to these exact images. */
export const EMOJI_VERSION = "16.0.0";

export function ensureEmojiPackages(dir = path.join(os.tmpdir(), "ganserve-demo-data")): string {
  fs.mkdirSync(dir, { recursive: true });
  const missing = Object.values(EMOJI_PACKAGES).filter((name) => {
    try {
      resolveNpmPackage(name, dir);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) {
    console.log(`installing ${missing.join(", ")} into ${dir} (not a project dependency)`);
    execFileSync("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", dir, ...missing.map((m) => `${m}@${EMOJI_VERSION}`)], { stdio: "inherit" });
  }
  return dir;
}

export function ensureFashionMnist(): FashionMnistFiles {
  try {
    return findFashionMnist();
  } catch (e) {
    if (!(e instanceof DemoDataMissing)) throw e;
    if (process.getuid?.() !== 0)
      throw new Error(`${e.message}. Install it with: sudo apt-get install -y ${FASHION_MNIST_DEB} (Debian/Ubuntu), or pass --fashion-dir <folder with the four idx .gz files>`);
    console.log(`installing the Debian package ${FASHION_MNIST_DEB}`);
    execFileSync("apt-get", ["install", "-y", FASHION_MNIST_DEB], { stdio: "inherit" });
    return findFashionMnist();
  }
}
