/** The main entry must stay loadable in a browser: no Node built-ins, and @ganserve/core (zod) for types only. */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { TRANSLATE_FILE_FIELDS as CORE_TRANSLATE_FILE_FIELDS } from "@ganserve/core/api/inference";
import { TRANSLATE_FILE_FIELDS } from "../src/types.ts";

const src = path.resolve(import.meta.dirname, "../src");

function reachable(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = fs.readFileSync(file, "utf8");
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"(\.[^"]+)"/gms)) reachable(path.resolve(path.dirname(file), m[1]), seen);
  return seen;
}

describe("entries", () => {
  it("keeps the main entry free of Node built-ins and runtime core imports", () => {
    const files = [...reachable(path.join(src, "index.ts"))];
    expect(files.map((f) => path.relative(src, f))).toEqual(expect.arrayContaining(["client.ts", "http.ts", "sse.ts", "resources/fine-tunes.ts"]));
    expect(files.map((f) => path.relative(src, f))).not.toContain("node.ts");
    for (const file of files) {
      const text = fs.readFileSync(file, "utf8");
      const runtimeImports = [...text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1]);
      expect(runtimeImports.filter((s) => !s.startsWith(".")), path.relative(src, file)).toEqual([]);
    }
  });

  it("sends as files exactly the fields the server's schema takes as files", () => {
    expect([...TRANSLATE_FILE_FIELDS]).toEqual([...CORE_TRANSLATE_FILE_FIELDS]);
  });

  it("gives the Node entry everything the main entry has", async () => {
    const main = await import("../src/index.ts");
    const node = await import("../src/node.ts");
    for (const name of Object.keys(main)) expect(node, name).toHaveProperty(name);
    expect(node.Ganserve).not.toBe(main.Ganserve);
    expect(new node.Ganserve({ baseUrl: "http://x", apiKey: "k" })).toBeInstanceOf(main.GanserveClient);
  });
});
