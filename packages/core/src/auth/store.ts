/**
 * API keys managed with `ganserve keys`, kept in storage as `auth/keys/<id>.json` (storage/keys.ts's
 * `authKeys`). Only the SHA-256 of a key is stored; the key itself is shown once, when it is created. Storage is the one place every API process
 * (local server, GPU containers, Lambda) already shares, so a key created or revoked there reaches all of
 * them without a deploy.
 */
import { randomBytes } from "node:crypto";
import { ApiError } from "../errors.ts";
import { authKeys } from "../storage/keys.ts";
import type { Storage } from "../storage/storage.ts";
import { generateKey, hashKey, KeyRing, TENANT_PATTERN, type ApiKeyRecord } from "./keys.ts";

const KEY_ID = /^key_[A-Za-z0-9]{16}$/;

export interface StoredKey {
  id: string;
  /** hex SHA-256 of the key */
  hash: string;
  tenant: string;
  name: string;
  created_at: string;
  revoked_at?: string;
  /** The key's last four characters, so a person can tell keys apart in `keys list`. */
  hint?: string;
}

const keyPath = authKeys.key;

function checkId(id: string) {
  // Ids become storage keys: anything but the generated shape is refused before it can name another object.
  if (!KEY_ID.test(id)) throw new ApiError("not_found", `API key '${id}' does not exist`);
}

function parseStored(raw: unknown): StoredKey | undefined {
  const r = raw as Partial<StoredKey> | undefined;
  if (!r || typeof r !== "object") return undefined;
  if (typeof r.id !== "string" || !KEY_ID.test(r.id)) return undefined;
  if (typeof r.hash !== "string" || !/^[0-9a-f]{64}$/.test(r.hash)) return undefined;
  if (typeof r.tenant !== "string" || !TENANT_PATTERN.test(r.tenant)) return undefined;
  return r as StoredKey;
}

/** Creates a key for a tenant. The returned `key` exists nowhere else: print it once and forget it. */
export async function createStoredKey(storage: Storage, opts: { tenant: string; name?: string }): Promise<{ key: string; record: StoredKey }> {
  if (!TENANT_PATTERN.test(opts.tenant))
    throw new ApiError("validation_failed", `tenant '${opts.tenant}' must match ${TENANT_PATTERN.source}`);
  const name = opts.name ?? "";
  if (name.length > 200 || /\p{Cc}/u.test(name)) throw new ApiError("validation_failed", "name must be at most 200 printable characters");
  const id = `key_${randomBytes(16).toString("base64url").replace(/[^A-Za-z0-9]/g, "").slice(0, 16).padEnd(16, "0")}`;
  const key = generateKey("gs");
  const record: StoredKey = { id, hash: hashKey(key), tenant: opts.tenant, name, created_at: new Date().toISOString(), hint: key.slice(-4) };
  await storage.putJson(keyPath(id), record);
  return { key, record };
}

/** Every stored key, revoked ones included, oldest first. Unreadable records are skipped, not fatal. */
export async function listStoredKeys(storage: Storage): Promise<StoredKey[]> {
  const out: StoredKey[] = [];
  for (const o of await storage.list(authKeys.root)) {
    if (!o.key.endsWith(".json")) continue;
    let raw: unknown;
    try {
      raw = await storage.getJson(o.key);
    } catch (e) {
      if (e instanceof SyntaxError) continue;
      throw e;
    }
    const r = parseStored(raw);
    if (r) out.push(r);
  }
  return out.sort((a, b) => a.created_at.localeCompare(b.created_at));
}

/** Marks a key revoked (the record stays, for the audit trail). Revoking twice keeps the first time. */
export async function revokeStoredKey(storage: Storage, id: string): Promise<StoredKey> {
  checkId(id);
  const r = parseStored(await storage.getJson(keyPath(id)));
  if (!r) throw new ApiError("not_found", `API key '${id}' does not exist`);
  if (r.revoked_at) return r;
  const revoked = { ...r, revoked_at: new Date().toISOString() };
  await storage.putJson(keyPath(id), revoked);
  return revoked;
}

export interface StoredKeyRingOptions {
  /** How stale the stored set may get: a revocation is honoured within about this long. */
  ttlMs?: number;
  /** Reports refresh failures; the ring keeps serving the last good set meanwhile. */
  onError?: (e: unknown) => void;
}

/**
 * A KeyRing of the configured keys (GANSERVE_API_KEYS or the dev key) plus the stored ones, refreshed in the
 * background every `ttlMs`. `verify` stays synchronous and never waits on storage: a storage outage must not
 * turn into an authentication outage, so the last good set keeps answering (revocations made during the
 * outage take effect once storage is back).
 */
export class StoredKeyRing extends KeyRing {
  private readonly ttlMs: number;
  private stored: ApiKeyRecord[] = [];
  /** etag and parsed record per object, so a refresh only reads keys that changed. */
  private readonly seen = new Map<string, { etag?: string; record?: StoredKey }>();
  private refreshedAt = 0;
  private inflight?: Promise<void>;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly storage: Storage,
    private readonly configured: ApiKeyRecord[],
    private readonly opts: StoredKeyRingOptions = {},
  ) {
    super(configured);
    this.ttlMs = opts.ttlMs ?? 2000;
  }

  /** Loads the stored keys once (so the first request already knows them) and starts the refresh timer. */
  static async open(storage: Storage, configured: KeyRing | ApiKeyRecord[], opts: StoredKeyRingOptions = {}): Promise<StoredKeyRing> {
    const ring = new StoredKeyRing(storage, Array.isArray(configured) ? configured : configured.list(), opts);
    try {
      await ring.refresh();
    } catch (e) {
      // Starting without storage is allowed (configured keys still work); the timer keeps trying.
      opts.onError?.(e);
    }
    ring.start();
    return ring;
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => void this.refresh().catch((e) => this.opts.onError?.(e)), this.ttlMs);
    // The timer alone must not keep a CLI or a test process alive.
    this.timer.unref();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Milliseconds since the stored set was last read successfully. */
  get age() {
    return this.refreshedAt ? Date.now() - this.refreshedAt : Infinity;
  }

  override verify(key: string): ApiKeyRecord | undefined {
    // Frozen runtimes (Lambda between invocations) skip timer ticks: catch up on the first request after.
    if (this.age > this.ttlMs * 2 && !this.inflight) void this.refresh().catch((e) => this.opts.onError?.(e));
    return super.verify(key);
  }

  /** Re-reads the stored keys; concurrent callers share one read. */
  refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load() {
    const objects = (await this.storage.list(authKeys.root)).filter((o) => o.key.endsWith(".json"));
    const present = new Set(objects.map((o) => o.key));
    for (const k of [...this.seen.keys()]) if (!present.has(k)) this.seen.delete(k);
    for (const o of objects) {
      const prev = this.seen.get(o.key);
      if (prev && prev.etag !== undefined && prev.etag === o.etag) continue;
      let record: StoredKey | undefined;
      try {
        record = parseStored(await this.storage.getJson(o.key));
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
      }
      this.seen.set(o.key, { etag: o.etag, record });
    }
    this.stored = [...this.seen.values()]
      .map((v) => v.record)
      .filter((r): r is StoredKey => r !== undefined && !r.revoked_at)
      .map((r) => ({ id: r.id, hash: r.hash, tenant: r.tenant, name: r.name }));
    this.setRecords([...this.configured, ...this.stored]);
    this.refreshedAt = Date.now();
  }
}
