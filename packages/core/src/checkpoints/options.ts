import type { PickleLimits } from "./unpickler.ts";
import type { ByteBudget } from "./torch-tensor.ts";

export interface CheckpointOptions {
  /**
   * Where the state dict sits inside a wrapper dict, e.g. "state_dict" or ["model", "G"]. When absent the reader
   * takes the root if it is a state dict, else the only nested one, else a well-known key (see selectStateDict).
   */
  stateDictKey?: string | string[];
  /** Network pickles: which network to export (default "G_ema"). */
  networkKey?: string;
  /** Tensor bytes a file may decode to in total; guards against stride/size tricks. Default 8 GiB. */
  maxTensorBytes?: number;
  pickleLimits?: Partial<PickleLimits>;
}

export const DEFAULT_MAX_TENSOR_BYTES = 8 * 1024 ** 3;

export const budgetFor = (opts: CheckpointOptions): ByteBudget => ({ left: opts.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES });
