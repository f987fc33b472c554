/**
 * A zip writer that lies on request. buildDatasetZip only writes honest archives; the inspector's tests need
 * every header field under their control: names no tool would write, Unix modes, flags, declared sizes
 * that disagree with the data, zip64 entry counts.
 */
import { constants, crc32, deflateRawSync, deflateSync } from "node:zlib";

export interface CraftEntry {
  name: string;
  /** Uncompressed content; ignored when `compressed` is given. */
  data?: Uint8Array;
  /** Raw payload to store as-is (e.g. a deflate bomb). */
  compressed?: Uint8Array;
  method?: number;
  /** Uncompressed size written to the headers; defaults to the real one. */
  declaredSize?: number;
  crc?: number;
  flags?: number;
  /** Full 32-bit external attributes; Unix mode goes in the top 16 bits. */
  externalAttrs?: number;
  madeBy?: number;
  /** Point the central directory at another entry's local header (overlap bombs). */
  offsetOf?: number;
}

export const unixMode = (mode: number) => (mode << 16) >>> 0;

export function craftZip(entries: readonly CraftEntry[], opts: { zip64Count?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  const centrals: Buffer[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, "utf8");
    const data = Buffer.from(e.data ?? new Uint8Array(0));
    const method = e.method ?? 8;
    const payload = e.compressed !== undefined ? Buffer.from(e.compressed) : method === 8 ? deflateRawSync(data) : data;
    const size = e.declaredSize ?? data.length;
    const crc = e.crc ?? crc32(data);
    const flags = (e.flags ?? 0) | 0x800;
    offsets.push(offset);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(payload.length, 18);
    local.writeUInt32LE(size >>> 0, 22);
    local.writeUInt16LE(name.length, 26);
    parts.push(local, name, payload);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(e.madeBy ?? (3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(payload.length, 20);
    central.writeUInt32LE(size >>> 0, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(e.externalAttrs ?? unixMode(0o100644), 38);
    central.writeUInt32LE(e.offsetOf !== undefined ? offsets[e.offsetOf] : offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + payload.length;
  }
  const cd = Buffer.concat(centrals);
  return Buffer.concat([...parts, cd, endRecords(entries.length, offset, cd.length, opts.zip64Count)]);
}

function endRecords(count: number, cdOffset: number, cdSize: number, zip64Count?: number): Buffer {
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  if (zip64Count === undefined) {
    eocd.writeUInt16LE(count, 8);
    eocd.writeUInt16LE(count, 10);
    eocd.writeUInt32LE(cdSize, 12);
    eocd.writeUInt32LE(cdOffset, 16);
    return eocd;
  }
  // zip64: the classic record says "see zip64", the zip64 record carries the real (64-bit) count.
  const rec = Buffer.alloc(56);
  rec.writeUInt32LE(0x06064b50, 0);
  rec.writeBigUInt64LE(44n, 4);
  rec.writeUInt16LE(45, 12);
  rec.writeUInt16LE(45, 14);
  rec.writeBigUInt64LE(BigInt(zip64Count), 24);
  rec.writeBigUInt64LE(BigInt(zip64Count), 32);
  rec.writeBigUInt64LE(BigInt(cdSize), 40);
  rec.writeBigUInt64LE(BigInt(cdOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
  locator.writeUInt32LE(1, 16);
  eocd.writeUInt16LE(0xffff, 8);
  eocd.writeUInt16LE(0xffff, 10);
  eocd.writeUInt32LE(0xffffffff, 12);
  eocd.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([rec, locator, eocd]);
}

/**
 * n empty stored entries named f000000.png..., written straight into one buffer: 100k entries through
 * craftZip would spend seconds in Buffer.concat.
 */
export function craftManyEntries(n: number): Buffer {
  const nameLen = 11;
  const localLen = 30 + nameLen;
  const centralLen = 46 + nameLen;
  const cdOffset = n * localLen;
  const out = Buffer.alloc(cdOffset + n * centralLen + 56 + 20 + 22);
  const emptyCrc = 0;
  for (let i = 0; i < n; i++) {
    const name = `f${String(i).padStart(6, "0")}.png`;
    const l = i * localLen;
    out.writeUInt32LE(0x04034b50, l);
    out.writeUInt16LE(20, l + 4);
    out.writeUInt32LE(emptyCrc, l + 14);
    out.writeUInt16LE(nameLen, l + 26);
    out.write(name, l + 30, "latin1");
    const c = cdOffset + i * centralLen;
    out.writeUInt32LE(0x02014b50, c);
    out.writeUInt16LE((3 << 8) | 20, c + 4);
    out.writeUInt16LE(20, c + 6);
    out.writeUInt16LE(nameLen, c + 28);
    out.writeUInt32LE(unixMode(0o100644), c + 38);
    out.writeUInt32LE(l, c + 42);
    out.write(name, c + 46, "latin1");
  }
  endRecords(n, cdOffset, n * centralLen, n).copy(out, cdOffset + n * centralLen);
  return out;
}

/**
 * A raw deflate stream that inflates to `mib` MiB of zeros from about 1 KiB per MiB: one full-flushed block
 * repeated (a full flush resets the window, so copies are independent), then an empty final block.
 */
export function deflateBomb(mib: number): Buffer {
  const block = deflateRawSync(Buffer.alloc(1024 * 1024), { finishFlush: constants.Z_FULL_FLUSH });
  return Buffer.concat([...Array.from({ length: mib }, () => block), Buffer.from([0x03, 0x00])]);
}

/** One PNG chunk: length, type, body, CRC-32 over type and body. */
function pngChunk(type: string, body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  const typed = Buffer.concat([Buffer.from(type, "latin1"), body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([len, typed, crc]);
}

/** A PNG that is only a valid signature and IHDR claiming the given size, plus a token IDAT and IEND. */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", deflateSync(Buffer.alloc(64))),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/**
 * An 8-bit greyscale (colorType 0) or palette (3) PNG holding exactly the given indices, with mixed row
 * filters so the label reader's unfiltering is exercised. sharp cannot write a palette with chosen indices.
 */
export function indexedPng(width: number, height: number, indices: Uint8Array, colorType: 0 | 3): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = colorType;
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const row = indices.subarray(y * width, (y + 1) * width);
    const filter = y % 3 === 0 ? 0 : y % 3 === 1 ? 1 : 2;
    const out = Buffer.alloc(width + 1);
    out[0] = filter;
    for (let x = 0; x < width; x++) {
      const pred = filter === 1 ? (x > 0 ? row[x - 1] : 0) : filter === 2 ? indices[(y - 1) * width + x] : 0;
      out[x + 1] = (row[x] - pred) & 0xff;
    }
    rows.push(out);
  }
  const plte = Buffer.alloc(256 * 3);
  for (let i = 0; i < 256; i++) plte.set([i, (i * 7) & 0xff, (i * 13) & 0xff], i * 3);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    ...(colorType === 3 ? [pngChunk("PLTE", plte)] : []),
    pngChunk("IDAT", deflateSync(Buffer.concat(rows))),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}
