/**
 * The model cache's warm-up hook: one forward pass at the smallest legal size so kernels are compiled before
 * the first real request. Separate from the service because it knows each family's smallest input, not how
 * requests are served.
 */
import type { Engine } from "./engine.ts";

export async function warmUp(engine: Engine): Promise<void> {
  switch (engine.family) {
    case "stylegan2": {
      const z = new Float32Array(engine.zDim);
      const c = engine.cDim > 0 ? new Float32Array(engine.cDim).fill(0).map((_, i) => (i === 0 ? 1 : 0)) : null;
      await engine.synthesis(await engine.mapping(z, c, 1, { truncation_psi: 1 }), 1, { noise_mode: "const" });
      return;
    }
    case "cyclegan": {
      const s = engine.sizeMultiple * Math.max(1, Math.round(64 / engine.sizeMultiple));
      await engine.forward("AtoB", new Float32Array(s * s * 3), 1, s, s);
      return;
    }
    case "spade":
      await engine.forward(new Int32Array(engine.width * engine.height), engine.useInstance ? new Int32Array(engine.width * engine.height) : null, 1, { seed: 0 });
      return;
    case "dcgan":
      await engine.forward(new Float32Array(engine.zDim), 1);
      return;
  }
}
