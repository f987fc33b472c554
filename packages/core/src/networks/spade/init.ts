/**
 * Seeded random initialisation in the spirit of upstream `BaseNetwork.init_weights(init_type, init_variance)`:
 * every conv/linear weight (spectral ones included: upstream writes through `weight.data`, which shares storage
 * with `weight_orig`) gets xavier-normal with gain `init_variance` (or N(0, init_variance) for 'normal'), biases
 * are 0, running stats 0/1, and spectral u/v start as normalised N(0, 1) vectors like torch's.
 * tf.randomNormal with a seed is generated on the host, so values do not depend on the backend.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ParamSource } from "../common/param-store.ts";
import { RUNNING_VAR } from "../common/norm.ts";
import { isSpectralVectorKey } from "../common/spectral-norm.ts";

export function spadeInitSource(seed: number, initType: string, gain: number): ParamSource {
  if (initType !== "xavier" && initType !== "normal")
    throw new Error(`randomInit supports init_type 'xavier' and 'normal', not '${initType}'`);
  let k = 0;
  return (name, shape, role) => {
    const s = [...shape];
    const slotSeed = (seed >>> 0) * 7919 + 104_729 * ++k;
    if (isSpectralVectorKey(name)) {
      const r = tf.randomNormal(s, 0, 1, "float32", slotSeed);
      // sqrt(sum(x^2)) rather than tf.norm, whose implementation relies on chained tensor methods.
      return tf.div(r, tf.maximum(tf.sqrt(tf.sum(tf.square(r))), 1e-12));
    }
    if (name.endsWith(`.${RUNNING_VAR}`)) return tf.ones(s);
    if (role !== "conv.weight") return tf.zeros(s);
    if (initType === "normal") return tf.randomNormal(s, 0, gain, "float32", slotSeed);
    const receptive = s.slice(2).reduce((a, b) => a * b, 1);
    const fanIn = s[1] * receptive;
    const fanOut = s[0] * receptive;
    return tf.randomNormal(s, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), "float32", slotSeed);
  };
}
