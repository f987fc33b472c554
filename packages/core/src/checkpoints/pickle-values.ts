/**
 * How Python objects from a pickle look on our side. Nothing here can run code: a class from the pickle is only
 * ever a name (PyGlobal) or an inert record of its constructor arguments and state (PyObject).
 *
 * Python → JS: None → null, bool → boolean, int → number (bigint when beyond 2^53), float → number,
 * str → string, bytes → Uint8Array, list/tuple → array, dict/OrderedDict/EasyDict → Map, set → Set.
 */

/** A module-level name the pickle refers to; the allow-list decides what calling it does. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An instance of a class we do not model: its constructor arguments and its __dict__ (from BUILD) as data. */
export class PyObject {
  state: unknown = undefined;
  constructor(
    readonly cls: string,
    readonly args: unknown[] = [],
  ) {}
  /** __dict__ as a Map, when BUILD gave one. */
  get dict(): Map<unknown, unknown> | undefined {
    if (this.state instanceof Map) return this.state;
    // BUILD with (dict_state, slot_state)
    if (Array.isArray(this.state) && this.state[0] instanceof Map) return this.state[0];
    return undefined;
  }
}

/** Attributes set by BUILD on dict subclasses (OrderedDict._metadata, EasyDict fields); kept aside so the Map stays a plain mapping. */
export const dictAttributes = new WeakMap<Map<unknown, unknown>, unknown>();

export const isPyDict = (v: unknown): v is Map<unknown, unknown> => v instanceof Map;

export function describe(v: unknown): string {
  if (v === null) return "None";
  if (v instanceof PyGlobal) return `global ${v.qualified}`;
  if (v instanceof PyObject) return `${v.cls} object`;
  if (v instanceof Map) return "dict";
  if (v instanceof Uint8Array) return "bytes";
  if (Array.isArray(v)) return "tuple/list";
  return typeof v;
}
