/**
 * The playground in a real browser (Debian's Chromium driven by Playwright) against the real local stack:
 * a first visit that runs each demo's example with no key typed, then generate a grid, translate an uploaded
 * image, paint a SPADE label map. Screenshots of each page are saved under test-results/screenshots as
 * artifacts.
 */
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { squaresZip } from "./helpers/finetune.ts";
import { repoRoot, startStack, type Stack } from "./helpers/stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = path.join(repoRoot, "test-results/screenshots");

let stack: Stack;
let browser: Browser;
let page: Page;

/** Every <img> matching the selector has decoded pixels. */
const imagesLoaded = (sel: string) =>
  page.waitForFunction((s) => {
    const imgs = [...document.querySelectorAll<HTMLImageElement>(s)];
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, sel);

/** Whether an image on the page is more than one flat colour (pixels really arrived). */
const hasVariedPixels = (sel: string) =>
  page.evaluate((s) => {
    const img = document.querySelector<HTMLImageElement>(s)!;
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext("2d")!;
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<number>();
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, sel);

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (.ci/run does this)`);
  // The playground as a fresh `npm start` opens it: on the three shipped demo models.
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true" } });
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe("playground", () => {
  it("first visit, no key typed: the local dev key is used and one click on an example runs each demo", async () => {
    await page.goto(stack.url, { waitUntil: "networkidle" });
    expect(await page.getByTestId("api-key").inputValue()).toBe("");
    await expect.poll(() => page.getByTestId("dev-key-note").textContent()).toMatch(/Local mode/);
    expect(await page.locator("body").textContent()).not.toMatch(/No StyleGAN2 model yet/);
    const demos = [
      { hash: "#/generate?model=fashion-stylegan2", select: "gen-model", model: "fashion-stylegan2", status: "gen-status", output: '[data-testid="gen-grid"] img', shot: "first-visit-stylegan2.png" },
      { hash: "#/translate?model=emoji-cyclegan", select: "tr-model", model: "emoji-cyclegan", status: "tr-status", output: '[data-testid="tr-output"]', shot: "first-visit-cyclegan.png" },
      { hash: "#/translate?model=scenes-spade", select: "tr-model", model: "scenes-spade", status: "spade-status", output: '[data-testid="spade-output"]', shot: "first-visit-spade.png", initial: true },
    ];
    /** The output's src now, without waiting for it to exist. */
    const srcOf = (sel: string) => page.evaluate((s) => document.querySelector(s)?.getAttribute("src") ?? null, sel);
    for (const demo of demos) {
      await page.goto(`${stack.url}/${demo.hash}`);
      // A hash change re-renders in place: wait until the page shows this demo, not the one before.
      await expect.poll(() => page.getByTestId(demo.select).inputValue()).toBe(demo.model);
      const examples = page.getByTestId("examples").getByTestId("example");
      await expect.poll(() => examples.count()).toBeGreaterThan(0);
      // The SPADE painter synthesises its starting scene on open: the example must replace that output.
      if (demo.initial) await imagesLoaded(demo.output);
      const before = await srcOf(demo.output);
      // The playground runs generate and translate as predictions: created at once (202), then followed.
      const answered = page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/v1/predictions", { timeout: 120_000 });
      await examples.last().click();
      expect((await answered).status()).toBe(202);
      await expect.poll(() => srcOf(demo.output), { timeout: 30_000 }).not.toBe(before);
      await expect.poll(() => srcOf(demo.output)).not.toBeNull();
      await imagesLoaded(demo.output);
      expect(await hasVariedPixels(demo.output)).toBeGreaterThan(10);
      // The page showed the prediction's statuses as they came, from the 202's `starting` to the end.
      await expect.poll(() => page.getByTestId(demo.status).textContent()).toMatch(/^starting → (processing → )?succeeded$/);
      // Small outputs are drawn scaled up (whole factor, nearest) next to a 1:1 download.
      const shown = await page.locator(demo.output).first().evaluate((i: HTMLImageElement) => ({
        natural: i.naturalWidth,
        drawn: i.getBoundingClientRect().width,
        rendering: getComputedStyle(i).imageRendering,
      }));
      expect(shown.rendering).toBe("pixelated");
      expect(shown.drawn).toBeGreaterThanOrEqual(shown.natural * 2);
      await page.screenshot({ path: path.join(SHOTS, demo.shot), fullPage: true });
    }
    expect(await page.locator("a.download").first().getAttribute("download")).toMatch(/\.png$/);
    await page.getByTestId("api-key").fill(stack.apiKey);
  });

  it("generates a grid of images and shows the call that makes one", async () => {
    await page.goto(`${stack.url}/#/generate`);
    await page.getByTestId("gen-model").selectOption("fashion-stylegan2");
    await page.getByTestId("gen-seeds").fill("0-5");
    await page.getByTestId("gen-run").click();
    await imagesLoaded('[data-testid="gen-grid"] img');
    expect(await page.locator('[data-testid="gen-grid"] img').count()).toBe(6);
    expect(await hasVariedPixels('[data-testid="gen-grid"] img')).toBeGreaterThan(10);
    await page.locator('[data-testid="gen-grid"] figure').nth(2).click();
    await expect.poll(() => page.getByTestId("gen-detail").textContent()).toContain('"seeds":[2]');
    await page.screenshot({ path: path.join(SHOTS, "generate.png"), fullPage: true });
  });

  it("translates an uploaded image and shows before and after", async () => {
    await page.goto(`${stack.url}/#/translate`);
    await page.getByTestId("tr-model").selectOption("emoji-cyclegan");
    const png = await sharp({ create: { width: 97, height: 61, channels: 3, background: "#4080c0" } })
      .composite([{ input: await sharp({ create: { width: 30, height: 30, channels: 3, background: "#f0d020" } }).png().toBuffer(), left: 20, top: 10 }])
      .png()
      .toBuffer();
    await page.getByTestId("tr-file").setInputFiles({ name: "input.png", mimeType: "image/png", buffer: png });
    await imagesLoaded('[data-testid="tr-output"]');
    const size = await page.locator('[data-testid="tr-output"]').evaluate((i: HTMLImageElement) => [i.naturalWidth, i.naturalHeight]);
    expect(size).toEqual([97, 61]);
    expect(await hasVariedPixels('[data-testid="tr-output"]')).toBeGreaterThan(10);
    await page.screenshot({ path: path.join(SHOTS, "translate-cyclegan.png"), fullPage: true });
  });

  it("paints a SPADE label map and re-synthesises the image", async () => {
    await page.goto(`${stack.url}/#/translate`);
    await page.getByTestId("tr-model").selectOption("scenes-spade");
    await imagesLoaded('[data-testid="spade-output"]');
    const first = await page.locator('[data-testid="spade-output"]').getAttribute("src");
    await page.getByTestId("palette").locator("button").nth(3).click();
    const box = (await page.getByTestId("painter").boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.7);
    await page.mouse.down();
    for (let i = 0; i <= 10; i++) await page.mouse.move(box.x + box.width * (0.2 + i * 0.05), box.y + box.height * 0.7);
    await page.mouse.up();
    await expect.poll(() => page.locator('[data-testid="spade-output"]').getAttribute("src"), { timeout: 30_000 }).not.toBe(first);
    await imagesLoaded('[data-testid="spade-output"]');
    expect(await hasVariedPixels('[data-testid="spade-output"]')).toBeGreaterThan(10);
    await page.screenshot({ path: path.join(SHOTS, "translate-spade.png"), fullPage: true });
  });

  it("lists every model on the models page", async () => {
    await page.goto(`${stack.url}/#/models`);
    // The stack registers every bundled model folder (models/<name>/model.json).
    const bundled = fs.readdirSync(path.join(repoRoot, "models")).filter((d) => fs.existsSync(path.join(repoRoot, "models", d, "model.json"))).length;
    await expect.poll(() => page.getByTestId("models").locator("article").count()).toBe(bundled);
    await page.screenshot({ path: path.join(SHOTS, "models.png"), fullPage: true });
    await page.goto(`${stack.url}/#/fine-tune`);
    await page.screenshot({ path: path.join(SHOTS, "fine-tune.png"), fullPage: true });
  });

  it("uploads a dataset zip from the fine-tune page: the store's POST form, cross-origin, then finalize", async () => {
    await page.goto(`${stack.url}/#/fine-tune`);
    await page.locator("section select").first().selectOption("fashion-stylegan2");
    await page.getByTestId("ft-file").setInputFiles({ name: "squares.zip", mimeType: "application/zip", buffer: Buffer.from(await squaresZip(4)) });
    const posted = page.waitForResponse((r) => r.request().method() === "POST" && r.url().startsWith(`http://127.0.0.1:${stack.s3Port}/`));
    await page.getByTestId("ft-upload").click();
    expect((await posted).status()).toBe(204);
    await expect.poll(() => page.getByTestId("ft-dataset").textContent(), { timeout: 30_000 }).toMatch(/ready · 4 images/);
  });

  it("shows API errors as readable messages with the request id", async () => {
    await page.getByTestId("api-key").fill("wrong-key");
    await page.goto(`${stack.url}/#/models`);
    await page.reload();
    const alert = page.getByRole("alert").first();
    await expect.poll(() => alert.textContent()).toMatch(/unauthorized.*request id [0-9a-f-]{36}/);
    await page.getByTestId("api-key").fill(stack.apiKey);
  });
});
