/**
 * API keys. Only SHA-256 hashes are kept in memory or on disk, and every check compares against all known
 * hashes with `timingSafeEqual`, so neither the comparison nor an early exit leaks how close a guess was.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export interface ApiKeyRecord {
  /** hex SHA-256 of the key */
  hash: string;
  tenant: string;
  name: string;
  /**
   * Stable id that is safe to log and to key rate limits on (`key_…` for stored keys, `env-…` for configured
   * ones). Optional so records built elsewhere keep compiling; `keyId` derives one from the hash.
   */
  id?: string;
}

/** Tenant names: short, lowercase, usable in storage keys and log lines without escaping. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** The id a record is rate-limited and logged under; a hash prefix never lets anyone rebuild the key. */
export const keyId = (record: ApiKeyRecord) => record.id ?? `env-${record.hash.slice(0, 12)}`;

export const hashKey = (key: string) => createHash("sha256").update(key, "utf8").digest("hex");

export const generateKey = (prefix = "gs") => `${prefix}_${randomBytes(24).toString("base64url")}`;

export class KeyRing {
  private records: { digest: Buffer; record: ApiKeyRecord }[] = [];

  constructor(records: ApiKeyRecord[]) {
    this.setRecords(records);
  }

  /**
   * Swaps the whole set at once, so a verify running concurrently with a refresh sees either the old or the
   * new set, never a half-built one. Malformed hashes are dropped: a digest of the wrong length would make
   * timingSafeEqual throw on every request.
   */
  protected setRecords(records: ApiKeyRecord[]) {
    this.records = records
      .filter((record) => /^[0-9a-f]{64}$/.test(record.hash))
      .map((record) => ({ digest: Buffer.from(record.hash, "hex"), record }));
  }

  /** Keys given as `key` (tenant "default") or `tenant:key`, comma-separated, as in GANSERVE_API_KEYS. */
  static fromList(list: string): KeyRing {
    const records = list
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .map((entry, i) => {
        const m = /^([a-z0-9][a-z0-9_-]{0,62}):(.+)$/.exec(entry);
        const [tenant, key] = m ? [m[1], m[2]] : ["default", entry];
        const hash = hashKey(key);
        return { hash, tenant, name: `env-${i + 1}`, id: `env-${hash.slice(0, 12)}` };
      });
    return new KeyRing(records);
  }

  get size() {
    return this.records.length;
  }

  /** The records without their digests, for listing. */
  list(): ApiKeyRecord[] {
    return this.records.map((r) => r.record);
  }

  /** The record for a presented key, or undefined. Constant time in the key's content. */
  verify(key: string): ApiKeyRecord | undefined {
    const digest = createHash("sha256").update(key, "utf8").digest();
    let found: ApiKeyRecord | undefined;
    for (const r of this.records) if (timingSafeEqual(digest, r.digest)) found ??= r.record;
    return found;
  }
}

/** The key `npm start` prints when none is configured: generated once, kept in the data dir (mode 600). */
export function ensureDevKey(dataDir: string): string {
  const file = path.join(dataDir, "dev-api-key");
  try {
    const existing = fs.readFileSync(file, "utf8").trim();
    if (existing) return existing;
  } catch {
    // first start: fall through and create it
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const key = generateKey("gs_dev");
  fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}
