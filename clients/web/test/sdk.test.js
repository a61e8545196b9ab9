// Unit tests of the SDK's codec and sequencer, in Node (no browser): the
// same modules the browser loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { decodeMessage, encodeFrame, FrameError } from '../sdk/frame.js';
import { decodeStruct, encodeStruct, BodyError } from '../sdk/thrift.js';
import { Op, schemas } from '../sdk/schema.js';
import { Sequencer } from '../sdk/sequencer.js';
import { mentionsUser, parseMentions, unreadMention } from '../sdk/mentions.js';
import {
  MAX_REACTION_USERS, QUICK_REACTIONS, applyReaction, reactionEventOf, reactionsOf,
} from '../sdk/reactions.js';
import { applyPin, mayPin, pinEventOf } from '../sdk/pins.js';
import { ConvType, GroupRole } from '../sdk/schema.js';

const hex = (b) => Buffer.from(b).toString('hex');

test('SendReq encodes to the bytes of docs/protocol.md', () => {
  const body = encodeStruct(schemas.SendReq, {
    clientMsgId: 'c-1', toUserId: 2n, convId: '', contentType: 1, content: 'hi',
  });
  // Field order differs from the Go server's (ids ascending here); both
  // are valid, so compare by decoding and by the field bytes.
  const back = decodeStruct(schemas.SendReq, body);
  assert.equal(back.clientMsgId, 'c-1');
  assert.equal(back.toUserId, 2n);
  assert.equal(new TextDecoder().decode(back.content), 'hi');
  assert.ok(hex(body).includes('0a00020000000000000002'), 'to_user_id as i64 field 2');
  assert.ok(hex(body).includes('0b000100000003632d31'), 'client_msg_id as string field 1');
});

test('the documented SEND header', () => {
  const f = encodeFrame(Op.SEND, 0, 7, new Uint8Array(45));
  assert.equal(hex(f.subarray(0, 14)), '5253010700000000000700000' + '02d');
  const { header, body } = decodeMessage(f.buffer, 1 << 20);
  assert.deepEqual(header, { op: Op.SEND, flags: 0, requestId: 7, bodyLength: 45 });
  assert.equal(body.length, 45);
});

test('a message that is not exactly one frame is refused', () => {
  const f = encodeFrame(Op.PUSH, 0, 0, new Uint8Array(3));
  assert.throws(() => decodeMessage(f.subarray(0, f.length - 1), 1 << 20), FrameError);
  assert.throws(() => decodeMessage(f, 2), FrameError);
  const bad = f.slice();
  bad[0] = 0;
  assert.throws(() => decodeMessage(bad, 1 << 20), FrameError);
});

test('unknown fields and fields of another type are skipped', () => {
  // ErrorResp{code 1006, message "x"} with an unknown list field 9 and a
  // code field sent as a string first.
  const bytes = Uint8Array.from([
    0x0f, 0x00, 0x09, 0x08, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, // list<i32> id 9
    0x0b, 0x00, 0x01, 0, 0, 0, 1, 0x41, // id 1 as a string: wrong type
    0x08, 0x00, 0x01, 0, 0, 0x03, 0xee, // code 1006
    0x0b, 0x00, 0x02, 0, 0, 0, 1, 0x78, // message "x"
    0x00,
  ]);
  assert.deepEqual(decodeStruct(schemas.ErrorResp, bytes), { code: 1006, message: 'x' });
});

test('malformed bodies are refused', () => {
  assert.throws(() => decodeStruct(schemas.ErrorResp, Uint8Array.from([0x08, 0, 1, 0])), BodyError);
  assert.throws(() => decodeStruct(schemas.ErrorResp, Uint8Array.from([0x00, 0x00])), BodyError);
  assert.throws(() => decodeStruct(schemas.ErrorResp, Uint8Array.from([0x63, 0, 1, 0])), BodyError);
});

