/**
 * Serving engines backed by the TF.js networks (any backend: tfjs-node-gpu, tfjs-node, wasm, cpu).
 *
 * Native weights layout in `weights.safetensors` (official names throughout):
 * - stylegan2: the generator's (G_ema) state_dict as is;
 * - cyclegan: `netG_A.*` and `netG_B.*` (a bare state_dict is G_A only, e.g. pix2pix);
 * - spade: the generator's state_dict, plus `netE.*` for the style encoder when `use_vae`;
 * - dcgan: the generator's state_dict as is (`fc.0.weight`, `main.3.running_var`...).
 */
import { readSafetensors } from "../../checkpoints/safetensors.ts";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { initBackend, tf, type BackendChoice } from "../../engine/backend.ts";
import { ApiError } from "../../errors.ts";
import type { ModelJson } from "../../models/model-json.ts";
import { CycleGANModel } from "../../networks/cyclegan/index.ts";
import { DcganGenerator } from "../../networks/dcgan/generator.ts";
import { buildSemantics, LabelMapError, parseSpadeConfig, SpadeEncoder, SpadeGenerator } from "../../networks/spade/index.ts";
import { StyleGAN2Generator } from "../../networks/stylegan2/index.ts";
import type { CycleGANEngine, DcganEngine, Engine, EngineFactory, SpadeEngine, StyleGAN2Engine } from "../engine.ts";

/** Keys under `prefix`, with the prefix removed; the rest stays out. */
export function subDict(sd: StateDict, prefix: string): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

const read = (t: tf.Tensor) => t.dataSync() as Float32Array;

function styleGan2(record: ModelJson, sd: StateDict): StyleGAN2Engine {
  const g = StyleGAN2Generator.fromStateDict(record.config, sd, `${record.name}/${record.version}`);
  const { z_dim, c_dim, w_dim, img_resolution } = g.config;
  return {
    family: "stylegan2",
    zDim: z_dim,
    cDim: c_dim,
    wDim: w_dim,
    numWs: g.numWs,
    resolution: img_resolution,
    mapping(z, c, n, opts) {
      return tf.tidy(() => {
        const zt = tf.tensor2d(z, [n, z_dim]);
        const ct = c ? tf.tensor2d(c, [n, c_dim]) : null;
        return read(g.mapping(zt, ct, { truncation_psi: opts.truncation_psi, truncation_cutoff: opts.truncation_cutoff ?? null }));
      });
    },
    synthesis(ws, n, noise) {
      return tf.tidy(() => read(g.synthesis(tf.tensor3d(ws, [n, g.numWs, w_dim]), noise)));
    },
    dispose: () => g.dispose(),
  };
}

function cycleGan(record: ModelJson, sd: StateDict): CycleGANEngine {
  const has = (prefix: string) => [...sd.keys()].some((k) => k.startsWith(prefix));
  const model = CycleGANModel.fromStateDicts(
    record.config,
    has("netG_A.") ? { G_A: subDict(sd, "netG_A."), G_B: has("netG_B.") ? subDict(sd, "netG_B.") : undefined } : sd,
  );
  const trainSize = typeof record.config.crop_size === "number" ? record.config.crop_size : typeof record.config.load_size === "number" ? record.config.load_size : 256;
  return {
    family: "cyclegan",
    sizeMultiple: model.sizeMultiple,
    trainSize: Math.max(model.minSize, trainSize),
    forward(direction, x, n, h, w) {
      if (!model.directions().includes(direction))
        throw new ApiError("validation_failed", `direction: this model has no ${direction} generator`, { directions: model.directions() });
      return tf.tidy(() => read(model.translate(tf.tensor4d(x, [n, h, w, 3]), direction)));
    },
    dispose: () => model.dispose(),
  };
}

function spade(record: ModelJson, sd: StateDict): SpadeEngine {
  const config = parseSpadeConfig(record.config);
  const generator = SpadeGenerator.fromStateDict(
    record.config,
    new Map([...sd].filter(([k]) => !k.startsWith("netE."))),
    `${record.name}/${record.version}`,
  );
  const encoder = config.use_vae && [...sd.keys()].some((k) => k.startsWith("netE.")) ? SpadeEncoder.fromStateDict(record.config, subDict(sd, "netE.")) : undefined;
  const [height, width] = config.output_hw;
  return {
    family: "spade",
    labelNc: config.label_nc,
    containDontcare: config.contain_dontcare_label,
    useInstance: !config.no_instance,
    useVae: encoder !== undefined,
    height,
    width,
    forward(label, instance, n, opts) {
      let semantics: ReturnType<typeof buildSemantics>;
      try {
        semantics = buildSemantics(config, { data: label, shape: [n, height, width] }, instance ? { data: instance, shape: [n, height, width] } : undefined);
      } catch (e) {
        if (e instanceof LabelMapError) throw new ApiError("invalid_label_map", e.message, e.detail);
        throw e;
      }
      return tf.tidy(() => {
        const sem = tf.tensor4d(semantics.data, semantics.shape);
        let z: tf.Tensor2D | undefined;
        if (encoder && opts.style) {
          const { mu, logvar } = encoder.encode(tf.tensor4d(opts.style, [1, 256, 256, 3]));
          // Reparameterise with a seeded normal so the same style image and seed give the same output.
          const eps = tf.randomNormal([n, mu.shape[1]], 0, 1, "float32", opts.seed);
          z = tf.add(tf.mul(eps, tf.exp(tf.mul(logvar, 0.5))), mu) as tf.Tensor2D;
        }
        return read(generator.forward(sem, { z, seed: opts.seed }));
      });
    },
    dispose: () => {
      generator.dispose();
      encoder?.dispose();
    },
  };
}

function dcgan(record: ModelJson, sd: StateDict): DcganEngine {
  const g = DcganGenerator.fromStateDict(record.config, sd, `${record.name}/${record.version}`);
  const { z_shape, nc, img_size, seed_rng } = g.config;
  return {
    family: "dcgan",
    zDim: g.nz,
    zShape: [...z_shape],
    channels: nc,
    resolution: img_size,
    seedRng: seed_rng,
    forward: (z, n) => tf.tidy(() => read(g.forward(tf.tensor2d(z, [n, g.nz])))),
    dispose: () => g.dispose(),
  };
}

const builders: Record<ModelJson["family"], (record: ModelJson, sd: StateDict) => Engine> = {
  stylegan2: styleGan2,
  cyclegan: cycleGan,
  spade,
  dcgan,
};

export function tfjsEngines(backend: BackendChoice = "auto"): EngineFactory {
  return {
    name: "tfjs",
    async load(record, weights) {
      await initBackend(backend);
      const { tensors } = readSafetensors(weights, `${record.name}/${record.version}/weights.safetensors`);
      return builders[record.family](record, tensors);
    },
  };
}
