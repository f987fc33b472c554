/**
 * Webhook signing secrets at rest: AES-256-GCM (node:crypto) under GANSERVE_SECRET_KEY, so a job record in
 * storage (`jobs/<id>/job.json`) holds only ciphertext, IV and tag. The job id is bound in as associated
 * data, so a sealed secret copied into another job's record does not open there.
 *
 * The key: GANSERVE_SECRET_KEY (base64 of 32 random bytes, e.g. `openssl rand -base64 32`). Production
 * refuses to start without it; locally one is generated into the data dir (`secret-key`, mode 600) like the
 * dev API key, and the local fine-tune workers read the same file.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { SettingsError } from "../config.ts";

export interface SealedSecret {
  alg: "A256GCM";
  /** base64: 12-byte IV, 16-byte tag, ciphertext */
  iv: string;
  tag: string;
  ct: string;
}

export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error("a secret key is 32 bytes");
    this.#key = Buffer.from(key);
  }

  seal(plain: string, context: string): SealedSecret {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const ct = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return { alg: "A256GCM", iv: iv.toString("base64"), tag: cipher.getAuthTag().toString("base64"), ct: ct.toString("base64") };
  }

  /** Throws when the key, the context or any byte differs. */
  open(sealed: SealedSecret, context: string): string {
    if (sealed.alg !== "A256GCM") throw new Error(`unknown secret algorithm ${String(sealed.alg)}`);
    const decipher = createDecipheriv("aes-256-gcm", this.#key, Buffer.from(sealed.iv, "base64"));
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(Buffer.from(sealed.tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ct, "base64")), decipher.final()]).toString("utf8");
  }
}

/** Decodes GANSERVE_SECRET_KEY; undefined when it is not base64 of exactly 32 bytes. */
export function decodeSecretKey(value: string): Buffer | undefined {
  const trimmed = value.trim();
  if (!/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) return undefined;
  const key = Buffer.from(trimmed, "base64");
  return key.length === 32 ? key : undefined;
}

/**
 * For workers, whose only use of the key is opening webhook secrets: without a key the work still runs, and
 * `onMissing` says why its webhooks will not be sent.
 */
export function optionalSecretBox(settings: Parameters<typeof loadSecretKey>[0], onMissing: (err: unknown) => void): SecretBox | undefined {
  try {
    return new SecretBox(loadSecretKey(settings));
  } catch (err) {
    onMissing(err);
    return undefined;
  }
}

/**
 * The key from settings; outside production, generated once into the data dir when unset. Throws a
 * SettingsError (one line) in production without a key.
 */
export function loadSecretKey(settings: { GANSERVE_SECRET_KEY?: string; GANSERVE_PRODUCTION: boolean; dataDir: string }): Buffer {
  if (settings.GANSERVE_SECRET_KEY) {
    const key = decodeSecretKey(settings.GANSERVE_SECRET_KEY);
    if (!key) throw new SettingsError("invalid GANSERVE_SECRET_KEY: must be base64 of 32 bytes (openssl rand -base64 32)");
    return key;
  }
  if (settings.GANSERVE_PRODUCTION)
    throw new SettingsError("GANSERVE_SECRET_KEY is required in production mode (base64 of 32 bytes: openssl rand -base64 32); it encrypts webhook secrets at rest");
  const file = path.join(settings.dataDir, "secret-key");
  try {
    const key = decodeSecretKey(fs.readFileSync(file, "utf8"));
    if (key) return key;
  } catch {
    // first start: fall through and create it
  }
  fs.mkdirSync(settings.dataDir, { recursive: true });
  const key = randomBytes(32);
  // wx: two processes starting at once keep the first one's key.
  try {
    fs.writeFileSync(file, `${key.toString("base64")}\n`, { mode: 0o600, flag: "wx" });
    return key;
  } catch {
    const existing = decodeSecretKey(fs.readFileSync(file, "utf8"));
    if (!existing) throw new SettingsError(`${file}: not a valid secret key (base64 of 32 bytes); delete it to generate a new one`);
    return existing;
  }
}