test('an empty body is the zero struct', () => {
  const m = decodeStruct(schemas.PushMsg, new Uint8Array(0));
  assert.equal(m.message, null);
  const r = decodeStruct(schemas.SyncResp, new Uint8Array(0));
  assert.deepEqual(r, { messages: [], hasMore: false, lastSeq: 0n });
});

test('Notify carries one optional struct', () => {
  const body = encodeStruct(schemas.Notify, { typing: { convId: 'p2p:1:2', userId: 2n, typing: true } });
  const n = decodeStruct(schemas.Notify, body);
  assert.equal(n.read, null);
  assert.equal(n.presence, null);
  assert.deepEqual(n.typing, { convId: 'p2p:1:2', userId: 2n, typing: true });
});

test('GroupEvent and GroupInfo round-trip', () => {
  const ev = { action: 1, targets: [2n, 3n], name: 'Team', role: 0 };
  assert.deepEqual(decodeStruct(schemas.GroupEvent, encodeStruct(schemas.GroupEvent, ev)), ev);
  const g = {
    convId: 'g:1', name: 'Team', ownerId: 1n, dismissed: false, lastSeq: 4n, maxMembers: 200,
    members: [{ userId: 1n, role: 3, joinedMs: 5n }],
  };
  assert.deepEqual(decodeStruct(schemas.GroupInfo, encodeStruct(schemas.GroupInfo, g)), g);
});

test('a Message without reactions costs no bytes for them, one with them round-trips', () => {
  const base = { msgId: 1n, convId: 'c', seq: 1n, contentType: 1, content: new Uint8Array([104]) };
  const bare = encodeStruct(schemas.Message, base);
  const withNone = encodeStruct(schemas.Message, { ...base, reactions: undefined });
  assert.equal(hex(withNone), hex(bare));
  assert.deepEqual(decodeStruct(schemas.Message, bare).reactions, []);
  const reactions = [{ emoji: '👍', count: 12, userIds: [1n, 2n] }];
  const back = decodeStruct(schemas.Message, encodeStruct(schemas.Message, { ...base, reactions }));
  assert.deepEqual(back.reactions, reactions);
});

test('pinEventOf reads a PIN message and nothing else', () => {
  const ev = { seq: 3n, msgId: 41n, unpinned: true };
  const m = { contentType: 8, content: encodeStruct(schemas.PinEvent, ev) };
  assert.deepEqual(pinEventOf(m), ev);
  assert.equal(pinEventOf({ contentType: 1, content: new Uint8Array() }), null);
});

test('applyPin puts a pin first, drops an unpin, and ignores a repeat', () => {
  let pins = applyPin([], { seq: 1n, unpinned: false });
  pins = applyPin(pins, { seq: 4n, unpinned: false });
  assert.deepEqual(pins, [4n, 1n], 'most recently pinned first');
  assert.deepEqual(applyPin(pins, { seq: 1n, unpinned: false }), [1n, 4n], 'pinned again: first');
  assert.deepEqual(applyPin(pins, { seq: 4n, unpinned: true }), [1n]);
  assert.deepEqual(applyPin(pins, { seq: 9n, unpinned: true }), [4n, 1n], 'not pinned: no change');
  assert.deepEqual(pins, [4n, 1n], 'the list given is left as it was');
});

test('mayPin: either user of a 1:1, the owner and admins of a group', () => {
  assert.equal(mayPin(ConvType.P2P, 0), true);
  assert.equal(mayPin(ConvType.GROUP, GroupRole.OWNER), true);
  assert.equal(mayPin(ConvType.GROUP, GroupRole.ADMIN), true);
  assert.equal(mayPin(ConvType.GROUP, GroupRole.MEMBER), false);
  assert.equal(mayPin(ConvType.GROUP, 0), false, 'a role not known yet');
});

test('reactionEventOf reads a REACTION message and nothing else', () => {
  const ev = { seq: 4n, msgId: 9n, emoji: '🎉', removed: true };
  const m = { contentType: 6, content: encodeStruct(schemas.ReactionEvent, ev) };
  assert.deepEqual(reactionEventOf(m), ev);
  assert.equal(reactionEventOf({ contentType: 1, content: new Uint8Array() }), null);
  assert.equal(QUICK_REACTIONS.length, 6);
});

