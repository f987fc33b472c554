import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { test } from "vitest";
test("x", async () => {
  await tf.setBackend("cpu");
  console.log("conv grad registered:", !!tf.getGradient("Conv2D"), "Add:", !!tf.getGradient("Add"));
  try { await import("@tensorflow/tfjs-core/dist/register_all_gradients.js"); console.log("deep import ok", !!tf.getGradient("Conv2D")); } catch (e) { console.log("deep import failed", (e as Error).message.slice(0, 300)); }
  const g = tf.grad((x: tf.Tensor) => tf.sum(tf.square(x)))(tf.tensor([1, 2, 3]));
  console.log(g.dataSync());
});
