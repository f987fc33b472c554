/**
 * A fine-tune's training data: the dataset's accepted files, fetched and decoded into the shape the family's
 * trainer takes. Memory is bounded by count × training size, not by the sources' sizes: each image is
 * downscaled as it decodes (sharp, after a header check against the pixel limit) to the size its trainer
 * brings it to anyway (training/index.ts trainingImageSize), so a dataset of 4096² PNGs costs what a dataset
 * of training-sized ones does. Images no larger than that size reach the trainer untouched.
 */
import type { DatasetService } from "../datasets/service.ts";
import { decodeRgb, readImageSize } from "../images/codec.ts";
import { decodeLabelPng } from "../images/label-png.ts";
import { mapLimited } from "../limits/map-limited.ts";
import type { ModelJson } from "../models/model-json.ts";
import type { Storage } from "../storage/storage.ts";
import { resizeLabelsNearest } from "../training/spade/data.ts";
import type { TrainImage, TrainingData } from "../training/types.ts";

/** Dataset files fetched from the store and decoded at once while a fine-tune loads its data. */
const LOAD_CONCURRENCY = 16;
/** What the dataset inspector lets in (DEFAULT_DATASET_LIMITS.maxImageSide squared). */
const MAX_PIXELS = 4096 * 4096;

export interface TrainingDataDeps {
  datasets: Pick<DatasetService, "index" | "fileKey">;
  storage: Pick<Storage, "get">;
}

/**
 * Loads the dataset's accepted files for `family`'s trainer. `size` is the trainer's image size: larger
 * images are decoded straight down to it (StyleGAN2 and CycleGAN: covering it with the aspect kept, so the
 * trainer's own centre crop or resize still applies; SPADE: exactly it, image and label map alike, the label
 * map with the trainer's own nearest rule, so the trainer's resize is then the identity).
 */
export async function loadTrainingData(
  family: ModelJson["family"],
  datasetId: string,
  deps: TrainingDataDeps,
  size?: { width: number; height: number },
  /** StyleGAN2: the base's class index for a class folder name (jobs/dataset-fit.ts classIndexOf); default: its sorted position. */
  classOf?: (folder: string) => number,
): Promise<TrainingData> {
  const index = await deps.datasets.index(datasetId);
  const fetchBytes = async (key: string) => {
    const bytes = await deps.storage.get(deps.datasets.fileKey(datasetId, key));
    if (!bytes) throw new Error(`dataset file ${key} is missing`);
    return bytes;
  };
  const image = async (key: string): Promise<TrainImage> => decodeRgb(await fetchBytes(key), { maxPixels: MAX_PIXELS, field: key, shrinkTo: size });
  const images = (entries: { key: string }[]) => mapLimited(entries, LOAD_CONCURRENCY, (e) => image(e.key));
  const byRole = (pred: (role: string) => boolean) => index.entries.filter((e) => pred(e.role));
  if (family === "stylegan2") {
    const entries = byRole((r) => r === "images" || r.startsWith("images/"));
    const classes = index.classes;
    return {
      family,
      images: await images(entries),
      // images/7/ trains class 7 of the base (or the class it names), not the 1st class because it sorts first.
      labels: classes?.length ? entries.map((e) => (classOf ?? ((f: string) => classes.indexOf(f)))(e.role.slice("images/".length))) : undefined,
      classes,
    };
  }
  if (family === "dcgan") return { family, images: await images(byRole((r) => r === "images" || r.startsWith("images/"))) };
  if (family === "cyclegan") {
    return {
      family,
      A: await images(byRole((r) => r === "trainA")),
      B: await images(byRole((r) => r === "trainB")),
    };
  }
  const stem = (p: string) => p.replace(/^.*\//, "").replace(/\.[^.]+$/, "");
  const labels = new Map(byRole((r) => r === "labels").map((e) => [stem(e.path), e]));
  const pairs = byRole((r) => r === "images").filter((e) => labels.has(stem(e.path)));
  const loaded = await mapLimited(pairs, LOAD_CONCURRENCY, async (e) => {
    const [imageBytes, labelBytes] = await Promise.all([fetchBytes(e.key), fetchBytes(labels.get(stem(e.path))!.key)]);
    // Synchronous, so one full-size label map at a time; it is brought to the training size before the next.
    const label = decodeLabelPng(labelBytes, { maxPixels: MAX_PIXELS, field: labels.get(stem(e.path))!.path });
    const source = await readImageSize(imageBytes, { maxPixels: MAX_PIXELS, field: e.key });
    // A pair whose sizes differ stays as it is, for the trainer to report.
    const same = source.width === label.width && source.height === label.height;
    if (!size || !same || label.width <= size.width || label.height <= size.height)
      return { img: await decodeRgb(imageBytes, { maxPixels: MAX_PIXELS, field: e.key }), label: label.data };
    const img = await decodeRgb(imageBytes, { maxPixels: MAX_PIXELS, field: e.key, shrinkTo: { ...size, fit: "fill" } });
    return { img, label: resizeLabelsNearest(label.data, label.height, label.width, size.height, size.width) };
  });
  return { family, images: loaded.map((p) => p.img), labels: loaded.map((p) => p.label) };
}
