import { GanserveError } from "../lib/api.ts";

/** An API or network error with its code and request id; pages and the shell share it. */
export function ErrorBanner({ error, onClose }: { error: unknown; onClose?: () => void }) {
  if (!error) return null;
  const e = error instanceof GanserveError ? error : { code: "error", message: String((error as Error)?.message ?? error), requestId: undefined };
  return (
    <div className="error" role="alert">
      <strong>{e.code}</strong> {e.message}
      {e.requestId && <span className="rid"> · request id {e.requestId}</span>}
      {onClose && (
        <button type="button" className="link" onClick={onClose}>
          dismiss
        </button>
      )}
    </div>
  );
}
