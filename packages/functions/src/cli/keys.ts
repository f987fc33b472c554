/**
 * `ganserve keys create --tenant <t> [--name <n>] | list | revoke <id>` (each with `--json`): manages the
 * API keys kept in storage. A new key is printed once and only its SHA-256 is stored, so a lost key is
 * revoked and replaced, never recovered. Running API processes pick changes up within a few seconds.
 */
import { parseArgs } from "node:util";
import type { Settings } from "@ganserve/core/config";
import { createStoredKey, listStoredKeys, revokeStoredKey, type StoredKey } from "@ganserve/core/auth/store";
import { openStorage } from "@ganserve/core/storage/index";

export const KEYS_USAGE = `  ganserve keys create --tenant <tenant> [--name <name>] [--json]
  ganserve keys list [--json]
  ganserve keys revoke <key id> [--json]`;

export class KeysUsageError extends Error {}

const row = (k: StoredKey) => [k.id, k.tenant, k.name || "-", k.created_at, k.revoked_at ?? "active", k.hint ? `…${k.hint}` : ""];

function table(rows: string[][]) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** Runs one `keys` subcommand; `print` is console.log in the CLI and a collector in tests. */
export async function keysCommand(argv: string[], settings: Settings, print: (line: string) => void = console.log): Promise<void> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { tenant: { type: "string" }, name: { type: "string" }, json: { type: "boolean" } },
  });
  if (sub === "create" && (!values.tenant || positionals.length)) throw new KeysUsageError("keys create needs --tenant <tenant>");
  if (sub === "revoke" && positionals.length !== 1) throw new KeysUsageError("keys revoke needs one key id");
  if (sub === "list" && positionals.length) throw new KeysUsageError("keys list takes no arguments");
  if (!["create", "list", "revoke"].includes(sub ?? "")) throw new KeysUsageError(sub ? `unknown keys command '${sub}'` : "keys needs a command");

  const opened = await openStorage(settings);
  try {
    if (sub === "create") {
      const { key, record } = await createStoredKey(opened.storage, { tenant: values.tenant!, name: values.name });
      if (values.json) print(JSON.stringify({ id: record.id, tenant: record.tenant, name: record.name, created_at: record.created_at, key }));
      else
        print(
          [
            `created API key ${record.id} for tenant '${record.tenant}'`,
            `  ${key}`,
            `This is the only time the key is shown: store it now. Revoke with \`ganserve keys revoke ${record.id}\`.`,
          ].join("\n"),
        );
    } else if (sub === "list") {
      // Hashes stay out of the listing: they are not secrets, but nobody needs them on a screen.
      const keys = (await listStoredKeys(opened.storage)).map(({ hash: _hash, ...k }) => k);
      if (values.json) print(JSON.stringify({ keys }));
      else if (!keys.length) print("no stored API keys (keys from GANSERVE_API_KEYS or the dev key are not listed)");
      else print(table([["id", "tenant", "name", "created", "revoked", "key"], ...keys.map((k) => row({ ...k, hash: "" }))]));
    } else {
      const r = await revokeStoredKey(opened.storage, positionals[0]);
      if (values.json) print(JSON.stringify({ id: r.id, tenant: r.tenant, revoked_at: r.revoked_at }));
      else print(`revoked ${r.id} (tenant '${r.tenant}') at ${r.revoked_at}; running servers stop accepting it within seconds`);
    }
  } finally {
    await opened.close();
  }
}