test('applyReaction keeps counts, the first users and mine from events', () => {
  const me = 1n;
  let rs = reactionsOf({ reactions: [{ emoji: '👍', count: 1, userIds: [2n] }] }, me);
  assert.deepEqual(rs, [{ emoji: '👍', count: 1, userIds: [2n], mine: false }]);
  rs = applyReaction(rs, { emoji: '👍', removed: false }, me, me);
  rs = applyReaction(rs, { emoji: '😂', removed: false }, 3n, me);
  assert.deepEqual(rs, [
    { emoji: '👍', count: 2, userIds: [2n, me], mine: true },
    { emoji: '😂', count: 1, userIds: [3n], mine: false },
  ]);
  assert.deepEqual(applyReaction(rs, { emoji: '😂', removed: false }, 3n, me), rs,
    'a user counted once');
  rs = applyReaction(rs, { emoji: '👍', removed: true }, me, me);
  rs = applyReaction(rs, { emoji: '😂', removed: true }, 3n, me);
  assert.deepEqual(rs, [{ emoji: '👍', count: 1, userIds: [2n], mine: false }],
    'an emoji no one has left leaves');

  // Past the users a page names, the count still moves and mine is known.
  const ids = Array.from({ length: MAX_REACTION_USERS }, (_, i) => BigInt(10 + i));
  rs = reactionsOf({ reactions: [{ emoji: '❤️', count: 15, userIds: ids }] }, me);
  rs = applyReaction(rs, { emoji: '❤️', removed: false }, me, me);
  assert.deepEqual([rs[0].count, rs[0].userIds.length, rs[0].mine], [16, MAX_REACTION_USERS, true]);
  rs = applyReaction(rs, { emoji: '❤️', removed: true }, 99n, me);
  assert.equal(rs[0].count, 15, 'an unnamed user\'s removal');
});

const msg = (seq, convId = 'c') => ({ convId, seq: BigInt(seq) });
const seqs = (list) => list.map((m) => Number(m.seq));

test('sequencer: in order, duplicates dropped, a gap held until filled', () => {
  const q = new Sequencer(() => 0n);
  assert.deepEqual(seqs(q.offer(msg(1)).ready), [1]);
  assert.deepEqual(seqs(q.offer(msg(1)).ready), [], 'duplicate');
  const held = q.offer(msg(3));
  assert.deepEqual(seqs(held.ready), []);
  assert.equal(held.gap, true);
  assert.deepEqual(q.gaps(), ['c']);
  assert.deepEqual(seqs(q.offer(msg(3)).ready), [], 'a held duplicate');
  const filled = q.offer(msg(2));
  assert.deepEqual(seqs(filled.ready), [2, 3]);
  assert.equal(filled.gap, false);
  assert.equal(q.position('c'), 3n);
  assert.equal(q.caughtUp('c', 3n), true);
});

// A clear (skip) before a conversation is placed keeps the cleared seqs
// from being handed over once it is, wherever the start lands.
test('sequencer: a skip while unplaced holds at place', () => {
  const q = new Sequencer(() => 0n);
  q.hold('u');
  for (const seq of [3n, 5n, 6n]) q.offer({ convId: 'u', seq });
  assert.deepEqual(q.skip('u', 5n), []);
  assert.ok(q.unplaced('u'));
  assert.deepEqual(q.place('u', 2n).map((m) => m.seq), [6n]);
  assert.equal(q.position('u'), 6n);
});

test('sequencer: origin places a new conversation', () => {
  const q = new Sequencer((conv, first) => (conv === 'known' ? 10n : first.seq - 1n));
  assert.deepEqual(seqs(q.offer(msg(10, 'known')).ready), []);
  assert.deepEqual(seqs(q.offer(msg(11, 'known')).ready), [11]);
  assert.deepEqual(seqs(q.offer(msg(7, 'fresh')).ready), [7], 'start at latest');
  assert.equal(q.track('known', 1n), false, 'track leaves a known conversation');
  assert.equal(q.track('other', 4n), true);
  assert.equal(q.position('other'), 4n);
});

