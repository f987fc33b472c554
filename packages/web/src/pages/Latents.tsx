import { useEffect, useState } from "react";
import { ClassSelect } from "../components/ClassSelect.tsx";
import { ErrorBanner } from "../components/ErrorBanner.tsx";
import { ModelSelect } from "../components/ModelSelect.tsx";
import { ScaledImage } from "../components/ScaledImage.tsx";
import { client, imageSrc, type DirectionInfo, type GenerateResponse, type ImageResult, type ModelInfo } from "../lib/api.ts";
import { parseSeeds } from "../lib/seeds.ts";

/** How many SeFa directions get a slider; SeFa lists them largest eigenvalue first. */
const SLIDERS = 5;
/** Slider range in w units (the API allows ±100; beyond a few units images leave the model's range). */
const SLIDER_MAX = 10;

/**
 * StyleGAN2's latent space: a seed grid whose images come with their w, one kept w moved along the top SeFa
 * directions, a keyframe video through the grid's w's, and projection of an uploaded image to a w.
 */
export function LatentsPage({ models }: { models: ModelInfo[] }) {
  const [model, setModel] = useState("");
  const [seeds, setSeeds] = useState("0-7");
  const [psi, setPsi] = useState(0.7);
  const [classIdx, setClassIdx] = useState(0);
  const [grid, setGrid] = useState<GenerateResponse>();
  const [kept, setKept] = useState<{ w: string; label: string }>();
  const [directions, setDirections] = useState<DirectionInfo[]>([]);
  const [strengths, setStrengths] = useState<number[]>([]);
  const [edited, setEdited] = useState<ImageResult>();
  const [video, setVideo] = useState<string>();
  const [projected, setProjected] = useState<{ image: ImageResult; psnr: number }>();
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<unknown>();

  useEffect(() => {
    if (!model && models.length) setModel(models[0].name);
  }, [models, model]);
  const info = models.find((m) => m.name === model);
  const cDim = Number(info?.input.c_dim ?? 0);

  useEffect(() => {
    if (!model) return;
    client()
      .models.directions(model)
      .then((d) => {
        const top = d.directions.filter((x) => x.kind === "sefa").slice(0, SLIDERS);
        setDirections(top);
        setStrengths(top.map(() => 0));
      }, setError);
  }, [model]);

  async function step(what: string, work: () => Promise<void>) {
    setBusy(what);
    setError(undefined);
    try {
      await work();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(undefined);
    }
  }

  const runGrid = () =>
    step("grid", async () => {
      setGrid(await client().generate({ model, seeds: parseSeeds(seeds), truncation_psi: psi, return_latents: true, ...(cDim > 0 ? { class_idx: classIdx } : {}) }));
    });

  const keep = (img: ImageResult, label: string) => {
    if (typeof img.w !== "string") return;
    setKept({ w: img.w, label });
    setStrengths(directions.map(() => 0));
    setEdited(img);
  };

  const applyEdits = (next: number[]) => {
    setStrengths(next);
    if (!kept) return;
    const edits = directions.flatMap((d, i) => (next[i] ? [{ direction: d.name, strength: next[i] }] : []));
    void step("edit", async () => setEdited((await client().generate({ model, w: [kept.w], edits })).images[0]));
  };

  const makeVideo = () =>
    step("video", async () => {
      const ws = (grid?.images ?? []).flatMap((i) => (typeof i.w === "string" ? [i.w] : [])).slice(0, 4);
      const r = await client().generate.video({ model, keyframes: { w: ws }, frames_per_transition: 24 });
      setVideo(imageSrc(r.video as ImageResult));
    });

  const project = (file: File) =>
    step("projection", async () => {
      const r = await client().project({ model, image: file, resize: true, steps: 200, ...(cDim > 0 ? { class_idx: classIdx } : {}) });
      setProjected({ image: r.image, psnr: r.psnr });
      keep({ ...r.image, w: typeof r.w === "string" ? r.w : undefined }, `projection of ${file.name}`);
    });

  return (
    <section>
      <h2>Latent space</h2>
      {models.length === 0 && <p className="hint">No StyleGAN2 model yet: import one with `npx ganserve import` or fine-tune one.</p>}
      <div className="controls">
        <ModelSelect testId="lat-model" models={models} value={model} onChange={setModel} />
        <label>
          Seeds
          <input data-testid="lat-seeds" value={seeds} onChange={(e) => setSeeds(e.target.value)} />
        </label>
        <label>
          Truncation ψ {psi.toFixed(2)}
          <input type="range" min={0} max={1.5} step={0.05} value={psi} onChange={(e) => setPsi(Number(e.target.value))} />
        </label>
        <ClassSelect count={cDim} names={info?.class_names} value={classIdx} onChange={setClassIdx} />
        <button type="button" data-testid="lat-run" disabled={!model || !!busy} onClick={runGrid}>
          {busy === "grid" ? "Generating…" : "Seed grid"}
        </button>
        <button type="button" data-testid="lat-video" disabled={!grid || !!busy} onClick={makeVideo}>
          {busy === "video" ? "Rendering…" : "Make video"}
        </button>
        <label>
          Project an image
          <input type="file" accept="image/*" disabled={!model || !!busy} onChange={(e) => e.target.files?.[0] && project(e.target.files[0])} />
        </label>
      </div>
      <ErrorBanner error={error} onClose={() => setError(undefined)} />
      {busy === "projection" && <p className="hint">Projecting (200 steps)…</p>}
      {grid && (
        <div className="grid" data-testid="lat-grid">
          {grid.images.map((img, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: each result replaces the whole grid; a position is an image.
            <figure key={i} className={kept?.w === img.w ? "selected" : ""}>
              <button type="button" onClick={() => keep(img, `seed ${img.seed}`)}>
                <img src={imageSrc(img)} alt={`seed ${img.seed}`} />
              </button>
              <figcaption>seed {img.seed}</figcaption>
            </figure>
          ))}
        </div>
      )}
      {kept && (
        <div className="detail" data-testid="lat-detail">
          <h3>Kept w: {kept.label}</h3>
          {directions.map((d, i) => (
            <label key={d.name}>
              {d.name} {strengths[i]?.toFixed(1)}
              <input
                type="range"
                data-testid={`lat-${d.name}`}
                min={-SLIDER_MAX}
                max={SLIDER_MAX}
                step={0.5}
                value={strengths[i] ?? 0}
                onChange={(e) => applyEdits(strengths.map((s, j) => (j === i ? Number(e.target.value) : s)))}
              />
            </label>
          ))}
          {edited && <ScaledImage src={imageSrc(edited)} alt="edited" testId="lat-edited" name={`${model}-edited.png`} />}
          {projected && <p className="meta">projection PSNR {projected.psnr.toFixed(1)} dB</p>}
        </div>
      )}
      {video && <ScaledImage src={video} alt="keyframe video" testId="lat-video-out" name={`${model}-video.webp`} />}
    </section>
  );
}
