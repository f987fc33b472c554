/** The class of a conditional generator, by the model's class names where it has them; nothing for an unconditional one. */
export function ClassSelect({ count, names, value, onChange }: { count: number; names?: string[]; value: number; onChange: (c: number) => void }) {
  if (count <= 0) return null;
  return (
    <label>
      Class
      <select value={value} onChange={(e) => onChange(Number(e.target.value))}>
        {Array.from({ length: count }, (_, c) => c).map((c) => (
          <option key={c} value={c}>
            {names?.[c] ?? `class ${c}`}
          </option>
        ))}
      </select>
    </label>
  );
}
