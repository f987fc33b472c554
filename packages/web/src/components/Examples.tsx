import type { ReactNode } from "react";
import type { ModelExample } from "../lib/api.ts";

/**
 * The example inputs a model ships with (model.json `examples`): one click runs one. Each family's page says
 * how an example looks (`thumb`) and what running it means (`onRun`).
 */
export function Examples({ examples, onRun, thumb, busy }: { examples?: ModelExample[]; onRun: (ex: ModelExample) => void; thumb?: (ex: ModelExample) => ReactNode; busy?: boolean }) {
  if (!examples?.length) return null;
  return (
    <div className="examples" data-testid="examples">
      <span className="meta">Try an example:</span>
      {examples.map((ex) => (
        <button type="button" key={ex.caption} className="example" data-testid="example" disabled={busy} onClick={() => onRun(ex)} title={`Run: ${ex.caption}`}>
          {thumb?.(ex)}
          <span>{ex.caption}</span>
        </button>
      ))}
    </div>
  );
}
