/** A fine-tune's dataset against its base, on the shipped demo records: refused with a reason, or adapted with a note. */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Dataset } from "../src/api/finetune.ts";
import { ApiError } from "../src/errors.ts";
import { checkDatasetFit, classIndexOf } from "../src/jobs/dataset-fit.ts";
import { ModelJson } from "../src/models/model-json.ts";

const demo = (name: string) => ModelJson.parse(JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, "../../../models", name, "model.json"), "utf8")));
const fashion = demo("fashion-stylegan2");
const scenes = demo("scenes-spade");
const emoji = demo("emoji-cyclegan");

const dataset = (layout: Dataset["layout"], stats: Partial<NonNullable<Dataset["stats"]>>): Dataset =>
  ({
    id: "ds_0123456789abcdef0123",
    layout,
    status: "ready",
    stats: { images: 8, counts_by_folder: {}, total_bytes: 1000, resolutions: { "32x32": 8 }, ...stats },
  }) as Dataset;

/** The reason a refusal gives, or the notes of an accepted dataset. */
function fit(base: ModelJson, ds: Dataset): { reason: string } | { notes: string[] } {
  try {
    return { notes: checkDatasetFit(base, ds) };
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).status).toBe(422);
    return { reason: ((e as ApiError).details as { reason: string }).reason };
  }
}

describe("dataset fit", () => {
  it("maps class folders to the base's classes by number or by name, never by sort position", () => {
    expect(classIndexOf(fashion, "7")).toBe(7);
    expect(classIndexOf(fashion, "sneaker")).toBe(7);
    expect(classIndexOf(fashion, "Ankle boot")).toBe(9);
    expect(classIndexOf(fashion, "10")).toBe(-1);
    // the demo dataset's folders: the number, then a name for people
    expect(classIndexOf(fashion, "0-t-shirt-top")).toBe(0);
    expect(classIndexOf(fashion, "9_ankle-boot")).toBe(9);
    expect(classIndexOf(fashion, "10-extra")).toBe(-1);
    expect(classIndexOf(fashion, "7eleven")).toBe(-1);
    expect(classIndexOf(fashion, "shoes")).toBe(-1);
  });

  it("refuses class folders a class-conditional base does not have, naming them", () => {
    expect(fit(fashion, dataset("stylegan2", { classes: ["7", "shoes"] }))).toEqual({ reason: "unknown_classes" });
    expect(fit(fashion, dataset("stylegan2", { classes: ["7", "Bag"] }))).toEqual({ notes: [] });
  });

  it("accepts an unlabelled dataset on a class-conditional base and says how it trains", () => {
    const r = fit(fashion, dataset("stylegan2", {}));
    expect(r).toEqual({ notes: [expect.stringMatching(/class-conditional \(10 classes\).*no class folders.*images\/<class>\//)] });
  });

  it("refuses another family's layout and SPADE label ids the base does not have", () => {
    expect(fit(fashion, dataset("cyclegan", {}))).toEqual({ reason: "layout_mismatch" });
    expect(fit(scenes, dataset("spade", { max_label_value: 8, resolutions: { "64x64": 8 } }))).toEqual({ reason: "labels_out_of_range" });
    expect(fit(scenes, dataset("spade", { max_label_value: 7, resolutions: { "64x64": 8 } }))).toEqual({ notes: [] });
  });

  it("notes images smaller or of another size than the base trains at", () => {
    expect(fit(emoji, dataset("cyclegan", { resolutions: { "16x16": 3, "32x32": 5 } }))).toEqual({ notes: [expect.stringMatching(/smaller than the 32×32.*upscaled/)] });
    expect(fit(emoji, dataset("cyclegan", { resolutions: { "64x48": 8 } }))).toEqual({ notes: [expect.stringMatching(/resized to the 32×32/)] });
  });
});
