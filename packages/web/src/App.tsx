import { useCallback, useEffect, useState } from "react";
import { ErrorBanner } from "./components/ErrorBanner.tsx";
import { client, getTypedKey, loadDevKey, setApiKey, type ModelInfo } from "./lib/api.ts";
import { pageFor } from "./lib/pages.ts";
import { GeneratePage } from "./pages/Generate.tsx";
import { TranslatePage } from "./pages/Translate.tsx";
import { FineTunePage } from "./pages/FineTune.tsx";
import { ModelsPage } from "./pages/Models.tsx";
import { LatentsPage } from "./pages/Latents.tsx";
import "./styles.css";

const PAGES = ["generate", "latent-space", "translate", "fine-tune", "models"] as const;
type Page = (typeof PAGES)[number];

/** `#/generate?model=x`: the page and an optional model to open it on. */
function readHash(): { page: Page; model?: string } {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const page = (PAGES as readonly string[]).includes(path) ? (path as Page) : "generate";
  return { page, model: new URLSearchParams(query).get("model") ?? undefined };
}

export function App() {
  const [route, setRoute] = useState(readHash);
  const [key, setKey] = useState(getTypedKey);
  // Local mode: the server hands its dev key to this page; undefined until asked, "" when there is none.
  const [devKey, setDevKey] = useState<string>();
  // undefined until the first list arrives, so the pages do not say "no model yet" while it loads.
  const [models, setModels] = useState<ModelInfo[]>();
  const [error, setError] = useState<unknown>();

  useEffect(() => {
    const on = () => setRoute(readHash());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);

  useEffect(() => {
    void loadDevKey().then((k) => setDevKey(k ?? ""));
  }, []);

  const refresh = useCallback(() => {
    if (!key && !devKey) return;
    client().models.list().then(({ models: m }) => {
      setModels(m);
      setError(undefined);
    }, setError);
  }, [key, devKey]);
  useEffect(refresh, [refresh]);

  const open = (page: Page, model?: string) => (location.hash = `#/${page}${model ? `?model=${encodeURIComponent(model)}` : ""}`);

  return (
    <div className="app">
      <header>
        <h1>ganserve</h1>
        <nav>
          {PAGES.map((p) => (
            <a key={p} href={`#/${p}`} className={route.page === p ? "active" : ""}>
              {p.replace("-", " ")}
            </a>
          ))}
          <a href="/docs">API docs</a>
        </nav>
        <label className="key">
          API key
          <input
            type="password"
            data-testid="api-key"
            placeholder={devKey ? "using the local dev key" : "paste the key npm start printed"}
            value={key}
            onChange={(e) => {
              setApiKey(e.target.value);
              setKey(e.target.value);
            }}
          />
        </label>
      </header>
      <main>
        <ErrorBanner error={error} />
        <KeyNote typed={key} devKey={devKey} />
        {models === undefined ? (
          (key || devKey) && !error && <p className="hint">Loading models…</p>
        ) : (
          <>
            {/* keyed by the route's model: a link to another model (#/translate?model=x) opens on it */}
            {route.page === "generate" && <GeneratePage key={route.model} models={models.filter((m) => pageFor(m.family) === "generate")} initial={route.model} />}
            {route.page === "latent-space" && <LatentsPage models={models.filter((m) => m.family === "stylegan2")} />}
            {route.page === "translate" && <TranslatePage key={route.model} models={models.filter((m) => pageFor(m.family) === "translate")} initial={route.model} />}
            {route.page === "fine-tune" && <FineTunePage models={models} onPublished={refresh} open={open} />}
            {route.page === "models" && <ModelsPage models={models} open={open} />}
          </>
        )}
      </main>
    </div>
  );
}

/** Which key the page uses, and why no key needs pasting on a local server. */
function KeyNote({ typed, devKey }: { typed: string; devKey?: string }) {
  if (typed) return null;
  if (devKey)
    return (
      <p className="hint local" data-testid="dev-key-note">
        Local mode: this page uses the dev API key of the server on this machine (stored in .ganserve/dev-api-key), so nothing needs pasting.
        A production server never hands out a key; paste one above to use another.
      </p>
    );
  if (devKey === "") return <p className="hint">Enter your API key above. `npm start` prints one and stores it in .ganserve/dev-api-key.</p>;
  return null;
}
