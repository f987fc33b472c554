/** How every hostile-input file ends: the stack stayed within its memory budget and still answers. */
import { expect } from "vitest";
import { memoryOf, type Stack } from "./stack.ts";

/** Peak RSS of the stack's process under `budget` bytes (logged with its label), and /health still 200. */
export async function expectAliveWithinBudget(stack: Stack, budget: number, label: string) {
  const mem = memoryOf(stack.pid);
  const mb = (b: number) => Math.round(b / 2 ** 20);
  console.log(JSON.stringify({ test: label, rss_mb: mb(mem.rss), peak_mb: mb(mem.peak), budget_mb: mb(budget) }));
  expect(mem.peak).toBeLessThan(budget);
  expect((await fetch(`${stack.url}/health`)).status).toBe(200);
}
