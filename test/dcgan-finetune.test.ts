/**
 * DCGAN fine-tunes through the real pipeline (issue #26's training acceptance): the shipped demo generator
 * (models/fashion-dcgan, imported with the real CLI) is fine-tuned for 200 steps with each loss the family
 * trains with, by the same jobs, worker and trainer registry as every family, and each loss curve must be finite
 * from the first step to the last. The refused combinations fail with the reason training/losses.ts gives.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAMILY_LOSS_RULES, GAN_LOSSES } from "@ganserve/core/training/losses";
import { importModel } from "./helpers/models.ts";
import { followEvents, squaresZip, startFineTune, uploadDataset } from "./helpers/finetune.ts";
import { auth, repoRoot, startStack, type Stack, tempDataDir } from "./helpers/stack.ts";

const STEPS = 200;
const TRAINED = GAN_LOSSES.filter((l) => !FAMILY_LOSS_RULES.dcgan.refuse[l]);

let stack: Stack;
let datasetId: string;

beforeAll(async () => {
  const dataDir = tempDataDir();
  importModel(path.join(repoRoot, "models/fashion-dcgan/weights.safetensors"), "dcgan-demo", dataDir);
  stack = await startStack({ dataDir, env: { GANSERVE_MAX_CONCURRENT_FINE_TUNES: "8" } });
  const up = await uploadDataset(stack, await squaresZip(16), "dcgan");
  expect(up.status).toBe(200);
  datasetId = up.id;
}, 300_000);
afterAll(async () => {
  await stack?.stop();
});

const job = async (id: string) => (await fetch(`${stack.url}/v1/fine-tunes/${id}`, { headers: auth(stack) })).json();

describe("DCGAN demo fine-tunes", () => {
  it("does not leave a loss untested", () => {
    expect(TRAINED).toEqual(["bce", "nonsaturating", "lsgan", "hinge"]);
  });

  it(`${STEPS} steps with each loss succeed with a finite loss curve, and the result serves`, async () => {
    const started = await Promise.all(
      TRAINED.map((loss) => startFineTune(stack, { base_model: "dcgan-demo", dataset: datasetId, name: `dcgan-${loss}`, steps: STEPS, batch_size: 4, learning_rate: 0.0002, options: { loss } })),
    );
    for (const [i, { id }] of started.entries()) {
      const loss = TRAINED[i];
      await followEvents(stack, id, undefined, 1_200_000);
      const done = await job(id);
      expect(done.status, `${loss}: ${JSON.stringify(done.error)}`).toBe("succeeded");
      expect(done.step).toBe(STEPS);
      expect(done.loss_history.map((h: { step: number }) => h.step)).toEqual(Array.from({ length: STEPS }, (_, k) => k + 1));
      for (const h of done.loss_history as { step: number; losses: Record<string, number> }[]) {
        expect(Object.keys(h.losses).sort()).toEqual(["D_fake", "D_real", "G"]);
        for (const [k, v] of Object.entries(h.losses)) expect(Number.isFinite(v), `${loss} step ${h.step} ${k}=${v}`).toBe(true);
      }
    }
    const res = await fetch(`${stack.url}/v1/generate`, {
      method: "POST",
      headers: { ...auth(stack), "content-type": "application/json" },
      body: JSON.stringify({ model: "dcgan-hinge", seeds: [0, 1] }),
    });
    expect(res.status).toBe(200);
    expect((await res.json()).images).toHaveLength(2);
  }, 1_500_000);

  it("refused combinations are answered 422 with their reason, and no job is queued", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ loss: "wgan-gp" }, /loss wgan-gp is not available for dcgan/],
      [{ r1_gamma: 1 }, /r1_gamma is not available for dcgan/],
      [{ loss: "hinge", gp_lambda: 5 }, /gp_lambda only applies to loss wgan-gp/],
    ];
    const listed = async () => (await (await fetch(`${stack.url}/v1/fine-tunes`, { headers: auth(stack) })).json()).fine_tunes.length;
    const before = await listed();
    for (const [options, reason] of cases) {
      const res = await fetch(`${stack.url}/v1/fine-tunes`, {
        method: "POST",
        headers: { ...auth(stack), "content-type": "application/json" },
        body: JSON.stringify({ base_model: "dcgan-demo", dataset: datasetId, name: "dcgan-refused", steps: 2, batch_size: 2, options }),
      });
      expect(res.status).toBe(422);
      const { error } = await res.json();
      expect(error.code).toBe("unprocessable");
      expect(error.details.reason).toBe("loss_option_refused");
      expect(error.message).toMatch(reason);
    }
    expect(await listed()).toBe(before);
  }, 300_000);
});