test('sequencer: an unplaced conversation holds everything until placed', () => {
  const q = new Sequencer(() => null);
  for (const seq of [5, 3, 4]) {
    assert.deepEqual(q.offer(msg(seq)), { ready: [], gap: true }, `offer ${seq}`);
  }
  assert.equal(q.unplaced('c'), true);
  assert.deepEqual(q.gaps(), ['c']);
  assert.deepEqual(seqs(q.place('c', 3n)), [4, 5], 'what follows the start, 3 dropped');
  assert.equal(q.position('c'), 5n);
  assert.deepEqual(q.gaps(), []);
  assert.deepEqual(seqs(q.place('c', 0n)), [], 'a placed conversation stays');
  assert.equal(q.position('c'), 5n);

  assert.equal(q.hold('c'), false, 'hold leaves a known conversation');
  assert.equal(q.hold('d'), true);
  assert.equal(q.unplaced('d'), true);
  assert.deepEqual(seqs(q.place('e', 7n)), [], 'place tracks a conversation not seen');
  assert.equal(q.position('e'), 7n);
});

test('sequencer: skip passes over seqs that are not the user\'s', () => {
  const q = new Sequencer(() => 0n);
  assert.deepEqual(seqs(q.offer(msg(6)).ready), []);
  assert.deepEqual(seqs(q.offer(msg(5)).ready), [], 'held behind 1-4');
  assert.deepEqual(seqs(q.skip('c', 4n)), [5, 6]);
  assert.equal(q.position('c'), 6n);
  assert.deepEqual(q.gaps(), []);
  assert.deepEqual(seqs(q.skip('c', 3n)), [], 'a skip behind the position');
  assert.equal(q.position('c'), 6n);
  q.skip('d', 9n);
  assert.equal(q.position('d'), 9n, 'skip tracks a conversation not seen');
});

test('sequencer: advance moves a conversation only forward', () => {
  const q = new Sequencer(() => 0n);
  assert.deepEqual(seqs(q.offer(msg(5)).ready), [], 'held behind 1-4');
  assert.deepEqual(seqs(q.advance('c', 4n)), [5]);
  assert.equal(q.position('c'), 5n);
  assert.deepEqual(seqs(q.advance('c', 2n)), [], 'an advance behind the position');
  assert.equal(q.position('c'), 5n);

  q.hold('u');
  q.offer(msg(9, 'u'));
  assert.deepEqual(seqs(q.advance('u', 8n)), [9], 'an unplaced conversation is placed');
  assert.equal(q.unplaced('u'), false);
  q.advance('n', 3n);
  assert.equal(q.position('n'), 3n, 'advance tracks a conversation not seen');
});

test('parseMentions resolves @names of members and reports @all', () => {
  const members = new Map([['bob', 2n], ['carol', 3n], ['d_e-f', 4n]]);
  const cases = [
    ['hi @bob, and @carol!', [2n, 3n], false],
    ['@carol @bob @carol', [3n, 2n], false],
    ['@nobody here', [], false],
    ['mail bob@example.com', [], false],
    ['@all: lunch', [], true],
    ['@d_e-f.', [4n], false],
    ['@ alone', [], false],
  ];
  for (const [text, ids, all] of cases) {
    assert.deepEqual(parseMentions(text, members), { ids, all }, text);
  }
});

test('mentionsUser and unreadMention', () => {
  const named = { senderId: 1n, mentions: [2n], mentionAll: false };
  const all = { senderId: 1n, mentions: [], mentionAll: true };
  assert.ok(mentionsUser(named, 2n) && !mentionsUser(named, 3n));
  assert.ok(mentionsUser(all, 3n) && !mentionsUser(all, 1n), 'not the sender');
  assert.ok(unreadMention({ mentionSeq: 5n, readSeq: 4n }));
  assert.ok(!unreadMention({ mentionSeq: 5n, readSeq: 5n }) && !unreadMention(null));
});
