/**
 * torch.save's zip format (torch >= 1.6): `<archive>/data.pkl` is a pickle whose storages are persistent ids
 * ('storage', storage_type, key, location, numel), and each storage's raw little-endian bytes are the entry
 * `<archive>/data/<key>`. The archive folder name is whatever the file was called when saved, so it is found
 * rather than assumed.
 */
import yauzl from "yauzl";
import { CheckpointError } from "./tensor.ts";
import { makeHooks } from "./allowlist.ts";
import { budgetFor, type CheckpointOptions } from "./options.ts";
import { selectStateDict, type StateDictSelection } from "./state-dict.ts";
import { ELEMENT_BYTES, persistentStorageType, TorchStorage } from "./torch-tensor.ts";
import { unpickle } from "./unpickler.ts";

export async function readTorchZip(bytes: Uint8Array, file: string, opts: CheckpointOptions = {}): Promise<StateDictSelection> {
  const root = await readZipObject(bytes, file, opts);
  return selectStateDict(root, file, budgetFor(opts), opts.stateDictKey);
}

export async function readZipObject(bytes: Uint8Array, file: string, opts: CheckpointOptions = {}): Promise<unknown> {
  const fail = (p: string): never => {
    throw new CheckpointError(file, p);
  };
  const entries = await readEntries(bytes, file, opts.maxTensorBytes ?? Number.MAX_SAFE_INTEGER);
  const pkl = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkl.length === 0) fail("zip has no <archive>/data.pkl (not a torch.save checkpoint)");
  if (pkl.length > 1) fail(`zip has several data.pkl files (${pkl.join(", ")})`);
  const prefix = pkl[0].slice(0, -"data.pkl".length);
  const order = entries.get(`${prefix}byteorder`);
  if (order && new TextDecoder().decode(order).trim() !== "little") fail("big-endian checkpoints are not supported");

  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown): unknown => {
    if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) return fail("malformed storage persistent id");
    const [, type, key, , numel] = pid as unknown[];
    const dtype = persistentStorageType(type, file);
    if (typeof key !== "string" || !Number.isSafeInteger(numel) || (numel as number) < 0) return fail("malformed storage persistent id");
    const seen = storages.get(key);
    if (seen) return seen;
    const data = entries.get(`${prefix}data/${key}`);
    if (!data) return fail(`storage ${key} has no entry ${prefix}data/${key}`);
    const want = (numel as number) * ELEMENT_BYTES[dtype];
    if (data.byteLength !== want) fail(`storage ${key}: entry has ${data.byteLength} bytes, the pickle expects ${want}`);
    const s = new TorchStorage(key, dtype, numel as number);
    s.bytes = data;
    storages.set(key, s);
    return s;
  };
  return unpickle(entries.get(pkl[0])!, { ...makeHooks({ file }), persistentLoad }, file, { limits: opts.pickleLimits }).value;
}

/** Every file entry of a zip, inflated, refusing entries whose declared sizes exceed `maxBytes` in total (npz reuses it). */
export async function readEntries(bytes: Uint8Array, file: string, maxBytes: number): Promise<Map<string, Uint8Array>> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<string, Uint8Array>();
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromBufferPromise(buf, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false });
  } catch (e) {
    throw new CheckpointError(file, `not a readable zip: ${(e as Error).message}`);
  }
  let total = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith("/")) continue;
      // Sizes come from the central directory; refuse before inflating anything that claims too much.
      total += entry.uncompressedSize;
      if (total > maxBytes) throw new CheckpointError(file, `zip entries claim more than ${maxBytes} bytes`);
      if (entry.uncompressedSize > 0x7fffffff) throw new CheckpointError(file, `zip entry ${entry.fileName} is larger than 2 GiB`);
      const stream = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      const data = new Uint8Array(Buffer.concat(chunks));
      out.set(entry.fileName, data);
    }
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(file, `corrupt zip: ${(e as Error).message}`);
  } finally {
    zip.close();
  }
  return out;
}
