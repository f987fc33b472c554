/**
 * Dataset layouts: which folders each model family trains from, finding the layout (and the wrapper folder
 * a zipped directory adds) from the candidates' paths, and giving each candidate its role. Pure path logic;
 * no entry is read here.
 */
import type { ModelFamily } from "../families.ts";
import type { Candidate, Reject } from "./central-directory.ts";
import { DatasetError } from "./errors.ts";
import { stemOf } from "./paths.ts";

/** A dataset layout is named after the family it trains (the API's DatasetLayout adds "auto"). */
export type DatasetLayout = ModelFamily;

export const REQUIRED: Record<DatasetLayout, string[]> = {
  stylegan2: ["images"],
  cyclegan: ["trainA", "trainB"],
  spade: ["images", "labels"],
  dcgan: ["images"],
};
const EXPECTED: Record<DatasetLayout, string> = {
  stylegan2: "images/ (or images/<class>/ for a class-conditional dataset)",
  cyclegan: "trainA/ and trainB/ (testA/ and testB/ optional)",
  spade: "images/ and labels/ with one label map per image, matched by file name",
  dcgan: "images/ (images/<class>/ folders are pooled: a DCGAN trains unconditionally)",
};
const CYCLEGAN_ROLES = new Set(["trainA", "trainB", "testA", "testB"]);

function topFolders(candidates: readonly Candidate[], root: string): Set<string> {
  const out = new Set<string>();
  for (const c of candidates) {
    if (!c.path.startsWith(root)) continue;
    const rest = c.path.slice(root.length);
    const slash = rest.indexOf("/");
    if (slash > 0) out.add(rest.slice(0, slash));
  }
  return out;
}

function detect(folders: Set<string>): DatasetLayout | null {
  if (folders.has("trainA") && folders.has("trainB")) return "cyclegan";
  if (folders.has("images") && folders.has("labels")) return "spade";
  if (folders.has("images")) return "stylegan2";
  return null;
}

/** Finds the layout and the folder it sits in: the archive root, or the one folder a zipped directory adds. */
export function resolveLayout(candidates: readonly Candidate[], wanted: DatasetLayout | "auto"): { layout: DatasetLayout; root: string } {
  const fits = (folders: Set<string>): DatasetLayout | null =>
    wanted === "auto" ? detect(folders) : REQUIRED[wanted].every((f) => folders.has(f)) ? wanted : null;
  const roots = [""];
  const first = candidates[0]?.path.split("/")[0];
  if (first !== undefined && candidates.every((c) => c.path.startsWith(`${first}/`))) roots.push(`${first}/`);
  for (const root of roots) {
    const layout = fits(topFolders(candidates, root));
    if (layout !== null) return { layout, root };
  }
  if (candidates.length === 0) throw new DatasetError("no_usable_images", "the archive contains no acceptable image files");
  const list = (root: string) => [...topFolders(candidates, root)].sort().map((f) => `${root}${f}/`);
  const found = [...list(""), ...(roots.length > 1 ? list(roots[1]) : [])];
  const where = found.length > 0 ? `found ${found.join(", ")}` : "found images but no folders";
  const expected =
    wanted === "auto"
      ? `one of: ${Object.entries(EXPECTED).map(([l, e]) => `${l}: ${e}`).join("; ")}`
      : `${wanted} datasets need ${EXPECTED[wanted]}`;
  throw new DatasetError("wrong_layout", `archive does not match a dataset layout (${where}); expected ${expected}`);
}

/** Gives every candidate its role or rejects it; returns the units of pass-2 work (pairs for SPADE). */
export function assignRoles(
  candidates: Candidate[],
  layout: DatasetLayout,
  root: string,
  reject: Reject,
): Candidate[][] {
  const outside = (c: Candidate) => reject(c.index, c.path, "outside_layout", `not where the ${layout} layout keeps images; expected ${EXPECTED[layout]}`);
  const placed: Candidate[] = [];
  for (const c of candidates) {
    if (!c.path.startsWith(root)) {
      outside(c);
      continue;
    }
    c.rel = c.path.slice(root.length);
    const segs = c.rel.split("/");
    if ((layout === "stylegan2" || layout === "dcgan") && segs[0] === "images" && (segs.length === 2 || segs.length === 3)) c.role = segs.slice(0, -1).join("/");
    else if (layout === "cyclegan" && segs.length === 2 && CYCLEGAN_ROLES.has(segs[0])) c.role = segs[0];
    else if (layout === "spade" && segs.length === 2 && (segs[0] === "images" || segs[0] === "labels")) c.role = segs[0];
    else {
      outside(c);
      continue;
    }
    placed.push(c);
  }

  if (layout === "stylegan2") {
    // Conditional training needs a class for every image; a loose file would silently get none.
    if (placed.some((c) => c.role !== "images"))
      return placed
        .filter((c) => {
          if (c.role !== "images") return true;
          reject(c.index, c.path, "outside_layout", "dataset has images/<class>/ folders, so every image must be in one");
          return false;
        })
        .map((c) => [c]);
    return placed.map((c) => [c]);
  }
  if (layout === "cyclegan" || layout === "dcgan") return placed.map((c) => [c]);

  const images = new Map<string, Candidate>();
  const labels = new Map<string, Candidate>();
  for (const c of placed) {
    if (c.role === "labels" && c.format !== "png") {
      reject(c.index, c.path, "label_not_indexed", "label maps must be PNG files of class indices");
      continue;
    }
    const byStem = c.role === "labels" ? labels : images;
    const stem = stemOf(c.rel);
    if (byStem.has(stem)) {
      reject(c.index, c.path, "duplicate_path", `another ${c.role === "labels" ? "label map" : "image"} has the stem "${stem}"`);
      continue;
    }
    byStem.set(stem, c);
  }
  const pairs: Candidate[][] = [];
  for (const [stem, image] of images) {
    const label = labels.get(stem);
    if (label === undefined) reject(image.index, image.path, "unmatched_stem", `no labels/${stem}.png for this image`);
    else pairs.push([image, label]);
  }
  for (const [stem, label] of labels)
    if (!images.has(stem)) reject(label.index, label.path, "unmatched_stem", `no image named images/${stem}.* for this label map`);
  return pairs.sort((a, b) => a[0].index - b[0].index);
}
