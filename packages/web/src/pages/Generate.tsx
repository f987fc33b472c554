import { useEffect, useState } from "react";
import { ClassSelect } from "../components/ClassSelect.tsx";
import { ErrorBanner } from "../components/ErrorBanner.tsx";
import { ModelSelect } from "../components/ModelSelect.tsx";
import { Examples } from "../components/Examples.tsx";
import { ScaledImage } from "../components/ScaledImage.tsx";
import { imageSrc, metricMs, runPrediction, type ModelExample, type ModelInfo, type Prediction } from "../lib/api.ts";
import { parseSeeds } from "../lib/seeds.ts";

export function GeneratePage({ models, initial }: { models: ModelInfo[]; initial?: string }) {
  const [model, setModel] = useState(initial ?? "");
  const [seeds, setSeeds] = useState("0-7");
  const [psi, setPsi] = useState(0.7);
  const [noise, setNoise] = useState<"const" | "random" | "none">("const");
  const [classIdx, setClassIdx] = useState(0);
  const [result, setResult] = useState<Prediction>();
  const [status, setStatus] = useState<string>();
  const [selected, setSelected] = useState<number>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();

  useEffect(() => {
    if (!model && models.length) setModel(initial && models.some((m) => m.name === initial) ? initial : models[0].name);
  }, [models, model, initial]);
  const info = models.find((m) => m.name === model);
  const cDim = Number(info?.input.c_dim ?? 0);
  // A DCGAN maps z straight to an image: truncation and noise are StyleGAN2's (the API refuses them for DCGAN).
  const styleGan = info?.family !== "dcgan";

  const request = (over: { seeds?: number[] | string; class_idx?: number } = {}) => ({
    model,
    seeds: over.seeds ?? parseSeeds(seeds),
    ...(styleGan ? { truncation_psi: psi, noise_mode: noise } : {}),
    ...(cDim > 0 ? { class_idx: over.class_idx ?? classIdx } : {}),
  });

  async function run(over?: Parameters<typeof request>[0]) {
    setBusy(true);
    setError(undefined);
    try {
      const { model: name, ...input } = request(over);
      setResult(await runPrediction(name, input, setStatus));
      setSelected(undefined);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  /** An example is a class and seeds: the form shows them, and they run at once. */
  function runExample(ex: ModelExample) {
    if (ex.class_idx !== undefined) setClassIdx(ex.class_idx);
    if (ex.seeds) setSeeds(ex.seeds.join(", "));
    void run({ seeds: ex.seeds, class_idx: ex.class_idx });
  }

  const images = result?.output ?? [];
  const sel = selected !== undefined ? images[selected] : undefined;
  const one = sel ? { ...request({ class_idx: result?.input.class_idx as number | undefined }), seeds: [sel.seed!] } : undefined;
  const curl = one && `curl -s -H "Authorization: Bearer $GANSERVE_KEY" -H 'content-type: application/json' \\\n  -d '${JSON.stringify(one)}' ${location.origin}/v1/generate`;
  const sdk = one && `const { images } = await ganserve.generate(${JSON.stringify(one, null, 2)});`;

  return (
    <section>
      <h2>Generate</h2>
      {models.length === 0 && <p className="hint">No StyleGAN2 or DCGAN model yet: import one with `npx ganserve import` or fine-tune one.</p>}
      <Examples examples={info?.examples} busy={busy} onRun={runExample} />
      <div className="controls">
        <ModelSelect testId="gen-model" models={models} value={model} onChange={setModel} />
        <label>
          Seeds
          <input data-testid="gen-seeds" value={seeds} onChange={(e) => setSeeds(e.target.value)} placeholder="0-7 or 1, 5, 42" />
        </label>
        {styleGan && (
          <>
            <label>
              Truncation ψ {psi.toFixed(2)}
              <input type="range" min={0} max={1.5} step={0.05} value={psi} onChange={(e) => setPsi(Number(e.target.value))} />
            </label>
            <label>
              Noise
              <select value={noise} onChange={(e) => setNoise(e.target.value as typeof noise)}>
                <option value="const">const</option>
                <option value="random">random</option>
                <option value="none">none</option>
              </select>
            </label>
          </>
        )}
        <ClassSelect count={cDim} names={info?.class_names} value={classIdx} onChange={setClassIdx} />
        <button type="button" data-testid="gen-run" disabled={!model || busy} onClick={() => run()}>
          {busy ? "Generating…" : "Generate"}
        </button>
      </div>
      {status && (
        <p className="meta" data-testid="gen-status">
          {status}
        </p>
      )}
      <ErrorBanner error={error} onClose={() => setError(undefined)} />
      {result && (
        <>
          <p className="meta">
            {result.model}/{result.version} · {images.length} images · {metricMs(result.metrics.total_time)} ms (running {metricMs(result.metrics.predict_time)} ms)
          </p>
          <div className="grid" data-testid="gen-grid">
            {images.map((img, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: each result replaces the whole grid; a position is an image (seeds may repeat).
              <figure key={i} className={selected === i ? "selected" : ""}>
                <button type="button" onClick={() => setSelected(i)}>
                  <img src={imageSrc(img)} alt={`seed ${img.seed}`} />
                </button>
                <figcaption>seed {img.seed}</figcaption>
              </figure>
            ))}
          </div>
        </>
      )}
      {sel && (
        <div className="detail" data-testid="gen-detail">
          <h3>Seed {sel.seed}</h3>
          <pre>{curl}</pre>
          <button type="button" onClick={() => navigator.clipboard?.writeText(curl!)}>Copy curl</button>
          <pre>{sdk}</pre>
          <button type="button" onClick={() => navigator.clipboard?.writeText(sdk!)}>Copy SDK call</button>
          <ScaledImage src={imageSrc(sel)} alt={`seed ${sel.seed}`} name={`${result?.model}-seed${sel.seed}.png`} />
        </div>
      )}
    </section>
  );
}
