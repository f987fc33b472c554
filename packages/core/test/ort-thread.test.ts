import { describe, expect, it } from "vitest";
import { initBackend } from "../src/engine/backend.ts";
import { createSession } from "../src/inference/engines/onnx.ts";
import { CycleGANGenerator, exportCycleGAN } from "../src/networks/cyclegan/generator.ts";

describe("ONNX Runtime thread", () => {
  it("keeps the event loop turning while a forward pass runs, and refuses a released session", async () => {
    await initBackend("cpu");
    const config = { netG: "resnet_6blocks", ngf: 16, norm: "instance", input_nc: 3, output_nc: 3 };
    const g = CycleGANGenerator.randomInit(config, 3);
    const session = await createSession(exportCycleGAN(config, g.stateDict()), 1);
    g.dispose();
    const size = 256;
    const x = Float32Array.from({ length: 2 * size * size * 3 }, (_, i) => Math.sin(i * 0.01));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    // ~9 GFLOP on one thread: long enough that a pass on the main thread would starve the interval.
    const y = await session.run({ x: { data: x, dims: [2, size, size, 3] } });
    clearInterval(timer);
    expect(y.length).toBe(x.length);
    expect(y.every(Number.isFinite)).toBe(true);
    expect(ticks).toBeGreaterThan(3);
    await session.release();
    await expect(session.run({ x: { data: x, dims: [2, size, size, 3] } })).rejects.toThrow(/does not exist/);
  });
});
