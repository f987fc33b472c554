import { useCallback, useEffect, useState } from "react";
import { ErrorBanner } from "./components/ErrorBanner.tsx";
import { client, getApiKey, setApiKey, type ModelInfo } from "./lib/api.ts";
import { pageFor } from "./lib/pages.ts";
import { GeneratePage } from "./pages/Generate.tsx";
import { TranslatePage } from "./pages/Translate.tsx";
import { FineTunePage } from "./pages/FineTune.tsx";
import { ModelsPage } from "./pages/Models.tsx";
import "./styles.css";

const PAGES = ["generate", "translate", "fine-tune", "models"] as const;
type Page = (typeof PAGES)[number];

/** `#/generate?model=x`: the page and an optional model to open it on. */
function readHash(): { page: Page; model?: string } {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const page = (PAGES as readonly string[]).includes(path) ? (path as Page) : "generate";
  return { page, model: new URLSearchParams(query).get("model") ?? undefined };
}

export function App() {
  const [route, setRoute] = useState(readHash);
  const [key, setKey] = useState(getApiKey);
  const [models, setModels] = useState<ModelInfo[]>([]);
  const [error, setError] = useState<unknown>();

  useEffect(() => {
    const on = () => setRoute(readHash());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);

  const refresh = useCallback(() => {
    if (!key) return;
    client().models.list().then(({ models: m }) => {
      setModels(m);
      setError(undefined);
    }, setError);
  }, [key]);
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
            placeholder="paste the key npm start printed"
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
        {!key && <p className="hint">Enter your API key above. `npm start` prints one and stores it in .ganserve/dev-api-key.</p>}
        {route.page === "generate" && <GeneratePage models={models.filter((m) => pageFor(m.family) === "generate")} initial={route.model} />}
        {route.page === "translate" && <TranslatePage models={models.filter((m) => pageFor(m.family) === "translate")} initial={route.model} />}
        {route.page === "fine-tune" && <FineTunePage models={models} onPublished={refresh} open={open} />}
        {route.page === "models" && <ModelsPage models={models} open={open} />}
      </main>
    </div>
  );
}
