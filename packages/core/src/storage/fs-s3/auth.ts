/**
 * Request authentication for the embedded S3 server, as S3 does it: AWS Signature Version 4 in the
 * Authorization header or in a presigned URL's query. The expected signature is computed by the AWS SDK's
 * own signer (`@smithy/signature-v4`, SHA-256 from `@smithy/core/checksum`) over the request as received —
 * this file only takes the request apart and compares; it holds no SigV4 crypto of its own. A browser POST
 * upload (S3's HTML form) is checked the same way: its policy's signature is an HMAC with the signer's own
 * derived signing key (`getSigningKey`), and its expiration and conditions are enforced in `verifyPostPolicy`.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { Sha256 } from "@smithy/core/checksum";
import { getSigningKey, SignatureV4 } from "@smithy/signature-v4";
import { S3Error } from "./errors.ts";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export type Query = Record<string, string | string[]>;

/** What a verified request declared about its body. */
export interface Verified {
  /** hex SHA-256 the body must match, or undefined (UNSIGNED-PAYLOAD, presigned URLs) */
  payloadSha256?: string;
  presigned: boolean;
}

const MAX_SKEW_MS = 15 * 60_000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
const HEX64 = /^[0-9a-f]{64}$/;

/** Splits a raw query string the way S3 reads it: `+` is a plus, not a space. Throws 400 on bad escapes. */
export function parseQuery(raw: string): Query {
  const out: Query = {};
  if (!raw) return out;
  for (const part of raw.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    let k: string;
    let v: string;
    try {
      k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
      v = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1));
    } catch {
      throw new S3Error(400, "InvalidArgument", "The query string is not correctly encoded");
    }
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** `20261205T010203Z` → Date, or undefined when malformed. */
function parseAmzDate(s: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s ?? "");
  if (!m) return undefined;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

const sameString = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const denied = (message: string) => new S3Error(403, "AccessDenied", message);
const mismatch = () =>
  new S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");

export class RequestVerifier {
  private readonly signer: SignatureV4;

  constructor(
    private readonly credentials: Credentials,
    private readonly now: () => number = Date.now,
  ) {
    this.signer = new SignatureV4({ credentials, region: "us-east-1", service: "s3", sha256: Sha256, uriEscapePath: false, applyChecksum: true });
  }

  /** Resolves when the request is signed by our credentials; throws a 400/403 S3Error otherwise. */
  async verify(req: { method: string; path: string; query: Query; headers: IncomingHttpHeaders }): Promise<Verified> {
    const auth = first(req.headers.authorization);
    const hasQueryAuth = Object.keys(req.query).some((k) => k.toLowerCase() === "x-amz-algorithm" || k.toLowerCase() === "x-amz-signature");
    if (auth !== undefined && hasQueryAuth)
      throw new S3Error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified");
    if (auth !== undefined) return this.verifyHeader(req, auth);
    if (hasQueryAuth) return this.verifyPresigned(req);
    throw denied("Anonymous access is not allowed: sign the request with Signature Version 4");
  }

  private parseCredential(credential: string, date: Date): { region: string } {
    const parts = credential.split("/");
    if (parts.length !== 5) throw new S3Error(400, "AuthorizationHeaderMalformed", "The credential is malformed");
    const [akid, day, region, service, terminator] = parts;
    if (!sameString(akid, this.credentials.accessKeyId))
      throw new S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
    if (service !== "s3" || terminator !== "aws4_request" || day !== date.toISOString().slice(0, 10).replace(/-/g, ""))
      throw new S3Error(400, "AuthorizationHeaderMalformed", "The credential scope does not match the request date, service or terminator");
    return { region };
  }

