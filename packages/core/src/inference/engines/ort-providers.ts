/**
 * Whether ONNX Runtime's configured execution providers load on this machine. A GPU provider (cuda, tensorrt,
 * …) that is configured but cannot load does not fall back to the CPU: ORT refuses to create any session
 * ("OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library"), so a GPU worker whose
 * task got no GPU, or whose image lacks the CUDA add-on, could not serve one prediction. The probe builds a
 * one-node graph on the same ORT thread, with the same providers, as every model's session (ort-thread.ts).
 */
import { GraphBuilder } from "../../onnx/graph.ts";
import { createOrtSession } from "./ort-thread.ts";

export interface ProviderCheck {
  ok: boolean;
  /** The configured list, e.g. "cuda,cpu". */
  providers: string;
  /** Why a session could not be created with them. */
  error?: string;
}

/** A configured provider other than the CPU: the process was meant to compute on an accelerator. */
export const wantsAccelerator = (providers: string) => providers.split(",").some((p) => p.trim() !== "cpu");

export async function checkOrtProviders(providers: string): Promise<ProviderCheck> {
  const g = new GraphBuilder("provider-probe");
  g.output("y", g.op("Relu", [g.input("x", [1])]), [1]);
  try {
    const session = await createOrtSession(g.encode(), { threads: 1, memArena: false });
    await session.release();
    return { ok: true, providers };
  } catch (e) {
    return { ok: false, providers, error: (e as Error).message };
  }
}
