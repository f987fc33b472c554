/**
 * Whether a finalized dataset fits the base model a fine-tune starts from, checked when the job is created
 * so a mismatch is a 422 at once instead of a failed (or silently wrong) job later. What cannot be trained
 * is refused with `unprocessable` and `details.reason` saying which; what the trainer adapts is allowed, and
 * each adaptation is returned as a sentence for the job's first event.
 *
 *   layout_mismatch       the dataset's layout is another family's
 *   unknown_classes       StyleGAN2 class folders that name no class of a class-conditional base
 *   labels_out_of_range   SPADE label maps with class ids the base does not have
 *
 * Adapted (noted): an unlabelled dataset on a class-conditional base (every class learns from all images),
 * class folders on an unconditional base (ignored), images of another size than the base's (resized by the
 * trainer; smaller ones are upscaled, which blurs).
 */
import type { Dataset } from "../api/finetune.ts";
import { ApiError } from "../errors.ts";
import type { ModelJson } from "../models/model-json.ts";
import { parseSpadeConfig } from "../networks/spade/config.ts";

export type FitReason = "layout_mismatch" | "unknown_classes" | "labels_out_of_range";

const refuse = (reason: FitReason, message: string, extra: Record<string, unknown> = {}): never => {
  throw new ApiError("unprocessable", message, { reason, ...extra });
};

/**
 * The class a StyleGAN2 dataset folder `images/<folder>/` trains: its number (0 … c_dim-1), alone or before a
 * `-` or `_` and a name for people (`0-t-shirt-top`, the demo dataset's folders), or the index of the base's class
 * name it spells (case-insensitive); -1 when it names none.
 */
export function classIndexOf(base: Pick<ModelJson, "config" | "class_names">, folder: string): number {
  const cDim = Number(base.config.c_dim ?? 0);
  const numbered = /^(\d+)(?:[-_].*)?$/.exec(folder);
  if (numbered) return Number(numbered[1]) < cDim ? Number(numbered[1]) : -1;
  const names = (base.class_names ?? []).map((n) => n.toLowerCase());
  return names.indexOf(folder.toLowerCase());
}

/** The side length the base trains and generates at, when its family has one fixed size. */
function baseSize(base: ModelJson): number | undefined {
  const c = base.config;
  if (base.family === "stylegan2") return Number(c.img_resolution) || undefined;
  if (base.family === "cyclegan") return Number(c.crop_size ?? c.load_size) || undefined;
  if (base.family === "dcgan") return Number(c.img_size) || undefined;
  return parseSpadeConfig(c).output_hw[1];
}

/** Throws 422 when the dataset cannot train the base; returns what will be adapted, one sentence each. */
export function checkDatasetFit(base: ModelJson, dataset: Dataset): string[] {
  const notes: string[] = [];
  // A dataset layout is named after the family it trains (api/finetune.ts DatasetLayout).
  // A DCGAN trains on images/ alone, which is also what an auto-detected (stylegan2) images/ dataset holds.
  const sameImages = base.family === "dcgan" && dataset.layout === "stylegan2";
  if (dataset.layout !== base.family && !sameImages)
    refuse("layout_mismatch", `dataset '${dataset.id}' has the ${dataset.layout} layout; a ${base.family} model needs ${base.family}`, { layout: dataset.layout, family: base.family });
  const stats = dataset.stats;
  if (base.family === "stylegan2") {
    const cDim = Number(base.config.c_dim ?? 0);
    const classes = stats?.classes ?? [];
    if (cDim > 0 && classes.length === 0)
      notes.push(
        `model '${base.name}' is class-conditional (${cDim} classes) and the dataset has no class folders: every class learns from all images. To fine-tune chosen classes, put images under images/<class>/ (a number 0-${cDim - 1}${base.class_names ? " or a class name" : ""}).`,
      );
    if (cDim > 0 && classes.length > 0) {
      const unknown = classes.filter((f) => classIndexOf(base, f) < 0);
      if (unknown.length)
        refuse(
          "unknown_classes",
          `dataset class folders ${unknown.map((f) => `images/${f}/`).join(", ")} name no class of model '${base.name}': use 0-${cDim - 1} (optionally followed by -name)${base.class_names ? ` or one of ${base.class_names.join(", ")}` : ""}`,
          { folders: unknown },
        );
    }
    if (cDim === 0 && classes.length > 0) notes.push(`model '${base.name}' has no classes: the dataset's class folders are ignored and all images train it.`);
  }
  if (base.family === "spade" && stats?.max_label_value !== undefined) {
    const c = base.config;
    const maxId = Number(c.label_nc) - (c.contain_dontcare_label ? 0 : 1);
    if (stats.max_label_value > maxId)
      refuse("labels_out_of_range", `dataset labels go up to ${stats.max_label_value}; model '${base.name}' has classes 0..${maxId}`, { max_label_value: stats.max_label_value, max_class: maxId });
  }
  const size = baseSize(base);
  const sides = Object.keys(stats?.resolutions ?? {}).map((r) => r.split("x").map(Number));
  if (size && sides.some(([w, h]) => Math.min(w, h) < size))
    notes.push(`some images are smaller than the ${size}×${size} model '${base.name}' trains at: they are upscaled, which blurs what it learns.`);
  else if (size && sides.some(([w, h]) => w !== size || h !== size)) notes.push(`images are resized to the ${size}×${size} model '${base.name}' trains at.`);
  return notes;
}
