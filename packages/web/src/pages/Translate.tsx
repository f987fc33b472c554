import { useEffect, useMemo, useRef, useState } from "react";
import { ErrorBanner } from "../components/ErrorBanner.tsx";
import { Examples } from "../components/Examples.tsx";
import { ModelSelect } from "../components/ModelSelect.tsx";
import { ScaledImage } from "../components/ScaledImage.tsx";
import { base64Of, exampleFile, imageSrc, metricMs, runPrediction, type ModelExample, type ModelInfo, type Prediction } from "../lib/api.ts";
import { decodeLabelImage, encodeLabelPng } from "../lib/label-png.ts";

export function TranslatePage({ models, initial }: { models: ModelInfo[]; initial?: string }) {
  const [model, setModel] = useState(initial ?? "");
  useEffect(() => {
    if (!model && models.length) setModel(initial && models.some((m) => m.name === initial) ? initial : models[0].name);
  }, [models, model, initial]);
  const info = models.find((m) => m.name === model);
  return (
    <section>
      <h2>Translate</h2>
      {models.length === 0 && <p className="hint">No CycleGAN or SPADE model yet.</p>}
      <ModelSelect testId="tr-model" models={models} value={model} onChange={setModel} withFamily />
      {info?.family === "cyclegan" && <CycleGANPanel key={info.name} model={info} />}
      {info?.family === "spade" && <SpadePainter key={info.name} model={info} />}
    </section>
  );
}

function CycleGANPanel({ model }: { model: ModelInfo }) {
  const [input, setInput] = useState<{ file: File; url: string }>();
  const [direction, setDirection] = useState<"AtoB" | "BtoA">("AtoB");
  const [out, setOut] = useState<Prediction>();
  const [status, setStatus] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [over, setOver] = useState(false);
  // One object URL per result, not one per render.
  const outSrc = useMemo(() => (out?.output?.[0] ? imageSrc(out.output[0]) : undefined), [out]);

  async function run(file: File, dir = direction) {
    setBusy(true);
    setError(undefined);
    try {
      setOut(await runPrediction(model.name, { image: await base64Of(file), direction: dir }, setStatus));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  const take = (file?: File, dir = direction) => {
    if (!file) return;
    setInput({ file, url: URL.createObjectURL(file) });
    void run(file, dir);
  };
  /** An example is an input image and the direction it is drawn for. */
  async function runExample(ex: ModelExample) {
    const dir = ex.direction ?? direction;
    setDirection(dir);
    try {
      take(await exampleFile(ex), dir);
    } catch (e) {
      setError(e);
    }
  }

  return (
    <div>
      <Examples examples={model.examples} busy={busy} onRun={runExample} thumb={(ex) => ex.url && <img src={ex.url} alt="" crossOrigin="anonymous" />} />
      <div className="controls">
        <span>Direction</span>
        {(["AtoB", "BtoA"] as const).map((d) => (
          <button type="button"
            key={d}
            className={direction === d ? "toggle on" : "toggle"}
            onClick={() => {
              setDirection(d);
              if (input) void run(input.file, d);
            }}
          >
            {d === "AtoB" ? `${model.domains?.A ?? "A"} → ${model.domains?.B ?? "B"}` : `${model.domains?.B ?? "B"} → ${model.domains?.A ?? "A"}`}
          </button>
        ))}
      </div>
      <label
        className={over ? "drop over" : "drop"}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          take(e.dataTransfer.files[0]);
        }}
      >
        Drop an image here or click to choose
        <input data-testid="tr-file" type="file" accept="image/png,image/jpeg,image/webp" onChange={(e) => take(e.target.files?.[0])} hidden />
      </label>
      <ErrorBanner error={error} onClose={() => setError(undefined)} />
      <div className="pair">
        <figure>{input && <ScaledImage src={input.url} alt="input" target={320} name="input.png" />}<figcaption>before</figcaption></figure>
        <figure>
          {busy ? <div className="spinner" /> : outSrc && <ScaledImage testId="tr-output" src={outSrc} alt="translated" target={320} name={`${model.name}-${direction}.png`} />}
          <figcaption>after{out ? ` · ${metricMs(out.metrics.total_time)} ms` : ""}</figcaption>
        </figure>
      </div>
      {status && (
        <p className="meta" data-testid="tr-status">
          {status}
        </p>
      )}
    </div>
  );
}

const FALLBACK = ["#87ceeb", "#3c8c3c", "#2850c8", "#787878", "#c8783c", "#e6e6e6", "#aa3c3c", "#f0c828", "#6e4628", "#50b4a0"];

