/**
 * Where the demo training data comes from. The emoji images are npm packages and Fashion-MNIST is a Debian
 * package; neither is a project dependency (they are only needed to retrain the demo models), so they are
 * resolved from a directory the caller names (npm) or from dpkg's own file list (Debian), never from the
 * workspace's node_modules.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export class DemoDataMissing extends Error {
  override name = "DemoDataMissing";
  constructor(
    message: string,
    /** what would install it */
    readonly install: string,
  ) {
    super(message);
  }
}

/** Root folder of an npm package installed under `fromDir` (e.g. by `npm install --no-save --prefix fromDir`). */
export function resolveNpmPackage(name: string, fromDir: string): string {
  const req = createRequire(path.join(path.resolve(fromDir), "noop.js"));
  try {
    return path.dirname(req.resolve(`${name}/package.json`));
  } catch {
    throw new DemoDataMissing(`npm package ${name} is not installed under ${fromDir}`, `npm install --no-save --prefix ${fromDir} ${name}`);
  }
}

export const FASHION_MNIST_DEB = "dataset-fashion-mnist";

export interface FashionMnistFiles {
  trainImages: string;
  trainLabels: string;
  testImages: string;
  testLabels: string;
}

const FASHION_NAMES: Record<keyof FashionMnistFiles, RegExp> = {
  trainImages: /(^|\/)train-images-idx3-ubyte(\.gz)?$/,
  trainLabels: /(^|\/)train-labels-idx1-ubyte(\.gz)?$/,
  testImages: /(^|\/)t10k-images-idx3-ubyte(\.gz)?$/,
  testLabels: /(^|\/)t10k-labels-idx1-ubyte(\.gz)?$/,
};

/** Picks the four IDX files out of a list of paths (dpkg -L output or a directory listing). */
export function pickFashionFiles(paths: readonly string[], where: string): FashionMnistFiles {
  const out: Partial<FashionMnistFiles> = {};
  for (const key of Object.keys(FASHION_NAMES) as (keyof FashionMnistFiles)[]) {
    const found = paths.find((p) => FASHION_NAMES[key].test(p));
    if (!found) throw new DemoDataMissing(`no ${FASHION_NAMES[key].source} in ${where}`, `apt-get install -y ${FASHION_MNIST_DEB}`);
    out[key] = found;
  }
  return out as FashionMnistFiles;
}

/** The Fashion-MNIST files from a directory, or from the installed Debian package when no directory is given. */
export function findFashionMnist(dir?: string): FashionMnistFiles {
  if (dir) return pickFashionFiles(fs.readdirSync(dir).map((f) => path.join(dir, f)), dir);
  let listing: string;
  try {
    listing = execFileSync("dpkg", ["-L", FASHION_MNIST_DEB], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    throw new DemoDataMissing(`the Debian package ${FASHION_MNIST_DEB} is not installed`, `apt-get install -y ${FASHION_MNIST_DEB}`);
  }
  return pickFashionFiles(listing.split("\n").map((l) => l.trim()).filter(Boolean), `dpkg -L ${FASHION_MNIST_DEB}`);
}
