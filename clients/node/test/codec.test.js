'use strict';
// Offline tests of the frame header and the Thrift binary codec. The hex
// vectors were produced by the Go server's codec (codec.EncodeFrame with the
// kitex_gen structs), so they pin this codec to what the server really sends.

const test = require('node:test');
const assert = require('node:assert/strict');

const { frame, schemas, Op, encodeStruct, decodeStruct, BodyError } = require('..');

const hex = (s) => Buffer.from(s, 'hex');

// SendReq{client_msg_id "c-1", to_user_id 2, content_type TEXT, content "hi"},
// request id 7. Go writes every field, the empty conv_id too.
const goSend = '525301070000000000070000002d0a000200000000000000020b000100000003632d31'
  + '0b000300000000080004000000010b000500000002686900';
// PUSH of Message{9, "p2p:1:2", seq 3, sender 1, "c-1", TEXT, "hi", 1700000000000, "d"}.
const goPush = '52530141000000000000000000610c00010a000100000000000000090a0003000000000000'
  + '00030a000400000000000000010a00080000018bcfe568000b0002000000077032703a313a320b0005'
  + '00000003632d31080006000000010b00070000000268690b000900000001640000';
// SEND_ACK with the error flag: ErrorResp{BUSY, "busy"}.
const goError = '5253010800010000000700000013080001000007d20b0002000000046275737900';
// SyncResp{[the message above], has_more true, last_seq 3}.
const goSync = '5253010a00000000000800000075020002010a000300000000000000030f00010c00000001'
  + '0a000100000000000000090a000300000000000000030a000400000000000000010a00080000018b'
  + 'cfe568000b0002000000077032703a313a320b000500000003632d31080006000000010b0007000000'
  + '0268690b000900000001640000';

test('header: fields at their offsets, big-endian', () => {
  const f = frame.encodeFrame(Op.SYNC, 0x0001, 0x01020304, Buffer.from([0xaa, 0xbb]));
  assert.deepEqual([...f], [0x52, 0x53, 1, 0x09, 0, 1, 1, 2, 3, 4, 0, 0, 0, 2, 0xaa, 0xbb]);
  const h = frame.decodeHeader(f, frame.DEFAULT_MAX_BODY);
  assert.deepEqual(h, { op: Op.SYNC, flags: 1, requestId: 0x01020304, bodyLength: 2 });
});

test('header: bad magic, version and oversized bodies are refused', () => {
  const good = frame.encodeFrame(Op.HEARTBEAT, 0, 1, Buffer.alloc(0));
  const cases = [
    { name: 'magic', patch: (b) => { b[0] = 0x47; }, want: /magic/ },
    { name: 'version', patch: (b) => { b[2] = 2; }, want: /version/ },
    { name: 'length', patch: (b) => b.writeUInt32BE(64 * 1024 + 1, 10), want: /body of/ },
  ];
  for (const c of cases) {
    const b = Buffer.from(good);
    c.patch(b);
    assert.throws(() => frame.decodeHeader(b, frame.DEFAULT_MAX_BODY), c.want, c.name);
  }
});

test('thrift: decodes the bodies the Go server writes', () => {
  const push = frame.decodeMessage(hex(goPush));
  assert.equal(push.header.op, Op.PUSH);
  assert.equal(push.header.requestId, 0);
  const m = decodeStruct(schemas.PushMsg, push.body).message;
  assert.equal(m.msgId, 9n);
  assert.equal(m.convId, 'p2p:1:2');
  assert.equal(m.seq, 3n);
  assert.equal(m.senderId, 1n);
  assert.equal(m.content.toString(), 'hi');
  assert.equal(m.sendTimeMs, 1700000000000n);
  assert.equal(m.senderDevice, 'd');

  const err = frame.decodeMessage(hex(goError));
  assert.equal(err.header.flags & frame.FLAG_ERROR, 1);
  assert.deepEqual(decodeStruct(schemas.ErrorResp, err.body), { code: 2002, message: 'busy' });

  const sync = decodeStruct(schemas.SyncResp, frame.decodeMessage(hex(goSync)).body);
  assert.equal(sync.hasMore, true);
  assert.equal(sync.lastSeq, 3n);
  assert.equal(sync.messages.length, 1);
  assert.equal(sync.messages[0].clientMsgId, 'c-1');
});

test('thrift: encodes a SendReq that matches the Go encoding field for field', () => {
  const body = encodeStruct(schemas.SendReq, {
    clientMsgId: 'c-1', toUserId: 2n, convId: '', contentType: 1, content: Buffer.from('hi'),
  });
  // Go writes field 2 first; the order of fields is free, so compare decoded.
  const ours = decodeStruct(schemas.SendReq, body);
  const goBody = frame.decodeMessage(hex(goSend)).body;
  assert.deepEqual(ours, decodeStruct(schemas.SendReq, goBody));
  assert.equal(body.length, goBody.length);
});

test('thrift: unknown fields and known ids with another type are skipped', () => {
  // HeartbeatResp {1: i64 42} with, before it, field 9 (a map<string,list<i32>>),
  // field 1 as a string (wrong type), and a nested struct field 7.
  const body = Buffer.concat([
    hex('0d0009' + '0b0f' + '00000001' + '0000000161'
      + '08' + '00000002' + '00000001' + '00000002'),
    hex('0b0001' + '00000003' + '78797a'),
    hex('0c0007' + '020001' + '01' + '00'),
    hex('0a0001' + '000000000000002a'),
    hex('00'),
  ]);
  assert.deepEqual(decodeStruct(schemas.HeartbeatResp, body), { serverTimeMs: 42n });
});

test('thrift: empty body is the zero struct; truncation and junk are errors', () => {
  assert.deepEqual(decodeStruct(schemas.SendResp, Buffer.alloc(0)), {
    msgId: 0n, convId: '', seq: 0n, sendTimeMs: 0n, duplicate: false,
  });
  assert.throws(() => decodeStruct(schemas.RegisterResp, hex('0a0001000000')), BodyError);
  assert.throws(() => decodeStruct(schemas.RegisterResp, hex('0100010000')), BodyError);
  assert.throws(() => decodeStruct(schemas.RegisterResp, hex('0000')), /trailing/);
  assert.throws(() => decodeStruct(schemas.RegisterResp, hex('0b0001ffffffff00')), /negative/);
});

test('stream: frames split across chunks and glued together', () => {
  const a = frame.encodeFrame(Op.HEARTBEAT, 0, 1, Buffer.alloc(0));
  const b = hex(goPush);
  const all = Buffer.concat([a, b, a]);
  const dec = new frame.StreamDecoder();
  const got = [];
  for (let i = 0; i < all.length; i += 5) got.push(...dec.push(all.subarray(i, i + 5)));
  assert.deepEqual(got.map((f) => f.header.op), [Op.HEARTBEAT, Op.PUSH, Op.HEARTBEAT]);
  assert.equal(got[1].body.length, b.length - frame.HEADER_SIZE);
});

test('websocket message: exactly one frame per message', () => {
  const a = frame.encodeFrame(Op.HEARTBEAT, 0, 1, Buffer.alloc(0));
  assert.throws(() => frame.decodeMessage(Buffer.concat([a, a])), /frame of 14/);
  assert.throws(() => frame.decodeMessage(a.subarray(0, 10)), /message of 10/);
});