/** A label-map painter at the model's size: each class a brush, the output re-synthesised as you paint. */
function SpadePainter({ model }: { model: ModelInfo }) {
  const width = Number(model.input.width) || 64;
  const height = Number(model.input.height) || 64;
  const labelNc = Number(model.input.label_nc) || 1;
  const classes = model.classes ?? Array.from({ length: labelNc }, (_, i) => ({ id: i, name: `class ${i}`, color: FALLBACK[i % FALLBACK.length] }));
  const canvas = useRef<HTMLCanvasElement>(null);
  const ids = useRef(new Uint8Array(width * height));
  const [brush, setBrush] = useState(classes[Math.min(1, classes.length - 1)].id);
  const [size, setSize] = useState(Math.max(2, Math.round(width / 10)));
  const [seed, setSeed] = useState(0);
  // Only a model with a latent z (use_vae) takes a seed; the others refuse one rather than ignore it.
  const takesSeed = model.input.seed === true;
  const [out, setOut] = useState<Prediction>();
  const [status, setStatus] = useState<string>();
  const outSrc = useMemo(() => (out?.output?.[0] ? imageSrc(out.output[0]) : undefined), [out]);
  const [error, setError] = useState<unknown>();
  const painting = useRef(false);
  const pending = useRef<number | undefined>(undefined);
  const scale = Math.max(1, Math.floor(384 / Math.max(width, height)));

  const draw = () => {
    const ctx = canvas.current?.getContext("2d");
    if (!ctx) return;
    const colour = new Map(classes.map((c) => [c.id, c.color]));
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        ctx.fillStyle = colour.get(ids.current[y * width + x]) ?? "#000";
        ctx.fillRect(x * scale, y * scale, scale, scale);
      }
  };

  async function synthesize() {
    try {
      const png = await encodeLabelPng(ids.current, width, height);
      setOut(await runPrediction(model.name, { label_map: await base64Of(png), ...(takesSeed ? { seed } : {}) }, setStatus));
      setError(undefined);
    } catch (e) {
      setError(e);
    }
  }
  const schedule = () => {
    clearTimeout(pending.current);
    pending.current = window.setTimeout(synthesize, 150);
  };
  /** An example is a label map: it replaces the canvas (still paintable) and is synthesised at once. */
  async function runExample(ex: ModelExample) {
    try {
      const map = await decodeLabelImage(await exampleFile(ex));
      if (map.width !== width || map.height !== height) throw new Error(`example "${ex.caption}" is ${map.width}×${map.height}, the model takes ${width}×${height}`);
      ids.current.set(map.ids);
      draw();
      await synthesize();
    } catch (e) {
      setError(e);
    }
  }

  // biome-ignore lint/correctness/useExhaustiveDependencies: a fresh scene once per model, not on every render (draw and synthesize are new closures each render).
  useEffect(() => {
    // Start from a simple scene: sky above ground, so the first output already looks like something.
    const ground = (classes.find((c) => /grass|ground|earth|floor|road/i.test(c.name)) ?? classes[Math.min(1, classes.length - 1)]).id;
    for (let i = 0; i < ids.current.length; i++) ids.current[i] = i < (ids.current.length * 2) / 5 ? classes[0].id : ground;
    draw();
    void synthesize();
  }, [model.name]);

  const paintAt = (e: React.PointerEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const cx = Math.floor(((e.clientX - r.left) / r.width) * width);
    const cy = Math.floor(((e.clientY - r.top) / r.height) * height);
    const half = Math.floor(size / 2);
    for (let y = cy - half; y <= cy + half; y++)
      for (let x = cx - half; x <= cx + half; x++) if (x >= 0 && y >= 0 && x < width && y < height) ids.current[y * width + x] = brush;
    draw();
  };

  return (
    <div>
      <Examples examples={model.examples} onRun={runExample} thumb={(ex) => <LabelThumb example={ex} classes={classes} />} />
      <div className="palette" data-testid="palette">
        {classes.map((c) => (
          <button type="button" key={c.id} className={brush === c.id ? "swatch on" : "swatch"} style={{ background: c.color }} title={c.name} onClick={() => setBrush(c.id)}>
            {c.name}
          </button>
        ))}
        <label>
          Brush {size}px
          <input type="range" min={1} max={Math.max(4, Math.round(width / 3))} value={size} onChange={(e) => setSize(Number(e.target.value))} />
        </label>
        {takesSeed && (
          <label>
            Seed
            <input type="number" min={0} value={seed} onChange={(e) => setSeed(Number(e.target.value))} onBlur={schedule} />
          </label>
        )}
      </div>
      <ErrorBanner error={error} onClose={() => setError(undefined)} />
      <div className="pair">
        <figure>
          <canvas
            data-testid="painter"
            ref={canvas}
            width={width * scale}
            height={height * scale}
            onPointerDown={(e) => {
              painting.current = true;
              paintAt(e);
            }}
            onPointerMove={(e) => painting.current && paintAt(e)}
            onPointerUp={() => {
              painting.current = false;
              schedule();
            }}
            onPointerLeave={() => {
              if (painting.current) schedule();
              painting.current = false;
            }}
          />
          <figcaption>label map</figcaption>
        </figure>
        <figure>
          {outSrc && <ScaledImage testId="spade-output" src={outSrc} alt="synthesised" target={width * scale} name={`${model.name}.png`} />}
          <figcaption>output{out ? ` · ${metricMs(out.metrics.total_time)} ms` : ""}</figcaption>
        </figure>
      </div>
      {status && (
        <p className="meta" data-testid="spade-status">
          {status}
        </p>
      )}
    </div>
  );
}

/** An example label map drawn in its classes' colours (the file itself holds ids 0…n, nearly black). */
function LabelThumb({ example, classes }: { example: ModelExample; classes: { id: number; color: string }[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  // biome-ignore lint/correctness/useExhaustiveDependencies: drawn once per example; the palette is the model's and fixed.
  useEffect(() => {
    let live = true;
    void exampleFile(example)
      .then(decodeLabelImage)
      .then(({ ids, width, height }) => {
        const c = canvas.current;
        if (!live || !c) return;
        c.width = width;
        c.height = height;
        const ctx = c.getContext("2d")!;
        const colour = new Map(classes.map((k) => [k.id, k.color]));
        for (let i = 0; i < ids.length; i++) {
          ctx.fillStyle = colour.get(ids[i]) ?? "#000";
          ctx.fillRect(i % width, Math.floor(i / width), 1, 1);
        }
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [example.url]);
  return <canvas ref={canvas} className="thumb" />;
}
