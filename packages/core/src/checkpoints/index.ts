/**
 * One entry point for every checkpoint format we import. The format is decided from the bytes, never from the
 * file name, and every failure surfaces as a CheckpointError naming the file.
 */
import { readSafetensors } from "./safetensors.ts";
import { CheckpointError, type StateDict } from "./tensor.ts";
import { readNetworkPickle } from "./network-pickle.ts";
import type { CheckpointOptions } from "./options.ts";
import { LEGACY_PREFIX, readTorchLegacy } from "./torch-legacy.ts";
import { readTorchZip } from "./torch-zip.ts";

export type CheckpointFormat = "safetensors" | "torch-zip" | "torch-legacy" | "network-pickle";

export interface LoadedCheckpoint {
  format: CheckpointFormat;
  stateDict: StateDict;
  /** safetensors `__metadata__`. */
  metadata?: Record<string, string>;
  /** Network pickles: the network's constructor kwargs. */
  initKwargs?: Record<string, unknown>;
  /** torch.save files: keys leading to the state dict that was used ([] = the root), and the alternatives. */
  stateDictPath?: string[];
  stateDictCandidates?: string[][];
}

export function detectFormat(bytes: Uint8Array): CheckpointFormat | undefined {
  if (looksLikeSafetensors(bytes)) return "safetensors";
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5) && (bytes[3] === 4 || bytes[3] === 6)) return "torch-zip";
  if (startsWithLegacyMagic(bytes)) return "torch-legacy";
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return "network-pickle";
  return undefined;
}

/** The LONG1 magic number within the first pickle; usually at byte 2, after a FRAME when saved with protocol >= 4. */
function startsWithLegacyMagic(b: Uint8Array): boolean {
  const magic = LEGACY_PREFIX.subarray(2);
  const head = b.subarray(0, 32);
  for (let i = 0; i + magic.length <= head.length; i++) if (magic.every((x, j) => head[i + j] === x)) return b[0] === 0x80;
  return false;
}

/** 8-byte little-endian header length that fits the file, then a JSON object. */
function looksLikeSafetensors(b: Uint8Array): boolean {
  if (b.length < 10 || b[8] !== 0x7b) return false;
  const n = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  return n >= 2n && (b[9] === 0x22 || b[9] === 0x7d || b[9] === 0x20);
}

export async function loadCheckpoint(bytes: Uint8Array, fileName: string, opts: CheckpointOptions = {}): Promise<LoadedCheckpoint> {
  try {
    const format = detectFormat(bytes);
    switch (format) {
      case "safetensors": {
        const { tensors, metadata } = readSafetensors(bytes, fileName);
        return { format, stateDict: tensors, metadata };
      }
      case "torch-zip": {
        const s = await readTorchZip(bytes, fileName, opts);
        return { format, stateDict: s.stateDict, stateDictPath: s.path, stateDictCandidates: s.candidates };
      }
      case "torch-legacy": {
        const s = readTorchLegacy(bytes, fileName, opts);
        return { format, stateDict: s.stateDict, stateDictPath: s.path, stateDictCandidates: s.candidates };
      }
      case "network-pickle": {
        const p = readNetworkPickle(bytes, fileName, opts.networkKey ?? "G_ema", opts);
        return { format, stateDict: p.stateDict, initKwargs: p.initKwargs, stateDictPath: [opts.networkKey ?? "G_ema"], stateDictCandidates: p.networks.map((n) => [n]) };
      }
      default:
        if (bytes.length >= 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar")
          throw new CheckpointError(fileName, "tar checkpoints from torch < 0.4 are not supported; re-save with a newer torch");
        throw new CheckpointError(fileName, "unrecognised format (expected safetensors, a torch.save zip or legacy file, or a network pickle)");
    }
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    // Anything else (a RangeError from a huge allocation, a bug of ours) still names the file.
    throw new CheckpointError(fileName, `unexpected error while reading: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export { CheckpointError, type RawTensor, type StateDict } from "./tensor.ts";
export type { CheckpointOptions } from "./options.ts";
export { readSafetensors } from "./safetensors.ts";
export { readTorchZip } from "./torch-zip.ts";
export { readTorchLegacy } from "./torch-legacy.ts";
export { readNetworkPickle, type NetworkPickle } from "./network-pickle.ts";
export { selectStateDict, listStateDictCandidates, type StateDictSelection } from "./state-dict.ts";
