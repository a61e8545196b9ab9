// Checks the SDK's hand-written schemas against idl/*.thrift, so that a
// change of the IDL that the SDK does not follow fails here rather than in
// a browser: every field the SDK names must have the IDL's id and type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { Op, requestBodies, schemas } from '../sdk/schema.js';
import { T } from '../sdk/thrift.js';

const idlDir = new URL('../../../idl/', import.meta.url);

// parseIdl returns {structs: name -> Map(id -> {name, type}), enums: Set}.
function parseIdl(files) {
  const structs = new Map();
  const enums = new Set();
  for (const f of files) {
    const src = readFileSync(new URL(f, idlDir), 'utf8').replace(/\/\/.*$/gm, '');
    for (const m of src.matchAll(/\benum\s+(\w+)\s*\{/g)) enums.add(m[1]);
    for (const m of src.matchAll(/\b(?:struct|exception)\s+(\w+)\s*\{([^}]*)\}/g)) {
      const fields = new Map();
      for (const fm of m[2].matchAll(/(\d+)\s*:\s*(?:optional\s+|required\s+)?([\w.<>]+)\s+(\w+)/g)) {
        fields.set(Number(fm[1]), { type: fm[2].replace(/^\w+\./, ''), name: fm[3] });
      }
      structs.set(m[1], fields);
    }
  }
  return { structs, enums };
}

function wireType(idlType, enums) {
  if (idlType.startsWith('list<')) return T.LIST;
  const simple = { bool: T.BOOL, i32: T.I32, i64: T.I64, string: T.STRING, binary: T.STRING };
  if (idlType in simple) return simple[idlType];
  if (enums.has(idlType)) return T.I32;
  return T.STRUCT;
}

const camel = (s) => s.replace(/_(\w)/g, (_, c) => c.toUpperCase());

test('SDK schemas match idl/protocol.thrift and idl/common.thrift', () => {
  const { structs, enums } = parseIdl(['common.thrift', 'protocol.thrift']);
  const checked = [];
  const visit = (schema) => {
    if (checked.includes(schema.name)) return;
    checked.push(schema.name);
    const idl = structs.get(schema.name);
    assert.ok(idl, `struct ${schema.name} is not in the IDL`);
    for (const f of schema.fields) {
      const want = idl.get(f.id);
      assert.ok(want, `${schema.name}.${f.name}: no field ${f.id} in the IDL`);
      assert.equal(f.name, camel(want.name), `${schema.name} field ${f.id} name`);
      assert.equal(f.type, wireType(want.type, enums), `${schema.name}.${f.name} type`);
      if (f.struct) visit(f.struct);
      if (f.elem && f.elem.struct) visit(f.elem.struct);
    }
  };
  for (const s of Object.values(schemas)) visit(s);
  assert.ok(checked.length > 40, `checked ${checked.length} structs`);
});

// A field the SDK leaves out is skipped on decode, so the app never sees
// it: every struct the SDK transcribes names all of the IDL's fields.
test('SDK schemas name every field of their IDL structs', () => {
  const { structs } = parseIdl(['common.thrift', 'protocol.thrift']);
  const seen = new Set();
  const visit = (schema) => {
    if (seen.has(schema.name)) return;
    seen.add(schema.name);
    for (const [id, f] of structs.get(schema.name) || []) {
      assert.ok(schema.byId.has(id), `${schema.name} lacks field ${id} ${f.name}`);
    }
    for (const f of schema.fields) {
      if (f.struct) visit(f.struct);
      if (f.elem && f.elem.struct) visit(f.elem.struct);
    }
  };
  for (const s of Object.values(schemas)) visit(s);
});

// parseOps returns protocol.thrift's Op enum: name -> {value, body}, body
// being the struct its comment names ("// body ChangePasswordReq").
function parseOps() {
  const src = readFileSync(new URL('protocol.thrift', idlDir), 'utf8');
  const block = src.match(/\benum\s+Op\s*\{([^}]*)\}/)[1];
  const ops = new Map();
  for (const line of block.split('\n')) {
    const m = line.match(/^\s*(\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)/);
    if (!m) continue;
    const body = line.match(/\/\/.*?\bbody\s+(\w+)/);
    ops.set(m[1], { value: Number(m[2]), body: body && body[1] });
  }
  return ops;
}

// An opcode or a body mixed up (CHANGE_PASSWORD's pair read as another
// op's) would pass the struct checks above and fail only on a server.
test('SDK opcodes and request bodies match the Op enum of idl/protocol.thrift', () => {
  const ops = parseOps();
  for (const [name, value] of Object.entries(Op)) {
    assert.equal(ops.get(name)?.value, value, `Op.${name}`);
  }
  const names = new Map(Object.entries(Op).map(([n, v]) => [v, n]));
  for (const [op, [req, resp]] of requestBodies) {
    const name = names.get(op);
    assert.equal(req.name, ops.get(name).body, `${name} request body`);
    assert.equal(resp.name, ops.get(`${name}_ACK`)?.body, `${name}_ACK body`);
  }
  assert.ok(requestBodies.has(Op.CHANGE_PASSWORD), 'CHANGE_PASSWORD has no bodies');
});
