/**
 * The `ganserve` command line: `import` a checkpoint, `seed` the demo models, `eval` a model, manage `keys`,
 * run `parity`.
 * Settings come from the same environment variables as the server (GANSERVE_DATA_DIR etc.).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { loadSettings, SettingsError } from "@ganserve/core/config";
import { FAMILIES } from "@ganserve/core/families";
import { importModel } from "./import.ts";
import { keysCommand, KEYS_USAGE, KeysUsageError } from "./keys.ts";
import { EVAL_USAGE, EvalUsageError } from "./eval.ts";
import { SEED_USAGE, SeedUsageError } from "./seed.ts";

const USAGE = `usage:
  ganserve import <checkpoint> --name <name> [--family ${FAMILIES.join("|")}] [--b-file <G_B checkpoint>]
                  [--version vN] [--description text] [--float16] [--set option=value ...] [--yes]
  ganserve parity [<fixtures dir>] [--engine tfjs|onnx]
${SEED_USAGE}
${KEYS_USAGE}
${EVAL_USAGE}`;

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  switch (command) {
    case "import": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          name: { type: "string" },
          family: { type: "string" },
          "b-file": { type: "string" },
          version: { type: "string" },
          description: { type: "string" },
          float16: { type: "boolean" },
          set: { type: "string", multiple: true },
          yes: { type: "boolean", short: "y" },
        },
      });
      if (positionals.length !== 1 || !values.name) throw new UsageError("import needs one checkpoint file and --name");
      const set: Record<string, unknown> = {};
      for (const kv of values.set ?? []) {
        const i = kv.indexOf("=");
        if (i < 1) throw new UsageError(`--set expects option=value, got '${kv}'`);
        const v = kv.slice(i + 1);
        try {
          set[kv.slice(0, i)] = JSON.parse(v);
        } catch {
          set[kv.slice(0, i)] = v;
        }
      }
      const record = await importModel(
        { file: positionals[0], name: values.name, family: values.family, bFile: values["b-file"], version: values.version, description: values.description, float16: values.float16, set, yes: values.yes },
        loadSettings(),
      );
      console.log(`imported ${record.family} model ${record.name}/${record.version} (${record.weights.bytes} bytes, sha256 ${record.weights.sha256.slice(0, 12)}…)`);
      return;
    }
    case "parity": {
      const { runParity } = await import("./parity.ts");
      process.exitCode = (await runParity(rest)) ? 0 : 1;
      return;
    }
    case "eval": {
      const { runEval } = await import("./eval.ts");
      await runEval(rest, loadSettings());
      return;
    }
    case "keys":
      await keysCommand(rest, loadSettings());
      return;
    case "seed": {
      if (rest.length > 1) throw new SeedUsageError("seed takes at most one models folder");
      const { seedModels } = await import("./seed.ts");
      const { published, present } = await seedModels(loadSettings(), rest[0] ? path.resolve(rest[0]) : undefined);
      console.log(`published: ${published.join(", ") || "none"}; already in the bucket: ${present.join(", ") || "none"}`);
      return;
    }
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return;
    default:
      throw new UsageError(command ? `unknown command '${command}'` : "no command");
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((e) => {
  if (e instanceof UsageError || e instanceof KeysUsageError || e instanceof EvalUsageError || e instanceof SeedUsageError) console.error(`ganserve: ${e.message}\n${USAGE}`);
  else if (e instanceof SettingsError) console.error(`ganserve: configuration error: ${e.message}`);
  else console.error(`ganserve: ${(e as Error).message}`);
  process.exitCode = 2;
});
