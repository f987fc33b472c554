/**
 * Minimal ONNX protobuf encoder: only what our exporter emits (ModelProto, GraphProto, NodeProto, AttributeProto,
 * TensorProto with raw_data, ValueInfoProto). Field numbers are those of onnx/onnx.proto, which are frozen by the
 * format's compatibility promise. A hand-written writer keeps a protobuf runtime out of the dependency tree; the
 * model is built bottom-up because every nested message is length-prefixed.
 */

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

/**
 * Accumulates one message as a list of byte parts. A nested message is appended by reference (its parts, after
 * its length prefix), so the bytes of a weight are copied once, into the model's buffer by the outermost
 * `finish()`: copying at every level (tensor, graph, model) cost a 373 MB graph three extra copies,
 * seconds of export time and that much transient memory.
 */
class Writer {
  private parts: Uint8Array[] = [];
  private scratch: number[] = [];
  /** bytes in `parts` */
  private size = 0;

  private flushScratch(): void {
    if (this.scratch.length) {
      this.parts.push(Uint8Array.from(this.scratch));
      this.size += this.scratch.length;
      this.scratch = [];
    }
  }

  private varint(v: number | bigint): void {
    // Negative int64s are written as their 64-bit two's complement (10 bytes), as protobuf requires.
    let b = BigInt.asUintN(64, BigInt(v));
    if (b < 0x80n && typeof v === "number" && v >= 0) {
      this.scratch.push(Number(b));
      return;
    }
    while (b >= 0x80n) {
      this.scratch.push(Number(b & 0x7fn) | 0x80);
      b >>= 7n;
    }
    this.scratch.push(Number(b));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.tag(field, 0);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2);
    this.varint(data.length);
    this.flushScratch();
    this.parts.push(data);
    this.size += data.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  /** `w` becomes part of this message: neither may be written to afterwards. */
  message(field: number, w: Writer): this {
    w.flushScratch();
    this.tag(field, 2);
    this.varint(w.size);
    this.flushScratch();
    for (const p of w.parts) this.parts.push(p);
    this.size += w.size;
    return this;
  }

  finish(): Uint8Array {
    this.flushScratch();
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    this.parts = [out];
    return out;
  }
}

export interface TensorInit {
  name: string;
  dims: readonly number[];
  dataType: DataTypeId;
  /** Little-endian element bytes (every platform Node supports is little-endian). */
  raw: Uint8Array;
}

export type AttrValue =
  | { kind: "int"; v: number }
  | { kind: "float"; v: number }
  | { kind: "string"; v: string }
  | { kind: "ints"; v: readonly number[] }
  | { kind: "floats"; v: readonly number[] }
  | { kind: "tensor"; v: TensorInit };

export interface NodeInit {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  attrs?: Record<string, AttrValue>;
}

/** A dimension is a fixed size or a symbolic name (dynamic batch, height, width). */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: DataTypeId;
  shape: readonly Dim[];
}

export interface ModelInit {
  graphName: string;
  nodes: readonly NodeInit[];
  initializers: readonly TensorInit[];
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
  opset: number;
  irVersion: number;
  producer: string;
  docString?: string;
}

const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

function tensorProto(t: TensorInit): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType).string(8, t.name).bytes(9, t.raw);
  return w;
}

function attributeProto(name: string, a: AttrValue): Writer {
  const w = new Writer().string(1, name);
  switch (a.kind) {
    case "int":
      return w.int(3, a.v).int(20, AttrType.INT);
    case "float":
      return w.float(2, a.v).int(20, AttrType.FLOAT);
    case "string":
      return w.string(4, a.v).int(20, AttrType.STRING);
    case "ints":
      for (const v of a.v) w.int(8, v);
      return w.int(20, AttrType.INTS);
    case "floats":
      for (const v of a.v) w.float(7, v);
      return w.int(20, AttrType.FLOATS);
    case "tensor":
      return w.message(5, tensorProto(a.v)).int(20, AttrType.TENSOR);
  }
}

function nodeProto(n: NodeInit): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attrs ?? {})) w.message(5, attributeProto(k, v));
  return w;
}

function valueInfoProto(v: ValueInfo): Writer {
  const shape = new Writer();
  for (const d of v.shape) shape.message(1, typeof d === "number" ? new Writer().int(1, d) : new Writer().string(2, d));
  const tensorType = new Writer().int(1, v.elemType).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

export function encodeModel(m: ModelInit): Uint8Array {
  const g = new Writer();
  for (const n of m.nodes) g.message(1, nodeProto(n));
  g.string(2, m.graphName);
  for (const t of m.initializers) g.message(5, tensorProto(t));
  for (const i of m.inputs) g.message(11, valueInfoProto(i));
  for (const o of m.outputs) g.message(12, valueInfoProto(o));
  const model = new Writer().int(1, m.irVersion).string(2, m.producer);
  if (m.docString) model.string(6, m.docString);
  model.message(7, g).message(8, new Writer().string(1, "").int(2, m.opset));
  return model.finish();
}
