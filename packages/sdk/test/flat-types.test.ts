/**
 * The package ships the flat types scripts/flat-types.ts prints instead of src/types.ts (which infers them
 * from core's zod schemas). Every exported type of the two must be the same: each assignable to the other.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import ts from "typescript";
import { afterAll, expect, it } from "vitest";
import { COMPILER_OPTIONS, flatTypes, writeFlatTypes } from "../scripts/flat-types.ts";

const typesFile = path.resolve(import.meta.dirname, "../src/types.ts");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-flat-types-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it("prints every type of src/types.ts as one the checker finds identical, importing nothing", () => {
  const flat = writeFlatTypes(typesFile, dir);
  const text = fs.readFileSync(flat.ts, "utf8");
  expect(text).not.toMatch(/^\s*import\b/m);
  expect(fs.readFileSync(flat.dts, "utf8")).not.toMatch(/^\s*import\b/m);

  const source = ts.createSourceFile(typesFile, fs.readFileSync(typesFile, "utf8"), ts.ScriptTarget.ES2022);
  const names = source.statements.filter((s) => ts.isTypeAliasDeclaration(s) && !s.typeParameters).map((s) => (s as ts.TypeAliasDeclaration).name.text);
  expect(names).toEqual(expect.arrayContaining(["GenerateRequest", "GenerateResponse", "TranslateResponse", "FineTune", "ApiErrorCode"]));
  const check = path.join(dir, "check.ts");
  fs.writeFileSync(
    check,
    [
      `import type * as Z from ${JSON.stringify(typesFile)};`,
      `import type * as F from ${JSON.stringify(flat.ts)};`,
      "type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;",
      "const same = <T extends true>(_: T) => {};",
      ...names.map((n) => `same<Same<Z.${n}, F.${n}>>(true); // ${n}`),
      "same<Same<Z.TranslateRequest<Blob | string>, F.TranslateRequest<Blob | string>>>(true);",
    ].join("\n"),
  );
  const program = ts.createProgram([check], { ...COMPILER_OPTIONS, lib: ["lib.es2023.d.ts", "lib.dom.d.ts"] });
  const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  expect(errors).toEqual([]);
});

it("keeps the schemas' descriptions as JSDoc", () => {
  const text = flatTypes(typesFile);
  expect(text).toContain("/** 1 = no truncation */\n  truncation_psi?: number;");
  expect(text).toMatch(/images: ImageResult\[\];/);
});
