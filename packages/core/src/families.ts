/**
 * The generator families ganserve serves and fine-tunes: the one list every other module imports or derives
 * from (the zod `Family` schema of model.json and the API, dataset layouts, trainers, exporters, parity
 * adapters, demo recipes, CLI usage). A leaf module with no imports, so any layer may use it.
 */
export const FAMILIES = ["stylegan2", "cyclegan", "spade", "dcgan"] as const;
export type ModelFamily = (typeof FAMILIES)[number];

export function isFamily(value: unknown): value is ModelFamily {
  return (FAMILIES as readonly unknown[]).includes(value);
}
