import type { ModelInfo } from "../lib/api.ts";
import { pageFor, type ModelPage } from "../lib/pages.ts";

export function ModelsPage({ models, open }: { models: ModelInfo[]; open: (page: ModelPage, model: string) => void }) {
  return (
    <section>
      <h2>Models</h2>
      <div className="cards" data-testid="models">
        {models.map((m) => (
          <article key={m.name} className="card model">
            {m.sample_url ? <img src={m.sample_url} alt={`${m.name} sample`} /> : <div className="nosample">{m.family}</div>}
            <h3>{m.name}</h3>
            <p>
              <span className={`badge ${m.family}`}>{m.family}</span> versions {m.versions.join(", ")} {m.owned ? "· yours" : ""}
            </p>
            {m.description && <p className="meta">{m.description}</p>}
            <button type="button" onClick={() => open(pageFor(m.family), m.name)}>Try it</button>
          </article>
        ))}
      </div>
    </section>
  );
}
