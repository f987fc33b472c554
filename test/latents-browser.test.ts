/**
 * The playground's latent-space page in a real browser (Debian's Chromium via Playwright) on the demo model:
 * a seed grid, keep one image's w, move it along a SeFa direction, and a keyframe video through the grid.
 */
import fs from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startStack, type Stack } from "./helpers/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let stack: Stack;
let browser: Browser;
let page: Page;
const errors: string[] = [];

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (.ci/run does this)`);
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true" } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // The machine running the suite is shared and slow at times: waits are for states, bounded generously.
  page.setDefaultTimeout(120_000);
  page.on("pageerror", (e) => errors.push(e.message));
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** The bytes an <img> shows (blob: URLs are fetched inside the page). */
const imgBytes = (testId: string) =>
  page.evaluate(async (id) => {
    const src = document.querySelector<HTMLImageElement>(`[data-testid="${id}"]`)!.src;
    return Array.from(new Uint8Array(await (await fetch(src)).arrayBuffer()));
  }, testId);

it("seed grid → keep a w → a SeFa slider edits it → a keyframe video of the grid's w's", async () => {
  await page.goto(`${stack.url}/#/latent-space`, { waitUntil: "networkidle" });
  await page.getByTestId("lat-seeds").fill("0-3");
  await page.getByTestId("lat-run").click();
  await page.locator('[data-testid="lat-grid"] figure').nth(3).waitFor();
  await page.locator('[data-testid="lat-grid"] figure button').nth(1).click();
  await page.getByTestId("lat-edited").waitFor();
  const before = await imgBytes("lat-edited");
  const beforeSrc = await page.getByTestId("lat-edited").getAttribute("src");
  const edited = page.waitForResponse((r) => new URL(r.url()).pathname === "/v1/generate" && r.request().method() === "POST");
  // The sliders appear once the model's directions are listed (SeFa computed on first use).
  await page.getByTestId("lat-sefa-0").waitFor();
  await page.getByTestId("lat-sefa-0").fill("6");
  expect((await edited).status()).toBe(200);
  await page.waitForFunction((b) => {
    const img = document.querySelector<HTMLImageElement>('[data-testid="lat-edited"]');
    return img?.complete === true && img.src !== b;
  }, beforeSrc);
  expect(await imgBytes("lat-edited")).not.toEqual(before);

  await page.getByTestId("lat-video").click();
  await page.getByTestId("lat-video-out").waitFor({ timeout: 120_000 });
  const meta = await sharp(Buffer.from(await imgBytes("lat-video-out")), { pages: -1 }).metadata();
  // Four keyframes, 24 frames each, looping.
  expect(meta.pages).toBe(96);
  expect(errors).toEqual([]);
});
