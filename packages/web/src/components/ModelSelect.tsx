import type { ModelInfo } from "../lib/api.ts";

/**
 * Picks one of `models` by name. `withFamily` shows each model's family beside its name, for pages that take
 * models of more than one family and act on each differently.
 */
export function ModelSelect({
  label = "Model",
  testId,
  models,
  value,
  onChange,
  withFamily = false,
}: {
  label?: string;
  testId?: string;
  models: ModelInfo[];
  value: string;
  onChange: (name: string) => void;
  withFamily?: boolean;
}) {
  return (
    <label>
      {label}
      <select data-testid={testId} value={value} onChange={(e) => onChange(e.target.value)}>
        {models.map((m) => (
          <option key={m.name} value={m.name}>
            {withFamily ? `${m.name} (${m.family})` : m.name}
          </option>
        ))}
      </select>
    </label>
  );
}