  /** Only the headers the client said it signed, as the signer must see them. */
  private signedHeaders(headers: IncomingHttpHeaders, names: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of names) {
      const v = headers[n];
      if (v !== undefined) out[n] = Array.isArray(v) ? v.join(",") : v;
    }
    return out;
  }

  private async verifyHeader(req: { method: string; path: string; query: Query; headers: IncomingHttpHeaders }, auth: string): Promise<Verified> {
    if (auth.startsWith("AWS "))
      throw new S3Error(400, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");
    const m = /^AWS4-HMAC-SHA256 +Credential=([^,\s]+), *SignedHeaders=([^,\s]+), *Signature=([0-9a-f]{64})\s*$/.exec(auth);
    if (!m) throw new S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed");
    const [, credential, signedList, signature] = m;
    const date = parseAmzDate(first(req.headers["x-amz-date"]));
    if (!date) throw denied("AWS authentication requires a valid x-amz-date header");
    if (Math.abs(this.now() - date.getTime()) > MAX_SKEW_MS)
      throw new S3Error(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.");
    const { region } = this.parseCredential(credential, date);
    const payload = first(req.headers["x-amz-content-sha256"]);
    if (payload === undefined) throw new S3Error(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
    if (payload.startsWith("STREAMING-"))
      throw new S3Error(501, "NotImplemented", "Chunked (aws-chunked) uploads are not supported by the embedded store");
    if (payload !== "UNSIGNED-PAYLOAD" && !HEX64.test(payload))
      throw new S3Error(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a hex SHA-256");
    const names = signedList.split(";");
    if (!names.includes("host")) throw denied("The host header must be signed");
    const headers = this.signedHeaders(req.headers, names);
    headers["x-amz-content-sha256"] = payload;
    const signed = await this.signer.sign(
      { method: req.method, protocol: "http:", hostname: "", path: req.path, query: req.query, headers },
      { signingDate: date, signingRegion: region, signingService: "s3", signableHeaders: new Set(names) },
    );
    const expected = /SignedHeaders=([^,]+), Signature=([0-9a-f]+)$/.exec(String(signed.headers.authorization ?? ""));
    if (!expected || expected[1] !== signedList || !sameString(expected[2], signature)) throw mismatch();
    return { payloadSha256: payload === "UNSIGNED-PAYLOAD" ? undefined : payload, presigned: false };
  }

  private async verifyPresigned(req: { method: string; path: string; query: Query; headers: IncomingHttpHeaders }): Promise<Verified> {
    const q = (name: string) => first(req.query[name]);
    const algorithm = q("X-Amz-Algorithm");
    const credential = q("X-Amz-Credential");
    const signedList = q("X-Amz-SignedHeaders");
    const signature = q("X-Amz-Signature");
    const expiresRaw = q("X-Amz-Expires");
    const date = parseAmzDate(q("X-Amz-Date"));
    if (algorithm !== "AWS4-HMAC-SHA256" || !credential || !signedList || !signature || !expiresRaw || !date)
      throw new S3Error(400, "AuthorizationQueryParametersError", "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
    if (!/^\d{1,7}$/.test(expiresRaw) || +expiresRaw < 1 || +expiresRaw > MAX_PRESIGN_SECONDS)
      throw new S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800 seconds");
    const expiresIn = +expiresRaw;
    const now = this.now();
    if (date.getTime() - now > MAX_SKEW_MS) throw denied("Request is not valid yet");
    if (now > date.getTime() + expiresIn * 1000) throw denied("Request has expired");
    const { region } = this.parseCredential(credential, date);
    const names = signedList.split(";");
    if (!names.includes("host")) throw denied("The host header must be signed");
    const headers = this.signedHeaders(req.headers, names);
    const query: Query = { ...req.query };
    delete query["X-Amz-Signature"];
    // A presigned URL's payload is always UNSIGNED-PAYLOAD. The SDK carries that as an X-Amz-Content-Sha256
    // query parameter (a hoisted header); give the signer the same value under the same name so it hashes
    // the request exactly as the SDK's presigner did, and hoists it back onto the same query key.
    const unsignable = new Set<string>();
    const shaKey = Object.keys(query).find((k) => k.toLowerCase() === "x-amz-content-sha256");
    if (shaKey) {
      if (first(query[shaKey]) !== "UNSIGNED-PAYLOAD") throw new S3Error(400, "InvalidArgument", "A presigned URL's payload must be UNSIGNED-PAYLOAD");
      headers[shaKey] = "UNSIGNED-PAYLOAD";
    } else {
      headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
      unsignable.add("x-amz-content-sha256");
    }
    const unhoistable = new Set([...names, ...unsignable]);
    const presigned = await this.signer.presign(
      { method: req.method, protocol: "http:", hostname: "", path: req.path, query, headers },
      { signingDate: date, expiresIn, signingRegion: region, signingService: "s3", signableHeaders: new Set(names), unhoistableHeaders: unhoistable, unsignableHeaders: unsignable },
    );
    const expectedList = first(presigned.query?.["X-Amz-SignedHeaders"] ?? undefined);
    const expected = first(presigned.query?.["X-Amz-Signature"] ?? undefined);
    if (expectedList !== signedList || !expected || !sameString(expected, signature)) throw mismatch();
    return { presigned: true };
  }
}

/** One condition of a POST policy, parsed. */
type PolicyCondition =
  | { kind: "eq"; field: string; value: string }
  | { kind: "starts-with"; field: string; value: string }
  | { kind: "content-length-range"; min: number; max: number };

/** What a verified POST policy allows. */
export interface VerifiedPost {
  /** content-length-range of the policy (S3 allows any size up to its own limit without one) */
  minBytes: number;
  maxBytes?: number;
}

/** Form fields S3 does not match against the policy's conditions. */
const UNCONDITIONED = new Set(["policy", "x-amz-signature", "file"]);

const policyFailed = (what: string) => denied(`Invalid according to Policy: ${what}`);

function parseConditions(raw: unknown): PolicyCondition[] {
  if (!Array.isArray(raw)) throw policyFailed("Policy has no conditions");
  const out: PolicyCondition[] = [];
  const fieldOf = (f: unknown) => {
    if (typeof f !== "string" || !f.startsWith("$")) throw policyFailed(`Policy Condition has an invalid field: ${JSON.stringify(f)}`);
    return f.slice(1).toLowerCase();
  };
  for (const c of raw) {
    if (Array.isArray(c)) {
      const op = String(c[0]).toLowerCase();
      if (op === "content-length-range") {
        const [, min, max] = c;
        if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min < 0 || max < min) throw policyFailed("Policy Condition content-length-range is invalid");
        out.push({ kind: "content-length-range", min, max });
      } else if ((op === "eq" || op === "starts-with") && c.length === 3 && typeof c[2] === "string") {
        out.push({ kind: op, field: fieldOf(c[1]), value: c[2] });
      } else throw policyFailed(`Policy Condition is not supported: ${JSON.stringify(c)}`);
    } else if (c && typeof c === "object") {
      const entries = Object.entries(c as Record<string, unknown>);
      if (entries.length !== 1 || typeof entries[0][1] !== "string") throw policyFailed(`Policy Condition is invalid: ${JSON.stringify(c)}`);
      out.push({ kind: "eq", field: entries[0][0].toLowerCase(), value: entries[0][1] as string });
    } else throw policyFailed(`Policy Condition is invalid: ${JSON.stringify(c)}`);
  }
  return out;
}

/**
 * Checks a browser POST upload's form fields (names as sent) as S3 does: the policy is signed by our key
 * (an HMAC of the base64 policy with the SigV4 signing key of the credential's day and region), it has not
 * expired, every condition holds (the bucket's against `bucket`), and every field but policy, signature, file
 * and x-ignore-* is covered by a condition. Throws 400/403 S3Errors; resolves with the size bounds.
 */
export async function verifyPostPolicy(
  credentials: Credentials,
  bucket: string,
  form: Map<string, string>,
  now: number = Date.now(),
): Promise<VerifiedPost> {
  const field = (name: string) => form.get(name);
  const policy = field("policy");
  const signature = field("x-amz-signature");
  const algorithm = field("x-amz-algorithm");
  const credential = field("x-amz-credential");
  const date = parseAmzDate(field("x-amz-date"));
  if (form.has("awsaccesskeyid") || form.has("signature"))
    throw new S3Error(400, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");
  if (policy === undefined || signature === undefined || !credential || !date)
    throw denied("Bucket POST must contain the fields policy, x-amz-algorithm, x-amz-credential, x-amz-date and x-amz-signature");
  if (algorithm !== "AWS4-HMAC-SHA256") throw new S3Error(400, "InvalidArgument", "x-amz-algorithm must be AWS4-HMAC-SHA256");
  const parts = credential.split("/");
  if (parts.length !== 5) throw new S3Error(400, "InvalidArgument", "The x-amz-credential field is malformed");
  const [akid, day, region, service, terminator] = parts;
  if (!sameString(akid, credentials.accessKeyId))
    throw new S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
  if (service !== "s3" || terminator !== "aws4_request" || day !== date.toISOString().slice(0, 10).replace(/-/g, ""))
    throw new S3Error(400, "InvalidArgument", "The credential scope does not match the request date, service or terminator");
  const key = await getSigningKey(Sha256, credentials, day, region, "s3");
  const mac = new Sha256(key);
  mac.update(new TextEncoder().encode(policy));
  const expected = Buffer.from(await mac.digest()).toString("hex");
  if (!HEX64.test(signature) || !sameString(expected, signature)) throw mismatch();

  // Signed by us: what it says can be trusted, what it allows must still hold for this form.
  let doc: { expiration?: unknown; conditions?: unknown };
  try {
    doc = JSON.parse(Buffer.from(policy, "base64").toString("utf8"));
  } catch {
    throw new S3Error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.");
  }
  const expiration = typeof doc.expiration === "string" ? Date.parse(doc.expiration) : Number.NaN;
  if (Number.isNaN(expiration)) throw new S3Error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value.");
  if (now > expiration) throw policyFailed("Policy expired.");
  const conditions = parseConditions(doc.conditions);
  const value = (name: string) => (name === "bucket" ? bucket : field(name));
  const covered = new Set<string>(["bucket"]);
  let range: { min: number; max: number } | undefined;
  for (const c of conditions) {
    if (c.kind === "content-length-range") {
      range = range ? { min: Math.max(range.min, c.min), max: Math.min(range.max, c.max) } : { min: c.min, max: c.max };
      continue;
    }
    covered.add(c.field);
    const v = value(c.field);
    const ok = v !== undefined && (c.kind === "eq" ? v === c.value : v.startsWith(c.value));
    if (!ok) throw policyFailed(`Policy Condition failed: ["${c.kind}", "$${c.field}", ${JSON.stringify(c.value)}]`);
  }
  for (const name of form.keys())
    if (!UNCONDITIONED.has(name) && !name.startsWith("x-ignore-") && !covered.has(name))
      throw policyFailed(`Extra input fields: ${name}`);
  if (!covered.has("key")) throw policyFailed("Policy has no condition on the key");
  return { minBytes: range?.min ?? 0, maxBytes: range?.max };
}
