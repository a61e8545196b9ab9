// A codec for the subset of the Thrift binary protocol that Resonance frame
// bodies use (docs/protocol.md, "Body encoding"), on Uint8Array and DataView
// so that it runs in browsers and in Node alike. Structs are described by
// schemas (schema.js); a field a schema does not name, or names with another
// type, is skipped, so bodies of a newer server still decode. It follows
// clients/node/src/thrift.js, which does the same on Node's Buffer.

/** T holds the Thrift binary type ids. */
export const T = Object.freeze({
  STOP: 0, BOOL: 2, BYTE: 3, DOUBLE: 4, I16: 6, I32: 8, I64: 10,
  STRING: 11, STRUCT: 12, MAP: 13, SET: 14, LIST: 15,
});

// Deeper nesting than this is refused; Resonance bodies nest three levels.
const MAX_DEPTH = 16;

const FIXED_SIZE = { [T.BOOL]: 1, [T.BYTE]: 1, [T.DOUBLE]: 8, [T.I16]: 2, [T.I32]: 4, [T.I64]: 8 };

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** BodyError means a body is not a valid Thrift struct. */
export class BodyError extends Error {}

// ---- encoding ----

// Writer grows one buffer; bodies are small, so doubling is enough.
class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.off = 0;
  }

  reserve(n) {
    if (this.off + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.off + n));
    next.set(this.buf.subarray(0, this.off));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v) { this.reserve(1); this.view.setUint8(this.off, v); this.off += 1; }
  i16(v) { this.reserve(2); this.view.setInt16(this.off, v); this.off += 2; }
  i32(v) { this.reserve(4); this.view.setInt32(this.off, v); this.off += 4; }
  i64(v) { this.reserve(8); this.view.setBigInt64(this.off, BigInt(v)); this.off += 8; }

  bytes(b) {
    this.i32(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  result() { return this.buf.slice(0, this.off); }
}

/**
 * encodeStruct returns the Thrift binary encoding of value under schema, as
 * a Uint8Array. Fields whose value is undefined or null are left out; the
 * server reads a missing field as its zero value. i64 fields take a BigInt
 * or a safe-integer number.
 */
export function encodeStruct(schema, value) {
  const w = new Writer();
  writeStruct(w, schema, value || {});
  return w.result();
}

function writeStruct(w, schema, value) {
  for (const f of schema.fields) {
    const v = value[f.name];
    if (v === undefined || v === null) continue;
    w.u8(f.type);
    w.i16(f.id);
    writeValue(w, f, v);
  }
  w.u8(T.STOP);
}

function writeValue(w, f, v) {
  switch (f.type) {
    case T.BOOL: w.u8(v ? 1 : 0); break;
    case T.I32: w.i32(v); break;
    case T.I64: w.i64(v); break;
    case T.STRING: w.bytes(v instanceof Uint8Array ? v : utf8Encoder.encode(String(v))); break;
    case T.STRUCT: writeStruct(w, f.struct, v); break;
    case T.LIST:
      w.u8(f.elem.type);
      w.i32(v.length);
      for (const e of v) writeValue(w, f.elem, e);
      break;
    default: throw new TypeError(`thrift: cannot encode type ${f.type} (field ${f.name})`);
  }
}

// ---- decoding ----

class Reader {
  constructor(bytes) {
    this.buf = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.off = 0;
  }

  need(n) {
    if (n < 0 || this.buf.length - this.off < n) {
      throw new BodyError(`thrift: truncated at byte ${this.off}`);
    }
  }

  u8() { this.need(1); return this.view.getUint8(this.off++); }
  i16() { this.need(2); const v = this.view.getInt16(this.off); this.off += 2; return v; }
  i32() { this.need(4); const v = this.view.getInt32(this.off); this.off += 4; return v; }
  i64() { this.need(8); const v = this.view.getBigInt64(this.off); this.off += 8; return v; }

  size() {
    const n = this.i32();
    if (n < 0) throw new BodyError(`thrift: negative size ${n} at byte ${this.off - 4}`);
    return n;
  }

  // bytes copies, so that a decoded value never pins the whole message.
  bytes() {
    const n = this.size();
    this.need(n);
    const b = this.buf.slice(this.off, this.off + n);
    this.off += n;
    return b;
  }
}

/**
 * decodeStruct decodes a whole body (a Uint8Array) as a struct of schema.
 * An empty body is the struct with every field at its zero value. Trailing
 * bytes are an error. i64 fields decode to BigInt, binary fields to
 * Uint8Array, strings to JavaScript strings.
 */
export function decodeStruct(schema, bytes) {
  if (bytes.length === 0) return zeroStruct(schema);
  const r = new Reader(bytes);
  const v = readStruct(r, schema, 0);
  if (r.off !== bytes.length) throw new BodyError(`thrift: ${bytes.length - r.off} trailing bytes`);
  return v;
}

function readStruct(r, schema, depth) {
  if (depth > MAX_DEPTH) throw new BodyError('thrift: nested too deep');
  const out = zeroStruct(schema);
  for (;;) {
    const type = r.u8();
    if (type === T.STOP) return out;
    const id = r.i16();
    const f = schema.byId.get(id);
    if (f && f.type === type) {
      out[f.name] = readValue(r, f, depth);
    } else {
      skip(r, type, depth); // unknown field, or a known id with another type
    }
  }
}

function readValue(r, f, depth) {
  switch (f.type) {
    case T.BOOL: return r.u8() === 1; // as the Go reader: only 1 is true
    case T.I32: return r.i32();
    case T.I64: return r.i64();
    case T.STRING: return f.binary ? r.bytes() : utf8Decoder.decode(r.bytes());
    case T.STRUCT: return readStruct(r, f.struct, depth + 1);
    case T.LIST: {
      const et = r.u8();
      const n = r.size();
      if (et !== f.elem.type) {
        // Wrong element type: skip the elements, keep the zero value.
        for (let i = 0; i < n; i++) skip(r, et, depth + 1);
        return [];
      }
      if (n > r.buf.length - r.off) throw new BodyError(`thrift: list of ${n} in too few bytes`);
      const list = [];
      for (let i = 0; i < n; i++) list.push(readValue(r, f.elem, depth + 1));
      return list;
    }
    default: throw new TypeError(`thrift: cannot decode type ${f.type}`);
  }
}

/** skip consumes one value of type without keeping it. */
function skip(r, type, depth) {
  if (depth > MAX_DEPTH) throw new BodyError('thrift: nested too deep');
  const fixed = FIXED_SIZE[type];
  if (fixed) {
    r.need(fixed);
    r.off += fixed;
    return;
  }
  switch (type) {
    case T.STRING: {
      const n = r.size();
      r.need(n);
      r.off += n;
      return;
    }
    case T.STRUCT:
      for (;;) {
        const t = r.u8();
        if (t === T.STOP) return;
        r.i16();
        skip(r, t, depth + 1);
      }
    case T.LIST:
    case T.SET: {
      const et = r.u8();
      const n = r.size();
      for (let i = 0; i < n; i++) skip(r, et, depth + 1);
      return;
    }
    case T.MAP: {
      const kt = r.u8();
      const vt = r.u8();
      const n = r.size();
      for (let i = 0; i < n; i++) {
        skip(r, kt, depth + 1);
        skip(r, vt, depth + 1);
      }
      return;
    }
    default:
      throw new BodyError(`thrift: unknown type ${type} at byte ${r.off}`);
  }
}

function zeroOf(f) {
  switch (f.type) {
    case T.BOOL: return false;
    case T.I32: return 0;
    case T.I64: return 0n;
    case T.STRING: return f.binary ? new Uint8Array(0) : '';
    case T.LIST: return [];
    default: return null; // a struct that was not sent
  }
}

function zeroStruct(schema) {
  const out = {};
  for (const f of schema.fields) out[f.name] = zeroOf(f);
  return out;
}
