/**
 * Admission by cost: how large a request each family serves, decided from the request's header-sized facts
 * before anything is decoded, and how much of a forward pass's memory budget one item takes.
 *
 * One budget, `passBytes` (GANSERVE_MAX_PASS_BYTES), bounds the estimated memory of one forward pass; the
 * batcher's slots are shares of it, so a batch of items can never together cost more than one pass may:
 * - cyclegan: fully convolutional, so the network runs at the size it is given (`preprocess=none` runs it at the
 *   upload's size, `load_size` at that side) and its memory is the network input's pixels ×
 *   `servingBytesPerPixel` (networks/cyclegan/config.ts). Largest input: `passBytes / bytesPerPixel` network
 *   pixels; larger → 413 `image_too_large` with the limit in `details`. An item takes
 *   `ceil(maxBatch × cost / passBytes)` batch slots, so big images run alone and fill the queue sooner.
 * - spade: the generator runs at its own size (crop_size) whatever the label map's size; the label map is
 *   bounded by GANSERVE_MAX_PIXELS, checked in its IHDR before anything is inflated, and costs about
 *   8 bytes per pixel outside the network (class ids, the output resized back to it). One slot per item.
 * - stylegan2: runs at img_resolution; a request is at most MAX_SEEDS images, one slot per image.
 */
import { ApiError } from "../errors.ts";
import { parseCycleGANConfig, servingBytesPerPixel } from "../networks/cyclegan/config.ts";

export const DEFAULT_PASS_BYTES = 512 * 1024 * 1024;

export interface PassBudget {
  /** estimated memory one forward pass may use */
  passBytes: number;
  /** batch slots in one pass (GANSERVE_MAX_BATCH) */
  maxBatch: number;
}

/** The largest network input a CycleGAN generator is given under this budget, in pixels (and as a square side). */
export function cycleGanLimits(config: Record<string, unknown>, budget: PassBudget, sizeMultiple = 4) {
  const bytesPerPixel = servingBytesPerPixel(parseCycleGANConfig(config));
  const maxNetPixels = Math.floor(budget.passBytes / bytesPerPixel);
  const side = Math.floor(Math.sqrt(maxNetPixels) / sizeMultiple) * sizeMultiple;
  return { bytesPerPixel, maxNetPixels, maxNetSide: side };
}

/**
 * Refuses a CycleGAN network input over the budget (413, before the upload is decoded) and returns the batch
 * slots the item takes.
 */
export function admitCycleGan(config: Record<string, unknown>, budget: PassBudget, net: { w: number; h: number }, sizeMultiple: number, upload: { width: number; height: number; preprocess: string }): number {
  const { bytesPerPixel, maxNetPixels, maxNetSide } = cycleGanLimits(config, budget, sizeMultiple);
  const pixels = net.w * net.h;
  if (pixels > maxNetPixels)
    throw new ApiError(
      "image_too_large",
      `image: preprocess=${upload.preprocess} would run the network at ${net.w}×${net.h} (${pixels} pixels); this model serves at most ${maxNetPixels} network pixels (about ${maxNetSide}×${maxNetSide}); use preprocess=resize or a smaller load_size`,
      {
        limit: "network_pixels",
        width: upload.width,
        height: upload.height,
        net_width: net.w,
        net_height: net.h,
        max_net_pixels: maxNetPixels,
        max_net_side: maxNetSide,
        bytes_per_pixel: bytesPerPixel,
        max_pass_bytes: budget.passBytes,
      },
    );
  return slotsFor(pixels * bytesPerPixel, budget);
}

/** Batch slots an item of this estimated cost takes: its share of the pass budget, at least one. */
export const slotsFor = (bytes: number, budget: PassBudget) => Math.min(budget.maxBatch, Math.max(1, Math.ceil((budget.maxBatch * bytes) / budget.passBytes)));
