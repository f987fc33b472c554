/**
 * A restricted pickle virtual machine (protocols 0-5). It only builds data: every GLOBAL goes through the
 * caller's allow-list (`PickleHooks.findClass`), and REDUCE/NEWOBJ/BUILD are delegated to the same hooks, so
 * nothing in a file can name a function we did not choose. Python's pickle.load would import and call anything;
 * that is why checkpoints are never fed to a general unpickler here.
 *
 * Allocation is bounded: length-prefixed strings and bytes are checked against the bytes actually left before
 * they are copied, the memo and stack have caps, and container growth is capped, so a crafted file fails with a
 * CheckpointError instead of exhausting memory.
 */
import { CheckpointError } from "./tensor.ts";
import { describe, type PyGlobal } from "./pickle-values.ts";

export interface PickleLimits {
  /** Memo entries (real network pickles use a few thousand; big state dicts a few hundred thousand). */
  maxMemo: number;
  /** Values on the stack at once, marks included. */
  maxStack: number;
  /** Elements in one list, dict or set. */
  maxContainer: number;
}

export const DEFAULT_PICKLE_LIMITS: PickleLimits = { maxMemo: 4_000_000, maxStack: 4_000_000, maxContainer: 16_000_000 };

export interface PickleHooks {
  /** Resolve GLOBAL/STACK_GLOBAL/INST names; must throw for anything not allowed. */
  findClass(module: string, name: string): PyGlobal;
  /** REDUCE, NEWOBJ, NEWOBJ_EX, INST and OBJ: `callable(*args, **kwargs)` for an allowed global. */
  call(callable: unknown, args: unknown[], kwargs?: Map<unknown, unknown>): unknown;
  /** BUILD: `obj.__setstate__(state)` or `obj.__dict__.update(state)`; returns the object that stays on the stack. */
  build(obj: unknown, state: unknown): unknown;
  /** PERSID/BINPERSID; absent means the format has no persistent ids and any is an error. */
  persistentLoad?(pid: unknown): unknown;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just after STOP: legacy torch files hold several pickles back to back. */
  end: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

export function unpickle(
  buf: Uint8Array,
  hooks: PickleHooks,
  file: string,
  opts: { offset?: number; limits?: Partial<PickleLimits> } = {},
): UnpickleResult {
  const limits = { ...DEFAULT_PICKLE_LIMITS, ...opts.limits };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = opts.offset ?? 0;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();

  const fail = (problem: string): never => {
    throw new CheckpointError(file, `pickle at byte ${pos}: ${problem}`);
  };
  const need = (n: number | bigint, what: string) => {
    if (BigInt(n) > BigInt(buf.byteLength - pos)) fail(`${what} needs ${n} bytes but only ${buf.byteLength - pos} remain (truncated)`);
    return Number(n);
  };
  const take = (n: number | bigint, what: string): Uint8Array => {
    const len = need(n, what);
    const out = buf.subarray(pos, pos + len);
    pos += len;
    return out;
  };
  const u8 = () => take(1, "argument")[0];
  /** Offset of an n-byte argument, consumed. */
  const arg = (n: number) => {
    const at = pos;
    pos += need(n, "argument");
    return at;
  };
  const u16 = () => view.getUint16(arg(2), true);
  const u32 = () => view.getUint32(arg(4), true);
  const i32 = () => view.getInt32(arg(4), true);
  const u64 = () => view.getBigUint64(arg(8), true);
  const line = (): string => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) fail("missing newline (truncated)");
    const s = latin1.decode(buf.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const text = (bytes: Uint8Array): string => {
    try {
      return utf8.decode(bytes);
    } catch {
      return fail("string is not valid UTF-8");
    }
  };

  const push = (v: unknown) => {
    if (stack.length >= limits.maxStack) fail(`stack exceeds ${limits.maxStack} entries`);
    stack.push(v);
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail("stack underflow");
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail("no MARK on the stack");
    return stack.splice(m as number);
  };
  const setMemo = (i: number, v: unknown) => {
    if (!memo.has(i) && memo.size >= limits.maxMemo) fail(`memo exceeds ${limits.maxMemo} entries`);
    memo.set(i, v);
  };
  const getMemo = (i: number): unknown => {
    if (!memo.has(i)) fail(`memo key ${i} was never stored`);
    return memo.get(i);
  };
  const grow = (n: number, by: number) => {
    if (n + by > limits.maxContainer) fail(`container exceeds ${limits.maxContainer} elements`);
  };
  const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : fail(`APPEND target is ${describe(v)}, not a list`));
  const asDict = (v: unknown): Map<unknown, unknown> => (v instanceof Map ? v : fail(`SETITEM target is ${describe(v)}, not a dict`));
  const setItems = (d: Map<unknown, unknown>, items: unknown[]) => {
    if (items.length % 2) fail("odd number of items for a dict");
    grow(d.size, items.length / 2);
    for (let i = 0; i < items.length; i += 2) d.set(dictKey(items[i]), items[i + 1]);
  };
  const persistent = (pid: unknown) => {
    if (!hooks.persistentLoad) fail("persistent id in a pickle that should have none");
    return hooks.persistentLoad!(pid);
  };
  const signed = (bytes: Uint8Array): number | bigint => {
    let v = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
    if (bytes.length && bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
    return narrow(v);
  };

  for (;;) {
    if (pos >= buf.byteLength) fail("ended before STOP (truncated)");
    const op = buf[pos++];
    switch (op) {
      case 0x80: {
        // PROTO
        const p = u8();
        if (p > 5) fail(`unsupported pickle protocol ${p}`);
        break;
      }
      case 0x95: // FRAME: frames only group opcodes; the length must still fit in the file.
        need(u64(), "FRAME");
        break;
      case 0x2e: // STOP
        if (marks.length) fail("STOP inside an open MARK");
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        if (marks.length >= limits.maxStack) fail("too many MARKs");
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (marks.length && stack.length === marks[marks.length - 1]) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;

      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x8a: // LONG1
        push(signed(take(u8(), "LONG1")));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) fail("negative LONG4 length");
        push(signed(take(n, "LONG4")));
        break;
      }
      case 0x47: // BINFLOAT (big-endian, unlike everything else)
        need(8, "BINFLOAT");
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x49: {
        // INT (protocol 0); "00"/"01" are False/True
        const s = line().trim();
        if (s === "00") push(false);
        else if (s === "01") push(true);
        else push(parseIntText(s, fail));
        break;
      }
      case 0x4c: // LONG (protocol 0)
        push(parseIntText(line().trim().replace(/L$/, ""), fail));
        break;
      case 0x46: {
        // FLOAT (protocol 0)
        const f = Number(line().trim());
        if (Number.isNaN(f)) fail("bad FLOAT literal");
        push(f);
        break;
      }

      case 0x58: // BINUNICODE
        push(text(take(u32(), "BINUNICODE")));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(take(u8(), "SHORT_BINUNICODE")));
        break;
      case 0x8d: // BINUNICODE8
        push(text(take(u64(), "BINUNICODE8")));
        break;
      case 0x56: // UNICODE (protocol 0, raw-unicode-escape)
        push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str)
        push(pyStr(take(u8(), "SHORT_BINSTRING")));
        break;
      case 0x54: {
        // BINSTRING
        const n = i32();
        if (n < 0) fail("negative BINSTRING length");
        push(pyStr(take(n, "BINSTRING")));
        break;
      }
      case 0x53: {
        // STRING (protocol 0): a quoted repr; only escape-free literals occur in checkpoints
        const s = line().trim();
        const q = s[0];
        if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q || s.includes("\\")) fail("unsupported STRING literal");
        push(s.slice(1, -1));
        break;
      }
      case 0x43: // SHORT_BINBYTES
        push(take(u8(), "SHORT_BINBYTES").slice());
        break;
      case 0x42: // BINBYTES
        push(take(u32(), "BINBYTES").slice());
        break;
      case 0x8e: // BINBYTES8
        push(take(u64(), "BINBYTES8").slice());
        break;
      case 0x96: // BYTEARRAY8
        push(take(u64(), "BYTEARRAY8").slice());
        break;
      case 0x97: // NEXT_BUFFER
        fail("out-of-band buffers are not supported");
        break;
      case 0x98: // READONLY_BUFFER
        break;

      case 0x29: // EMPTY_TUPLE
        push([]);
        break;
      case 0x85: // TUPLE1
        push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        push([a, b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        push([a, b, c]);
        break;
      }
      case 0x74: // TUPLE
        push(popMark());
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        const l = asList(top());
        grow(l.length, 1);
        l.push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = asList(top());
        grow(l.length, items.length);
        for (const v of items) l.push(v);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x64: {
        // DICT
        const d = new Map();
        setItems(d, popMark());
        push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(asDict(top()), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(asDict(top()), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS target is ${describe(s)}, not a set`);
        grow((s as Set<unknown>).size, items.length);
        for (const v of items) (s as Set<unknown>).add(dictKey(v));
        break;
      }
      case 0x91: // FROZENSET
        push(new Set(popMark().map(dictKey)));
        break;

      case 0x71: // BINPUT
        setMemo(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        setMemo(u32(), top());
        break;
      case 0x94: // MEMOIZE
        setMemo(memo.size, top());
        break;
      case 0x70: // PUT
        setMemo(parseIndex(line(), fail), top());
        break;
      case 0x68: // BINGET
        push(getMemo(u8()));
        break;
      case 0x6a: // LONG_BINGET
        push(getMemo(u32()));
        break;
      case 0x67: // GET
        push(getMemo(parseIndex(line(), fail)));
        break;

      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        push(hooks.findClass(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        push(hooks.findClass(module as string, name as string));
        break;
      }
      case 0x82:
      case 0x83:
      case 0x84: // EXT1/2/4: the copyreg extension registry is process state we do not have
        fail("extension-registry opcodes (EXT1/EXT2/EXT4) are not allowed");
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!Array.isArray(args)) fail(`REDUCE arguments are ${describe(args)}, not a tuple`);
        push(hooks.call(fn, args as unknown[]));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args); for the classes we allow that equals constructing with args
        const args = pop();
        const cls = pop();
        if (!Array.isArray(args)) fail(`NEWOBJ arguments are ${describe(args)}, not a tuple`);
        push(hooks.call(cls, args as unknown[]));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!Array.isArray(args) || !(kwargs instanceof Map)) fail("NEWOBJ_EX needs a tuple and a dict");
        push(hooks.call(cls, args as unknown[], kwargs as Map<unknown, unknown>));
        break;
      }
      case 0x69: {
        // INST
        const cls = hooks.findClass(line(), line());
        push(hooks.call(cls, popMark()));
        break;
      }
      case 0x6f: {
        // OBJ
        const items = popMark();
        if (!items.length) fail("OBJ without a class");
        push(hooks.call(items[0], items.slice(1)));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = pop();
        push(hooks.build(obj, state));
        break;
      }
      case 0x50: // PERSID
        push(persistent(line()));
        break;
      case 0x51: // BINPERSID
        push(persistent(pop()));
        break;
      default:
        fail(`unknown opcode 0x${op.toString(16).padStart(2, "0")} (not a pickle, or corrupt)`);
    }
  }
}

/** Python ints become JS numbers when exact, bigints otherwise. */
export function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Dict keys and set members: tuples are compared by content in Python, so give them a stable string identity. */
function dictKey(k: unknown): unknown {
  return Array.isArray(k) ? JSON.stringify(k, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) : k;
}

/** Python 2 str: torch.load decodes these as UTF-8, falling back to Latin-1 for binary content. */
function pyStr(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return latin1.decode(bytes);
  }
}

function parseIntText(s: string, fail: (p: string) => never): number | bigint {
  if (!/^[+-]?\d+$/.test(s)) fail(`bad integer literal ${JSON.stringify(s.slice(0, 40))}`);
  return narrow(BigInt(s));
}

function parseIndex(s: string, fail: (p: string) => never): number {
  const n = Number(s.trim());
  if (!Number.isSafeInteger(n) || n < 0) fail("bad memo index");
  return n;
}
