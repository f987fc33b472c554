import { useEffect, useRef, useState } from "react";
import { ErrorBanner } from "../components/ErrorBanner.tsx";
import { ModelSelect } from "../components/ModelSelect.tsx";
import { client, type Dataset, type FineTune, type ModelInfo } from "../lib/api.ts";
import { DATASET_FOLDERS, pageFor, type ModelPage } from "../lib/pages.ts";

/** Loss curves as SVG polylines, one per loss term, each scaled to its own range. */
function LossChart({ history }: { history: FineTune["loss_history"] }) {
  if (history.length < 2) return null;
  const names = Object.keys(history[history.length - 1].losses);
  const w = 480;
  const h = 160;
  const x0 = history[0].step;
  const x1 = history[history.length - 1].step || 1;
  const colours = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
  return (
    <svg className="chart" data-testid="loss-chart" viewBox={`0 0 ${w} ${h + 20}`} width={w} height={h + 20}>
      <title>Training losses by step</title>
      {names.map((name, i) => {
        const vals = history.map((p) => p.losses[name]).filter((v) => Number.isFinite(v));
        const lo = Math.min(...vals);
        const hi = Math.max(...vals);
        const pts = history
          .filter((p) => Number.isFinite(p.losses[name]))
          .map((p) => `${((p.step - x0) / Math.max(1, x1 - x0)) * w},${h - ((p.losses[name] - lo) / (hi - lo || 1)) * (h - 10) - 5}`)
          .join(" ");
        return (
          <g key={name}>
            <polyline points={pts} fill="none" stroke={colours[i % colours.length]} strokeWidth={1.5} />
            <text x={4 + i * 90} y={h + 16} fill={colours[i % colours.length]} fontSize={11}>
              {name} {history[history.length - 1].losses[name]?.toFixed(3)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

export function FineTunePage({ models, onPublished, open }: { models: ModelInfo[]; onPublished: () => void; open: (page: ModelPage, model: string) => void }) {
  const [base, setBase] = useState("");
  const [file, setFile] = useState<File>();
  const [dataset, setDataset] = useState<Dataset>();
  const [name, setName] = useState("my-model");
  const [steps, setSteps] = useState(200);
  const [batch, setBatch] = useState(4);
  const [job, setJob] = useState<FineTune>();
  const [busy, setBusy] = useState("");
  const [error, setError] = useState<unknown>();
  const following = useRef<AbortController | undefined>(undefined);

  useEffect(() => {
    if (!base && models.length) setBase(models[0].name);
  }, [models, base]);
  useEffect(() => () => following.current?.abort(), []);
  const baseInfo = models.find((m) => m.name === base);

  async function upload() {
    if (!file || !baseInfo) return;
    setBusy("uploading");
    setError(undefined);
    try {
      const c = client();
      // The upload form accepts this file's size and holds that much of the dataset quota until finalize.
      const created = await c.datasets.create({ layout: baseInfo.family, name: file.name, size_bytes: Math.max(1, file.size) });
      await c.datasets.uploadBytes(created, file);
      setBusy("validating");
      setDataset(await c.datasets.finalize(created.id));
    } catch (e) {
      setError(e);
    } finally {
      setBusy("");
    }
  }

  /** Follows the job's event stream (SDK: fetch streaming with the key in a header) and refreshes on each event. */
  async function follow(id: string) {
    following.current?.abort();
    const ctl = new AbortController();
    following.current = ctl;
    const c = client();
    try {
      for await (const event of c.fineTunes.events(id, { signal: ctl.signal })) {
        if (event.type === "log") continue;
        const ft = await c.fineTunes.get(id);
        setJob(ft);
        if (ft.status === "succeeded") onPublished();
      }
    } catch (e) {
      if (!ctl.signal.aborted) setError(e);
    }
  }

  async function start() {
    if (!dataset || !baseInfo) return;
    setError(undefined);
    try {
      const ft = await client().fineTunes.create({ base_model: base, dataset: dataset.id, name, steps, batch_size: batch });
      setJob(ft);
      void follow(ft.id);
    } catch (e) {
      setError(e);
    }
  }

  const pct = job ? Math.round((100 * job.step) / job.total_steps) : 0;
  return (
    <section>
      <h2>Fine-tune</h2>
      <div className="controls">
        <ModelSelect label="Base model" models={models} value={base} onChange={setBase} withFamily />
        <label>
          Dataset zip ({baseInfo ? DATASET_FOLDERS[baseInfo.family] : ""})
          <input data-testid="ft-file" type="file" accept=".zip,application/zip" onChange={(e) => setFile(e.target.files?.[0])} />
        </label>
        <button type="button" data-testid="ft-upload" disabled={!file || !!busy} onClick={upload}>
          {busy ? `${busy}…` : "Upload"}
        </button>
      </div>
      <ErrorBanner error={error} onClose={() => setError(undefined)} />
      {dataset && (
        <div className="card" data-testid="ft-dataset">
          <strong>{dataset.id}</strong> · {dataset.status} · {dataset.stats?.images} images {JSON.stringify(dataset.stats?.counts_by_folder)}
          {dataset.rejected && dataset.rejected.length > 0 && (
            <details>
              <summary>{dataset.rejected.length} files rejected</summary>
              <ul>
                {dataset.rejected.map((r) => (
                  <li key={r.path}>
                    {r.path}: {r.reason}
                  </li>
                ))}
              </ul>
            </details>
          )}
          <div className="controls">
            <label>
              New model name
              <input value={name} onChange={(e) => setName(e.target.value)} />
            </label>
            <label>
              Steps
              <input type="number" min={1} value={steps} onChange={(e) => setSteps(Number(e.target.value))} />
            </label>
            <label>
              Batch
              <input type="number" min={1} max={64} value={batch} onChange={(e) => setBatch(Number(e.target.value))} />
            </label>
            <button type="button" data-testid="ft-start" onClick={start} disabled={!!job && !["succeeded", "failed", "canceled"].includes(job.status)}>
              Start fine-tune
            </button>
          </div>
        </div>
      )}
      {job && (
        <div className="card" data-testid="ft-job">
          <div>
            <strong>{job.id}</strong> · <span data-testid="ft-status">{job.status}</span> · step {job.step}/{job.total_steps}
            {job.eta_seconds !== undefined && job.status === "running" && ` · ETA ${Math.round(job.eta_seconds)} s`}
          </div>
          <progress max={100} value={pct} />
          <LossChart history={job.loss_history} />
          <div className="samples">
            {job.samples.slice(-3).map((s) => (
              <figure key={s.step}>
                <img src={s.url} alt={`samples at step ${s.step}`} />
                <figcaption>step {s.step}</figcaption>
              </figure>
            ))}
          </div>
          {job.status === "running" || job.status === "queued" ? (
            <button type="button" onClick={() => client().fineTunes.cancel(job.id).then(setJob, setError)}>Cancel</button>
          ) : null}
          {job.result && (
            <button type="button" onClick={() => open(pageFor(job.family), job.result!.model)}>
              Open {job.result.model}/{job.result.version}
            </button>
          )}
          {job.error && <ErrorBanner error={{ message: job.error.message }} />}
        </div>
      )}
    </section>
  );
}
