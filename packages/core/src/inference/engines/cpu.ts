/**
 * What this CPU is, from /proc/cpuinfo: vendor, family/model, name and the vector extensions that decide which
 * kernels ONNX Runtime (and PyTorch) pick. The bench prints it next to its results, and the ORT model cache keys
 * on it, because a model optimised at level "all" holds NCHWc ops laid out for the CPU that optimised it.
 */
import fs from "node:fs";
import os from "node:os";

export interface CpuInfo {
  vendor: string;
  family: string;
  model: string;
  name: string;
  avx512: boolean;
  /** the extensions among avx2, fma, avx512f, avx512_bf16, avx512_vnni, amx_tile that this CPU has */
  features: string[];
  cores: number;
}

const FEATURES = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile"];

export function cpuInfo(): CpuInfo {
  let text = "";
  try {
    text = fs.readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    // not Linux: the name from os.cpus() is what there is
  }
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
  const flags = new Set(field("flags").split(/\s+/));
  const features = FEATURES.filter((f) => flags.has(f));
  return {
    vendor: field("vendor_id") || os.arch(),
    family: field("cpu family"),
    model: field("model"),
    name: field("model name") || (os.cpus()[0]?.model ?? "unknown"),
    avx512: flags.has("avx512f"),
    features,
    cores: os.availableParallelism?.() ?? os.cpus().length,
  };
}

/** One line for logs and tables: "AuthenticAMD family 26 model 2 (AMD EPYC), AVX-512 (…), 2 cores". */
export function cpuSummary(c: CpuInfo = cpuInfo()): string {
  return `${c.vendor} family ${c.family || "?"} model ${c.model || "?"} (${c.name}), ${c.avx512 ? "AVX-512" : "no AVX-512"} [${c.features.join(" ")}], ${c.cores} cores`;
}
