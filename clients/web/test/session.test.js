// Unit tests of the SDK's Session against a fake gateway in Node: resume,
// gaps and duplicates, a group joined late, startAtLatest around the login,
// where a conversation new to the device starts (pushes before the listing,
// late pushes of old messages, a startAtLatest start kept, the device's
// start kept for a later session), a conversation begun while away, a
// server that lacks SYNC_CONVS or DELIVERED and gains it, the cursor saved
// after the positions, reconnect honouring CLOSE, fatal closes, a catch-up
// refused TOKEN_INVALID (a sign-out whose close was lost), the outbox
// retrying a send under one client_msg_id, and catch-up cut or overtaken: a
// reload, findStart, a listing failing part-way or lost with its
// connection, an own send into an unplaced conversation, a resync; and the
// end: its last DELIVERED (and logout's LOGOUT), on a reconnect's login or
// on a connection of its own when offline or when that login fails, a
// LOGOUT that reaches a gateway closing on DELIVERED, and nothing handed
// over after it; a REFRESH whose answer is lost presented again within the
// server's grace, and a LOGOUT's lost answer (dropped or timed out) reported
// as an unknown outcome and sent again on a connection of its own; the
// lost answers of REGISTER, CREATE_GROUP and MANAGE_GROUP reported so too;
// a password change answered (the new pair and password kept), refused, or
// lost (an unknown outcome, sent once), and the login that settles a lost
// one: the new password when the tokens are refused, else the tokens, and
// the old password on a new connection when the new one is refused; and
// searchMessages paging by its cursor (an empty page with more to come) and
// its refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { LackedOp, MAX_PRESENCE_USERS, Session, State, register } from '../sdk/session.js';
import { MemoryPositions, StoragePositions } from '../sdk/positions.js';
import { CloseReason, ContentType, ErrorCode, GroupAction, Op, schemas } from '../sdk/schema.js';
import { reactionEventOf, reactionsOf } from '../sdk/reactions.js';
import { pinEventOf } from '../sdk/pins.js';
import { decodeStruct } from '../sdk/thrift.js';
import { DEFAULT_LIMITS, windowOpen } from '../sdk/limits.js';
import { FakeGateway } from './fakegateway.js';

const CONV = 'p2p:1:2';
const GROUP = 'g:7';

async function until(cond, what, timeout = 3000) {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// nextMilli waits for the millisecond clock to move on, so that what the
// test stores next is later, by the fake server's clock, than what came
// before.
async function nextMilli() {
  const now = Date.now();
  while (Date.now() === now) await new Promise((r) => setTimeout(r, 1));
}

// seqRange returns the seqs from to to, as the tests collect them.
function seqRange(from, to) {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

// assertHanded checks the seqs a session handed over, saying both in one line.
function assertHanded(got, want) {
  assert.deepEqual(got, want, `handed over [${got}], want [${want}]`);
}

function open(gw, opts = {}) {
  globalThis.WebSocket = gw.WebSocket;
  const s = new Session({
    url: 'ws://fake/', username: 'me', password: 'secret-pw', deviceId: 'tab',
    positions: new MemoryPositions(), minBackoffMs: 20, maxBackoffMs: 100, ackIntervalMs: 20,
    ...opts,
  });
  s.got = [];
  s.states = [];
  s.on('message', (m) => s.got.push(Number(m.seq)));
  s.on('state', (e) => s.states.push(e));
  return s;
}

test('resume fetches what is missing; a gap is filled; duplicates are dropped', async () => {
  const gw = new FakeGateway();
  for (let i = 1; i <= 3; i++) gw.add(CONV, `m${i}`);
  const s = open(gw);
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  assert.deepEqual(s.got, [1, 2, 3]);

  const ws = gw.live[0];
  gw.add(CONV, 'm4');
  const m5 = gw.add(CONV, 'm5');
  gw.push(ws, m5); // 4 is missing: held, then fetched
  await until(() => s.got.length === 5, 'the gap filled');
  gw.push(ws, m5); // a duplicate
  gw.push(ws, gw.convs.get(CONV)[0]);
  await until(() => gw.delivered.get(CONV) === 5n, 'DELIVERED of 5');
  assert.deepEqual(s.got, [1, 2, 3, 4, 5]);
  s.close();
});

test('clearConv: history stops at the clear, and the stream goes on after it', async (t) => {
  const gw = new FakeGateway();
  for (let i = 1; i <= 4; i++) gw.add(CONV, `m${i}`);
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  await until(() => s.got.length === 4, 'the four messages');

  assert.deepEqual(await s.clearConv(CONV, { upToSeq: 3n }), { clearedSeq: 3n });
  assert.deepEqual(await s.clearConv(CONV, { upToSeq: 1n }), { clearedSeq: 3n },
    'a smaller seq leaves the clear where it was');
  const page = await s.history(CONV);
  assert.deepEqual(page.messages.map((m) => Number(m.seq)), [4]);
  assert.equal(page.hasMore, false, 'nothing older than the clear');

  assert.deepEqual(await s.clearConv(CONV, { hide: true }), { clearedSeq: 4n });
  assert.deepEqual(await s.conversations(), [], 'a deleted chat is not listed');
  gw.push(gw.live[0], gw.add(CONV, 'back'));
  await until(() => s.got.length === 5, 'the new message');
  assert.deepEqual((await s.conversations()).map((c) => c.convId), [CONV]);
});

test('a clear and delete on another device: reported hidden, and not fetched', async (t) => {
  const gw = new FakeGateway();
  const positions = new MemoryPositions();
  for (let i = 1; i <= 2; i++) gw.add(CONV, `m${i}`);
  const first = open(gw, { positions });
  await first.start();
  await until(() => first.got.length === 2 && gw.delivered.get(CONV) === 2n, 'delivered 2');
  first.close();

  gw.add(CONV, 'm3');
  gw.add(CONV, 'm4');
  gw.clear(CONV, 0n, true); // on the user's phone
  let syncs = 0;
  gw.onRequest = (ws, op) => {
    if (op === Op.SYNC) syncs++;
  };
  const s = open(gw, { positions });
  t.after(() => s.close());
  const summaries = [];
  s.on('conv', (sum) => summaries.push(sum));
  await s.start();
  await until(() => s.state === State.ONLINE && summaries.length > 0, 'the listing');
  assert.equal(summaries[0].hidden, true, 'the summary says the chat was deleted');
  assert.equal(summaries[0].clearedSeq, 4n);
  assert.equal(syncs, 0, 'the cleared history was fetched');

  gw.push(gw.live[0], gw.add(CONV, 'after'));
  await until(() => s.got.length === 1, 'the new message');
  assertHanded(s.got, [5]);
});

test('a clear on another device reaches the session at once (NOTIFY cleared)', async (t) => {
  const gw = new FakeGateway();
  for (let i = 1; i <= 2; i++) gw.add(CONV, `m${i}`);
  const s = open(gw, { resyncIntervalMs: 3_600_000 });
  t.after(() => s.close());
  const notices = [];
  s.on('notify', (n) => notices.push(n));
  await s.start();
  await until(() => s.state === State.ONLINE && s.got.length === 2, 'the two messages');

  gw.add(CONV, 'missed'); // never pushed here
  gw.clear(CONV, 0n, true); // on the user's phone, which the server tells this tab
  const ws = gw.live[0];
  gw.frame(ws, Op.NOTIFY, 0, schemas.Notify,
    { cleared: { convId: CONV, clearedSeq: 3n, hidden: true } });
  await until(() => notices.length === 1, 'the notify');
  assert.deepEqual(notices[0].cleared, { convId: CONV, clearedSeq: 3n, hidden: true });

  let syncs = 0;
  gw.onRequest = (_, op) => {
    if (op === Op.SYNC) syncs++;
  };
  gw.push(ws, gw.add(CONV, 'after'));
  await until(() => s.got.length === 3, 'the message after the clear');
  assertHanded(s.got, [1, 2, 4]);
  assert.equal(syncs, 0, 'the cleared message was fetched');
});

for (const startAtLatest of [false, true]) {
  test(`a member added to a group later gets the ADD event and what follows (startAtLatest ${
    startAtLatest})`, async (t) => {
    const gw = new FakeGateway();
    const s = open(gw, { startAtLatest });
    t.after(() => s.close()); // also when an assertion fails: its timers would keep Node up
    await s.start();
    await until(() => s.state === State.ONLINE, 'online');

    // Seqs 1-4 are the group's history from before the user was added:
    // SYNC forward from 0 starts at the ADD event, 5.
    for (let i = 1; i <= 4; i++) gw.add(GROUP, `before ${i}`);
    gw.join(GROUP);
    const ws = gw.live[0];
    gw.push(ws, gw.add(GROUP, 'added'));
    gw.push(ws, gw.add(GROUP, 'after'));
    await until(() => s.got.length === 2, 'the ADD event and the message after it');
    assert.deepEqual(s.got, [5, 6]);
    assert.equal(s.position(GROUP), 6n);
  });
}

test('startAtLatest hands over what the listing shows stored after the login', async (t) => {
  const gw = new FakeGateway();
  for (let i = 1; i <= 3; i++) gw.add(CONV, `old ${i}`);
  await nextMilli();
  const release = gw.holdSyncConvs();
  const s = open(gw, { startAtLatest: true });
  t.after(() => s.close());
  await s.start();

  // Stored after the login, before the listing; their pushes are lost.
  gw.add(CONV, 'new 4');
  gw.add(CONV, 'new 5');
  release();
  await until(() => s.got.length === 2, 'the two new messages');
  await until(() => s.state === State.ONLINE, 'online');
  assert.deepEqual(s.got, [4, 5]);
});

test('startAtLatest fetches what came after the login before a pushed message', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw, { startAtLatest: true });
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');

  // A conversation begun after the login whose first push was lost.
  gw.add(CONV, 'first');
  gw.push(gw.live[0], gw.add(CONV, 'second'));
  await until(() => s.got.length === 2, 'both messages');
  assert.deepEqual(s.got, [1, 2]);
});

// A new session of a device (a fresh MemoryPositions) starts each
// conversation where the server says the device got to. A push that comes
// before the listing must not decide the start instead: with it, the
// Session handed the device's old messages over again, or (startAtLatest)
// skipped what came while the app was closed.
for (const startAtLatest of [false, true]) {
  test(`a push before the listing leaves the start to the device's position (startAtLatest ${
    startAtLatest})`, async (t) => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 7; i++) gw.add(CONV, `m${i}`);
    gw.delivered.set(CONV, 3n); // an earlier session of this device handed 1-3 over
    await nextMilli();
    const release = gw.holdSyncConvs();
    const s = open(gw, { startAtLatest });
    t.after(() => s.close());
    await s.start();

    gw.push(gw.live[0], gw.add(CONV, 'pushed'));
    // A server may answer a fetch before a slow listing: let any fetch the
    // push started run first.
    await s.fillChain;
    release();
    await until(() => s.got.includes(8), 'seq 8');
    assertHanded(s.got, seqRange(4, 8));
  });
}

// A device continues a conversation where it started it: one that a
// startAtLatest session started at its newest message, handing nothing
// over, is continued by the next session from there (from the app's
// persisted store, or the server's delivered position), not from what is
// newest then.
for (const persisted of [true, false]) {
  test(`a startAtLatest start is kept as the device's position (${
    persisted ? 'persisted store' : "server's position"})`, async (t) => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 5; i++) gw.add(CONV, `old ${i}`);
    await nextMilli();
    const store = new MemoryPositions();
    const positions = () => (persisted ? store : new MemoryPositions());
    const first = open(gw, { startAtLatest: true, positions: positions() });
    t.after(() => first.close());
    await first.start();
    await until(() => first.state === State.ONLINE, 'the first resume');
    assert.equal(first.position(CONV), 5n);
    if (!persisted) await until(() => gw.delivered.get(CONV) === 5n, 'the start reported');
    first.close();

    gw.add(CONV, 'while closed 6');
    gw.add(CONV, 'while closed 7');
    await nextMilli();
    const second = open(gw, { startAtLatest: true, positions: positions() });
    t.after(() => second.close());
    await second.start();
    gw.push(gw.live[0], gw.add(CONV, 'after'));
    await until(() => second.got.includes(8), 'seq 8');
    assertHanded(second.got, [6, 7, 8]);
  });
}

// A device that starts at the latest starts once: a later session on the
// same store (a reload, on a StoragePositions) hands over everything stored
// since, also in a conversation that began while the app was closed, as it
// does in one it knew. Started again at that session's login, the new
// conversation's messages were passed over as old history.
for (const persisted of ['memory', 'storage']) {
  test(`startAtLatest keeps the device's start for a later session (${persisted})`,
    async (t) => {
      const gw = new FakeGateway();
      const OTHER = 'p2p:1:3';
      for (let i = 1; i <= 5; i++) gw.add(CONV, `old ${i}`);
      await nextMilli();
      const storage = memoryStorage();
      const memory = new MemoryPositions();
      const positions = () => (persisted === 'memory' ? memory : new StoragePositions(storage));
      const first = open(gw, { startAtLatest: true, positions: positions() });
      t.after(() => first.close());
      await first.start();
      await until(() => first.state === State.ONLINE, 'the first resume');
      first.close();

      // While the app is closed: more in the known conversation, and a new one.
      await nextMilli();
      gw.add(CONV, 'while closed 6');
      gw.add(OTHER, 'new while closed 1');
      gw.add(OTHER, 'new while closed 2');
      await nextMilli();
      const second = open(gw, { startAtLatest: true, positions: positions() });
      t.after(() => second.close());
      const conv = collect(second, CONV);
      const other = collect(second, OTHER);
      await second.start();
      gw.push(gw.live.at(-1), gw.add(OTHER, 'after 3'));
      await until(() => other.includes(3), "the new conversation's seq 3");
      await until(() => conv.includes(6), "the known conversation's seq 6");
      assertHanded(other, [1, 2, 3]);
      assertHanded(conv, [6]);
    });
}

// A conversation someone began while the device was away (between two
// connections, or two sessions on one store) is handed over from its first
// message on return, with no later push to reveal it: the resume's listing
// names it.
for (const startAtLatest of [false, true]) {
  for (const away of ['reconnect', 'reload']) {
    test(`a conversation begun while away arrives on return (${away}, startAtLatest ${
      startAtLatest})`, async (t) => {
      const gw = new FakeGateway();
      const OTHER = 'p2p:1:3';
      gw.add(CONV, 'known 1');
      const positions = new MemoryPositions();
      let s = open(gw, { startAtLatest, positions });
      t.after(() => s.close());
      await s.start();
      await until(() => s.state === State.ONLINE, 'the first resume');

      // Stored in the same task as the connection closes: before any
      // reconnect, and pushed to nobody.
      if (away === 'reconnect') gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 0);
      else s.close();
      for (let i = 1; i <= 3; i++) gw.add(OTHER, `new while away ${i}`);
      let other;
      if (away === 'reconnect') {
        other = collect(s, OTHER);
      } else {
        s = open(gw, { startAtLatest, positions });
        other = collect(s, OTHER);
        await s.start();
      }
      await until(() => other.length === 3, 'the new conversation');
      assertHanded(other, [1, 2, 3]);
    });
  }
}

// A session that met a server without SYNC_CONVS (an older release, during
// a rolling upgrade) asks again at its next resume: once the server has
// it, a conversation begun while the device was away is listed, where the
// older server's fallback fetches only the conversations the device knows.
test('a session asks for SYNC_CONVS again once the server has it', async (t) => {
  const gw = new FakeGateway();
  const OTHER = 'p2p:1:3';
  gw.unsupported.add(Op.SYNC_CONVS);
  gw.add(CONV, 'known 1');
  const s = open(gw);
  t.after(() => s.close());
  const other = collect(s, OTHER);
  await s.start();
  gw.push(gw.live[0], gw.convs.get(CONV)[0]);
  await until(() => s.state === State.ONLINE && s.got.length === 1, 'online without SYNC_CONVS');

  gw.unsupported.delete(Op.SYNC_CONVS); // upgraded
  gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 0);
  for (let i = 1; i <= 3; i++) gw.add(OTHER, `new while away ${i}`);
  await until(() => other.length === 3, 'the new conversation');
  assertHanded(other, [1, 2, 3]);
});

// A gateway older than SYNC_CONVS closes the connection for it: the
// session resumes without the listing on the next connection, rather than
// asking again and losing every connection, and asks again later, so once
// the gateway is upgraded a conversation begun while away is listed.
test('a gateway that closes on SYNC_CONVS is asked again only later', async (t) => {
  const gw = new FakeGateway();
  const OTHER = 'p2p:1:3';
  gw.unknown.add(Op.SYNC_CONVS);
  const s = open(gw, { resyncIntervalMs: 200 });
  t.after(() => s.close());
  const other = collect(s, OTHER);
  await s.start();
  await until(() => s.state === State.ONLINE, 'online without SYNC_CONVS');

  gw.unknown.delete(Op.SYNC_CONVS); // upgraded
  gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 0);
  for (let i = 1; i <= 3; i++) gw.add(OTHER, `new while away ${i}`);
  await until(() => other.length === 3, 'the new conversation');
  assertHanded(other, [1, 2, 3]);
});

// A session that met a server without DELIVERED reports what it handed
// over once the server has it: left unreported, the server keeps an older
// position for the device, from which its next session on a store of its
// own hands the same messages over again.
test('a session reports DELIVERED again once the server has it', async (t) => {
  const gw = new FakeGateway();
  gw.unsupported.add(Op.DELIVERED);
  let refused = 0;
  gw.onRequest = (ws, op) => {
    if (op === Op.DELIVERED && gw.unsupported.has(op)) refused++;
  };
  for (let i = 1; i <= 3; i++) gw.add(CONV, `m${i}`);
  const s = open(gw, { resyncIntervalMs: 200 });
  t.after(() => s.close());
  await s.start();
  await until(() => s.got.length === 3 && refused > 0, 'a DELIVERED refused');

  gw.unsupported.delete(Op.DELIVERED); // upgraded
  await until(() => gw.delivered.get(CONV) === 3n, 'DELIVERED of 3');
});

// The positions gathered while the server lacked DELIVERED may be more
// than one request carries (the server takes 500): once it has the op,
// they go in requests it takes, where one request of them all was refused
// as too large at every flush, and nothing was reported again.
test('positions kept while DELIVERED was refused go in requests the server takes', async (t) => {
  const gw = new FakeGateway();
  gw.unsupported.add(Op.DELIVERED);
  const convs = Array.from({ length: 600 }, (_, i) => `p2p:1:${i + 2}`);
  for (const convId of convs) gw.add(convId, 'hello');
  const s = open(gw, { resyncIntervalMs: 200 });
  t.after(() => s.close());
  await s.start();
  await until(() => s.got.length === convs.length && s.state === State.ONLINE,
    'every conversation handed over');

  gw.unsupported.delete(Op.DELIVERED); // upgraded
  await until(() => convs.every((c) => gw.delivered.get(c) === 1n), 'DELIVERED of all 600');
});

// A CLOSE PROTOCOL_ERROR beside a request whose op the server answered on
// the connection before was for another frame (an op of the application's
// that an older gateway does not know, say): the op is asked for on the
// next connection, where the session took the close as the server lacking
// it and did without it for a while.
for (const { name, op, second } of [
  // The listing's second page; the first was answered.
  { name: 'SYNC_CONVS', op: Op.SYNC_CONVS,
    second: (gw) => { gw.add(GROUP, 'another conversation'); } },
  // The DELIVERED of a second message; the first one's was answered.
  { name: 'DELIVERED', op: Op.DELIVERED,
    second: (gw) => gw.push(gw.live[0], gw.add(CONV, 'm2')) },
]) {
  test(`a close beside an answered ${name} is no refusal of it`, async (t) => {
    const gw = new FakeGateway();
    gw.add(CONV, 'm1');
    const seen = []; // ops asked, by connection
    let held = null;
    gw.onRequest = (ws, o) => {
      if (o !== op) return undefined;
      const n = gw.conns.indexOf(ws);
      seen[n] = (seen[n] || 0) + 1;
      if (n === 0 && seen[n] === 2) {
        held = ws;
        return true; // in flight when the connection closes
      }
      return undefined;
    };
    if (op === Op.SYNC_CONVS) second(gw);
    // syncPage 1: the listing of two conversations takes two pages.
    const s = open(gw, { resyncIntervalMs: 3_600_000, syncPage: 1 });
    t.after(() => s.close());
    await s.start();
    await until(() => seen[0] >= 1, `a first ${name} answered`);
    if (op === Op.DELIVERED) {
      await until(() => gw.delivered.get(CONV) === 1n, 'DELIVERED of 1');
      second(gw);
    }
    await until(() => held, `a second ${name} in flight`);
    gw.closeWith(held, CloseReason.PROTOCOL_ERROR, 0);

    await until(() => gw.conns.length === 2 && s.state === State.ONLINE, 'online again');
    if (op === Op.DELIVERED) gw.push(gw.live[0], gw.add(CONV, 'm3'));
    await until(() => seen[1] >= 1, `${name} asked on the next connection`);
  });
}

// A server older than WATCH_PRESENCE refuses it; an app sends its watch set
// on every connection (the web app does at each resume), so the refusal is
// remembered for a while, as the SDK's own ops' are, and watchPresence
// rejects at once meanwhile. A gateway that closes the connection for the
// op closed each connection the session made.
for (const { name, refuse } of [
  { name: 'answers UNSUPPORTED', refuse: (gw) => gw.unsupported },
  { name: 'closes on unknown opcodes', refuse: (gw) => gw.unknown },
]) {
  test(`a refused watchPresence is remembered across connections (${name})`, async (t) => {
    const gw = new FakeGateway();
    refuse(gw).add(Op.WATCH_PRESENCE);
    let watches = 0;
    gw.onRequest = (ws, op) => {
      if (op === Op.WATCH_PRESENCE) watches++;
      return undefined;
    };
    const s = open(gw, { resyncIntervalMs: 3_600_000 });
    t.after(() => s.close());
    await s.start();
    await until(() => s.state === State.ONLINE, 'online');
    await assert.rejects(s.watchPresence([2n]));
    for (let i = 0; i < 3; i++) {
      const opened = gw.conns.length;
      if (gw.live.length > 0) gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 0);
      await until(() => gw.conns.length > opened && s.state === State.ONLINE, 'a new connection');
      await assert.rejects(s.watchPresence([2n]), (err) => err.code === ErrorCode.UNSUPPORTED);
    }
    assert.equal(watches, 1, 'WATCH_PRESENCE requests');
    assert.equal(gw.live.length, 1, 'the last connection kept');
  });
}

// The server refuses a presence request for more than MAX_PRESENCE_USERS
// ids as a whole; the SDK refuses it first, unsent, with the same code, and
// sends one of exactly that many.
for (const { name, op, call } of [
  { name: 'getPresence', op: Op.GET_PRESENCE, call: (s, ids) => s.getPresence(ids) },
  { name: 'watchPresence', op: Op.WATCH_PRESENCE, call: (s, ids) => s.watchPresence(ids) },
]) {
  test(`${name} over MAX_PRESENCE_USERS ids is refused unsent`, async (t) => {
    const gw = new FakeGateway();
    let asked = 0;
    gw.onRequest = (ws, o) => {
      if (o === op) asked++;
      return undefined;
    };
    const s = open(gw);
    t.after(() => s.close());
    await s.start();
    await until(() => s.state === State.ONLINE, 'online');
    const ids = (n) => Array.from({ length: n }, (_, i) => BigInt(i + 2));

    await assert.rejects(call(s, ids(MAX_PRESENCE_USERS + 1)),
      (err) => err.name === 'ResonanceError' && err.code === ErrorCode.TOO_LARGE &&
        /not sent/.test(err.message));
    assert.equal(asked, 0, `${name} requests for ${MAX_PRESENCE_USERS + 1} ids`);
    await assert.rejects(call(s, ids(MAX_PRESENCE_USERS))); // the fake answers UNSUPPORTED
    assert.equal(asked, 1, `${name} requests for ${MAX_PRESENCE_USERS} ids`);
  });
}

// The refusal is remembered for its wait only: the server is soon upgraded.
test('a refused watchPresence is asked again after its wait', async (t) => {
  const gw = new FakeGateway();
  let watches = 0;
  gw.onRequest = (ws, op) => {
    if (op === Op.WATCH_PRESENCE) watches++;
    return undefined;
  };
  const s = open(gw, { resyncIntervalMs: 50 });
  t.after(() => s.close());
  await s.start();
  await assert.rejects(s.watchPresence([2n])); // the fake answers UNSUPPORTED
  const over = performance.now() + 50;
  await until(() => performance.now() >= over, 'the wait over');
  await assert.rejects(s.watchPresence([2n]));
  assert.equal(watches, 2, 'WATCH_PRESENCE requests');
});

// DELIVEREDs in flight together, refused together, are one refusal: the
// while the session does without the op starts at resyncIntervalMs, where
// each of them doubled it, and the upgraded server waited that much longer
// for the positions.
test('DELIVEREDs refused together count as one refusal', async (t) => {
  const gw = new FakeGateway();
  gw.unsupported.add(Op.DELIVERED);
  const held = [];
  gw.onRequest = (ws, op) => (op === Op.DELIVERED
    ? new Promise((resolve) => { held.push(resolve); }) : undefined);
  gw.add(CONV, 'm1');
  gw.join(GROUP);
  gw.add(GROUP, 'g1');
  // ackBatch 1: each conversation handed over flushes on its own.
  const s = open(gw, { resyncIntervalMs: 60_000, ackBatch: 1, ackIntervalMs: 3_600_000 });
  t.after(() => s.close());
  await s.start();
  await until(() => held.length === 2, 'two DELIVEREDs in flight');
  for (const resolve of held) resolve();
  // Each refusal puts its position back.
  await until(() => s.dirty.size === 2, 'both refusals taken');
  assert.equal(s.noDelivered.wait, 60_000, 'the while after one refusal');
});

// A refusal is remembered for its wait by a clock that keeps going at its
// pace: a wall clock set forward (a sleeping laptop's resync, a user's
// correction) would have the op asked again at once, and one set back
// would have it go unasked for as long as the jump.
test('a remembered refusal lasts its wait whatever the wall clock does', async () => {
  const wall = Date.now;
  try {
    const ahead = new LackedOp();
    ahead.refused(60_000);
    Date.now = () => wall() + 2 * 3_600_000;
    assert.ok(ahead.active(), 'forgotten when the wall clock jumped forward');

    const back = new LackedOp();
    back.refused(1); // a wait of 1 ms
    const over = performance.now() + 1;
    Date.now = () => wall() - 2 * 3_600_000;
    await until(() => performance.now() >= over, 'the wait over');
    assert.ok(!back.active(), 'still remembered when the wall clock jumped back');
  } finally {
    Date.now = wall;
  }

  // The wait itself, on a clock the test moves: doubled with each refusal
  // in a row, from the base given.
  let now = 1000;
  const op = new LackedOp(() => now);
  op.refused(60_000);
  now += 59_999;
  assert.ok(op.active(), 'forgotten before the wait');
  now += 1;
  assert.ok(!op.active(), 'remembered past the wait');
  op.refused(60_000);
  now += 119_999;
  assert.ok(op.active(), 'the second refusal in a row does not double the wait');
  now += 1;
  assert.ok(!op.active(), 'remembered past the doubled wait');
});

// The session times its waits by a clock that keeps going at its pace. A
// send refused BUSY after the wall clock was set forward (a laptop waking,
// a user's correction) failed at once, as if its send timeout had passed,
// instead of going again after its backoff.
test('a send is retried after BUSY though the wall clock jumped forward', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw, { sendTimeoutMs: 60_000 });
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  const wall = Date.now;
  t.after(() => { Date.now = wall; });
  gw.busySends = 1;
  const e = s.send({ convId: CONV, text: 'after the jump' });
  Date.now = () => wall() + 2 * 3_600_000; // before the BUSY is answered
  const ack = await e.result;
  assert.equal(gw.busySends, 0, 'the first SEND was not refused');
  assert.equal(e.state, 'sent');
  assert.ok(ack.seq > 0n);
});

// A gateway older than DELIVERED closes the connection for it: the next
// connection reports nothing until the while is over, where each flush
// closed a connection again.
test('a gateway that closes on DELIVERED is asked again only later', async (t) => {
  const gw = new FakeGateway();
  gw.unknown.add(Op.DELIVERED);
  gw.add(CONV, 'm1');
  const s = open(gw, { resyncIntervalMs: 60_000 });
  t.after(() => s.close());
  await s.start();
  await until(() => gw.conns.length === 2 && s.state === State.ONLINE,
    'online again after the close');

  gw.push(gw.live[0], gw.add(CONV, 'm2'));
  await until(() => s.got.includes(2), 'seq 2');
  assert.equal(s.flushAcks(s.conn), null, 'a DELIVERED sent to the gateway that closed on it');
  assert.equal(gw.live.length, 1);
});

// A push of a message from before the login, redelivered late after a
// server failure, must not decide where a conversation starts either: the
// device's position on the server does or, without one, the first message
// (the newest from before the login, with startAtLatest).
for (const { name, startAtLatest, delivered, repush, want } of [
  { name: 'at the latest, device position', startAtLatest: true, delivered: 3n, repush: 9,
    want: seqRange(4, 11) },
  { name: 'at the latest, no device position', startAtLatest: true, repush: 9, want: [11] },
  { name: 'from the first, device position', startAtLatest: false, delivered: 3n, repush: 1,
    want: seqRange(4, 11) },
  { name: 'from the first, no device position', startAtLatest: false, repush: 1,
    want: seqRange(1, 11) },
]) {
  test(`a late push of an old message leaves the start to the listing (${name})`, async (t) => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 10; i++) gw.add(CONV, `old ${i}`);
    if (delivered) gw.delivered.set(CONV, delivered);
    await nextMilli();
    const release = gw.holdSyncConvs();
    const s = open(gw, { startAtLatest });
    t.after(() => s.close());
    await s.start();

    gw.repush(CONV, repush);
    await s.fillChain; // any fetch the push started runs before the listing comes
    release();
    await until(() => s.state === State.ONLINE, 'online');
    gw.push(gw.live[0], gw.add(CONV, 'after'));
    await until(() => s.got.includes(11), 'seq 11');
    assertHanded(s.got, want);
  });
}

// A resume's cursor must not be saved before what it fetched is the
// application's and its positions are: a page closed in between would
// leave the next session's listing without those conversations. Handed
// over as they are sequenced, the messages are; this checks the storage.
test('a resume writes its cursor after the positions of what it handed over', async (t) => {
  const gw = new FakeGateway();
  for (let i = 1; i <= 3; i++) gw.add(CONV, `m${i}`);
  const writes = [];
  const storage = {
    getItem: () => null,
    setItem: (key, value) => writes.push({ key, value: JSON.parse(value) }),
    removeItem() {},
  };
  const s = open(gw, { positions: new StoragePositions(storage, 'r') });
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');

  const cursorAt = writes.findIndex((w) => w.key === 'r.cursor');
  assert.ok(cursorAt >= 0, 'the cursor saved');
  const saved = writes.slice(0, cursorAt).findLast((w) => w.key === 'r.positions');
  assert.deepEqual(saved?.value, { [CONV]: '3' }, 'the positions written before the cursor');
});

test('a CLOSE with a reconnect delay is honoured; the token logs in again', async () => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  const s = open(gw);
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 150);
  const closedAt = Date.now();
  gw.add(CONV, 'm2'); // stored while away: no push reaches this device
  await until(() => s.states.some((e) => e.state === State.OFFLINE), 'offline');
  const off = s.states.find((e) => e.state === State.OFFLINE);
  assert.ok(off.retryInMs >= 150, `retry in ${off.retryInMs} ms`);
  await until(() => s.got.length === 2, 'm2 after the reconnect');
  assert.ok(Date.now() - closedAt >= 150, 'waited for reconnect_after_ms');
  assert.deepEqual(s.got, [1, 2]);
  assert.equal(gw.logins.at(-1).token, 'access-1', 'the reconnect used the token');
  assert.equal(gw.logins.at(-1).password, '');
  s.close();
});

test('a connection refused with an error event and no close is retried', async () => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  const s = open(gw, { requestTimeoutMs: 2000 });
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  gw.refuseErrorOnly = 2; // the server is down for two attempts
  gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 0);
  gw.add(CONV, 'm2');
  await until(() => s.got.length === 2, 'm2 after the reconnect', 1500);
  assert.equal(gw.conns.length, 4, 'two refused attempts, then a connection');
  assert.deepEqual(s.got, [1, 2]);
  s.close();
});

test('KICKED ends the session without reconnecting', async () => {
  const gw = new FakeGateway();
  const s = open(gw);
  let ended = null;
  s.on('ended', (err) => { ended = err; });
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  gw.closeWith(gw.live[0], CloseReason.KICKED, -1);
  await until(() => ended, 'ended');
  assert.equal(ended.close.reason, CloseReason.KICKED);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(gw.conns.length, 1, 'no new connection');
  assert.equal(s.state, State.ENDED);
});

for (const closes of [true, false]) {
  test(`a catch-up refused TOKEN_INVALID ends the session signed out (${
    closes ? 'CLOSE behind it' : 'an older gateway: no CLOSE'})`, async () => {
    // The device was signed out while its close was lost: its catch-up is
    // refused, the gateway's CLOSE SIGNED_OUT comes in a later message, if
    // at all. A reconnect would sign the device in again with the password.
    const gw = new FakeGateway();
    gw.signedOutCloses = closes;
    const s = open(gw, { resyncIntervalMs: 30 });
    let ended = null;
    s.on('ended', (err) => { ended = err; });
    await s.start();
    await until(() => s.state === State.ONLINE, 'online');
    gw.signOutLost();
    await until(() => ended, 'ended');
    assert.equal(ended.close?.reason, CloseReason.SIGNED_OUT, `ended with ${ended}`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(gw.logins.length, 1, 'no login after the sign-out');
    assert.equal(s.state, State.ENDED);
  });
}

// A device signed out while its close was lost, whose next request is its
// REFRESH: the gateway refuses it as a signed-out device's and closes with
// SIGNED_OUT behind it, and the session ends there rather than log the
// device in again with the password once its access token expires.
test('a REFRESH refused as a signed-out device\'s ends the session signed out', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  let ended = null;
  s.on('ended', (err) => { ended = err; });
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  gw.signOutLost();
  s.positions.setTokens({ ...s.positions.tokens(), accessExpiryMs: Date.now() + 100 });
  s.scheduleRefresh(s.conn);
  await until(() => ended, 'ended');
  assert.equal(ended.close?.reason, CloseReason.SIGNED_OUT, `ended with ${ended}`);
  assert.equal(gw.refreshes.length, 1, 'refreshes');
  assert.equal(gw.logins.length, 1, 'no login after the sign-out');
});

// A device signed out while its session was offline stays signed out: at
// the reconnect its token is refused as a signed-out device's, the
// gateway's CLOSE SIGNED_OUT follows, and the session ends without a
// password login. Tokens that expired instead fall back to the password.
for (const { name, revoke, ends } of [
  { name: 'signed out', revoke: (gw) => gw.revokeTokens(), ends: true },
  { name: 'expired', revoke: (gw) => gw.accessTokens.clear(), ends: false },
]) {
  test(`a session offline when its tokens were ${name} ${ends ? 'ends' : 'logs in'} at the `
    + 'reconnect', async (t) => {
    const gw = new FakeGateway();
    const s = open(gw);
    t.after(() => s.close());
    let ended = null;
    s.on('ended', (err) => { ended = err; });
    await s.start();
    await until(() => s.state === State.ONLINE, 'online');
    gw.unreachable = true;
    gw.live[0].close(1006);
    await until(() => s.state === State.OFFLINE, 'offline');
    revoke(gw);
    const before = gw.logins.length;
    gw.unreachable = false;
    s.reconnectNow();
    await until(() => ended || gw.logins.slice(before).some((l) => !l.token),
      'the end or a password login');
    const passwords = gw.logins.slice(before).filter((l) => !l.token).length;
    if (!ends) {
      assert.equal(passwords, 1, 'password logins');
      return;
    }
    assert.equal(ended.close?.reason, CloseReason.SIGNED_OUT, `ended with ${ended}`);
    assert.equal(passwords, 0, 'logged in with the password after the sign-out');
    assert.equal(s.state, State.ENDED);
  });
}

// A reload whose saved tokens a sign-out revoked since: start rejects with
// the gateway's CLOSE SIGNED_OUT, which the app takes for a sign-out rather
// than an outage to retry.
test('a start with the tokens of a signed-out device rejects with CLOSE SIGNED_OUT',
  async () => {
    const gw = new FakeGateway();
    gw.revokeTokens();
    const positions = new MemoryPositions();
    positions.setTokens({ access: 'access-1', refresh: 'refresh-1', username: 'me' });
    const s = open(gw, { password: '', positions });
    const err = await s.start().then(() => null, (e) => e);
    assert.equal(err?.close?.reason, CloseReason.SIGNED_OUT, `start rejected with ${err}`);
    assert.equal(s.state, State.ENDED);
    assert.deepEqual(gw.logins.map((l) => l.token), ['access-1'], 'logins');
  });

test('a send whose ack is lost is retried under the same id and enters the stream once', async () => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  const s = open(gw);
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  const states = [];
  s.on('outbox', (e) => states.push(e.state));
  gw.loseSendAcks = 1;
  const e = s.send({ convId: CONV, text: 'hello' });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(e.state, 'pending');
  gw.live[0].close(1006); // the connection drops with the ack lost
  const ack = await e.result;
  assert.equal(ack.seq, 2n);
  assert.equal(ack.duplicate, true, 'the retry hit the stored message');
  assert.equal(gw.convs.get(CONV).length, 2, 'stored once');
  await until(() => s.got.length === 2, 'the own message');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(s.got, [1, 2]);
  assert.deepEqual(states, ['pending', 'sent']);
  s.close();
});

test('a reply with mentions is sent with its fields and enters the stream as stored',
  async (t) => {
  const gw = new FakeGateway();
  gw.add(GROUP, 'lunch?');
  const s = open(gw);
  t.after(() => s.close());
  const msgs = [];
  s.on('message', (m) => msgs.push(m));
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  const e = s.send({ convId: GROUP, text: '@bob @carol yes', replyTo: 1,
    mentions: [9n, 3n, 9n, s.userId] });
  await e.result;
  const stored = gw.convs.get(GROUP)[1];
  assert.equal(stored.replyToSeq, 1n);
  assert.deepEqual(stored.mentions, [9n, 3n, 9n, s.userId], 'sent as given; the server normalises');
  assert.equal(stored.mentionAll, false);
  await until(() => msgs.length === 2, 'the own message');
  assert.equal(msgs[1].replyToSeq, 1n);
  assert.deepEqual(msgs[1].mentions, [3n, 9n], 'sorted, once each, without the sender');
  const all = s.send({ convId: GROUP, text: '@all', mentionAll: true });
  await all.result;
  assert.equal(gw.convs.get(GROUP)[2].mentionAll, true);
});

test('a saved refresh token logs in when the access token is refused', async () => {
  const gw = new FakeGateway();
  const positions = new MemoryPositions();
  positions.setTokens({ access: 'stale', refresh: 'access-1', username: 'me' });
  const s = open(gw, { password: '', positions });
  await s.start();
  assert.deepEqual(gw.logins.map((l) => l.token), ['stale', 'access-1']);
  s.close();
});

// memoryStorage is a Web Storage kept in a Map, which outlives the Sessions
// (and StoragePositions) opened on it, as localStorage outlives a page.
function memoryStorage() {
  const items = new Map();
  return {
    getItem: (k) => (items.has(k) ? items.get(k) : null),
    setItem: (k, v) => items.set(k, String(v)),
    removeItem: (k) => items.delete(k),
  };
}

// A reload (a new Session on the same storage) lists only what changed
// since the saved cursor. A conversation the first page placed at the
// server's delivered position, with nothing new to hand over, must keep
// that position in the storage: its next push would otherwise begin it
// again from its first message.
test('a start taken from the listing survives a page reload', async (t) => {
  const gw = new FakeGateway();
  for (let i = 1; i <= 3; i++) gw.add(CONV, `m${i}`);
  gw.delivered.set(CONV, 3n); // an earlier install of this device handed 1-3 over
  const storage = memoryStorage();
  const first = open(gw, { positions: new StoragePositions(storage) });
  t.after(() => first.close());
  await first.start();
  await until(() => first.state === State.ONLINE, 'the first page online');
  first.close();

  const second = open(gw, { positions: new StoragePositions(storage) });
  t.after(() => second.close());
  await second.start();
  await until(() => second.state === State.ONLINE, 'the reloaded page online');
  gw.push(gw.live.at(-1), gw.add(CONV, 'after the reload'));
  await until(() => second.got.includes(4), 'seq 4');
  assertHanded([...first.got, ...second.got], [4]);
});

// isBackward tells a backward SYNC (findStart's) from a forward one.
const isBackward = (op, req) => op === Op.SYNC && req.beforeSeq > 0n;

// collect gathers the seqs s hands over in convId.
function collect(s, convId) {
  const seqs = [];
  s.on('message', (m) => { if (m.convId === convId) seqs.push(Number(m.seq)); });
  return seqs;
}

// A conversation waiting for findStart is placed once, whatever happens
// meanwhile: the connection lost during its backward pages, a push of a
// newer message overtaking them, pages that must go back several times.
test('findStart cut by a reconnect, overtaken by a push, over several pages', async (t) => {
  const gw = new FakeGateway();
  const OTHER = 'p2p:1:3';
  for (let i = 1; i <= 5; i++) gw.add(CONV, `old ${i}`);
  for (let i = 1; i <= 3; i++) gw.add(OTHER, `old ${i}`);
  await nextMilli();
  const release = gw.holdSyncConvs();
  const s = open(gw, { startAtLatest: true, syncPage: 2 });
  t.after(() => s.close());
  const conv = collect(s, CONV);
  const other = collect(s, OTHER);
  await s.start();

  // After the login, before the listing, their pushes lost: CONV 6-9 and
  // OTHER 4-9, which findStart pages back through two at a time to find 3.
  for (let i = 6; i <= 9; i++) gw.add(CONV, `new ${i}`);
  for (let i = 4; i <= 9; i++) gw.add(OTHER, `new ${i}`);

  let backward = 0;
  gw.onRequest = (ws, op, req) => {
    if (!isBackward(op, req) || req.convId !== OTHER) return false;
    backward++;
    if (backward === 1) {
      ws.close(1006); // the first backward page is lost with the connection
      return true;
    }
    if (backward === 3) gw.push(ws, gw.add(OTHER, 'new 10')); // overtakes the pages
    return false;
  };
  gw.push(gw.live[0], gw.convs.get(OTHER)[8]); // seq 9: OTHER waits for findStart
  gw.push(gw.live[0], gw.convs.get(CONV)[8]);
  release();
  await until(() => other.includes(10) && conv.includes(9), 'both caught up');
  await until(() => s.state === State.ONLINE, 'online again');
  assertHanded(other, seqRange(4, 10));
  assertHanded(conv, seqRange(6, 9));
  assert.equal(backward, 5, 'findStart pages: one lost, then four back to seq 3');
  assert.equal(gw.conns.length, 2, 'one reconnect');
  await until(() => gw.delivered.get(OTHER) === 10n, 'DELIVERED of 10');
});

// A listing cut after its first page is read again in full on the next
// connection, from the cursor saved before it: what the first page placed
// or handed over is not handed over again, and nothing is skipped.
for (const startAtLatest of [false, true]) {
  test(`a listing failing part-way is read again (startAtLatest ${startAtLatest})`,
    async (t) => {
      const gw = new FakeGateway();
      const ids = ['p2p:1:2', 'p2p:1:3', 'p2p:1:4'];
      for (const id of ids) for (let i = 1; i <= 2; i++) gw.add(id, `old ${i}`);
      gw.delivered.set(ids[1], 1n);
      await nextMilli();
      let pages = 0;
      gw.onRequest = (ws, op) => {
        if (op !== Op.SYNC_CONVS || ++pages !== 2) return false;
        for (const id of ids) gw.add(id, 'new 3'); // stored after the login, pushes lost
        ws.close(1006);
        return true;
      };
      const s = open(gw, { startAtLatest, syncPage: 1 });
      t.after(() => s.close());
      const got = ids.map((id) => collect(s, id));
      await s.start();
      await until(() => s.state === State.ONLINE && got.every((g) => g.includes(3)), 'caught up');
      assert.equal(gw.conns.length, 2, 'one reconnect');
      const want = startAtLatest ? [[3], [2, 3], [3]] : [[1, 2, 3], [2, 3], [1, 2, 3]];
      got.forEach((g, i) => assertHanded(g, want[i]));
    });
}

// The app's own send into a conversation with no position yet, with
// startAtLatest: its ack waits for findStart, which starts after the
// newest message from before the login, so a message stored after the
// login whose push was lost comes before it.
test('an own send into an unplaced conversation waits for its start', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw, { startAtLatest: true });
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  for (let i = 1; i <= 3; i++) gw.add(CONV, `old ${i}`).sendTimeMs = s.since - 1n;
  gw.add(CONV, 'new 4'); // after the login, its push lost
  const e = s.send({ convId: CONV, text: 'mine' });
  await e.result;
  await until(() => s.got.includes(5), 'the own message');
  assertHanded(s.got, [4, 5]);
  await until(() => gw.delivered.get(CONV) === 5n, 'DELIVERED of 5');
});

// A resync's listing read while a fetch runs must neither stop the fetch
// for good nor hand its messages over twice.
test('a resync while a fetch runs', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw, { syncPage: 2, resyncIntervalMs: 30 });
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  for (let i = 1; i <= 7; i++) gw.add(CONV, `m${i}`);

  // The fetch's first page waits until a resync's listing has been read
  // (a resync's resume waits for the fetches, so no later page may wait).
  let listed = null;
  const listing = new Promise((resolve) => { listed = resolve; });
  let held = false;
  gw.onRequest = (ws, op, req) => {
    if (op === Op.SYNC_CONVS) {
      setTimeout(listed, 0); // after this listing's answer
      return false;
    }
    if (op !== Op.SYNC || req.beforeSeq > 0n || held) return false;
    held = true;
    return listing;
  };
  gw.push(gw.live[0], gw.convs.get(CONV)[6]);
  await until(() => s.got.includes(7), 'seq 7', 5000);
  assertHanded(s.got, seqRange(1, 7));
  assert.equal(gw.conns.length, 1, 'no reconnect');
});

// A connection lost while the listing is read, with a push held for it:
// the next connection's listing places the conversation, once.
for (const startAtLatest of [false, true]) {
  test(`a reconnect while the listing is read (startAtLatest ${startAtLatest})`, async (t) => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 7; i++) gw.add(CONV, `m${i}`);
    gw.delivered.set(CONV, 3n);
    await nextMilli();
    const release = gw.holdSyncConvs();
    const s = open(gw, { startAtLatest });
    t.after(() => s.close());
    await s.start();
    gw.push(gw.live[0], gw.add(CONV, 'pushed'));
    gw.live[0].close(1006);
    await until(() => gw.conns.length === 2 && gw.live.length === 1, 'the next connection');
    release();
    await until(() => s.state === State.ONLINE, 'online');
    await until(() => s.got.includes(8), 'seq 8');
    assertHanded(s.got, seqRange(4, 8));
  });
}

// The gateway drops the requests of a connection closed before it handled
// them: close keeps the connection until its last DELIVERED is answered, so
// the server learns what was handed over, and hands nothing over meanwhile.
test('close waits for the answer to its last DELIVERED', async () => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  gw.add(CONV, 'm2');
  const s = open(gw, { ackIntervalMs: 3_600_000 });
  await s.start();
  await until(() => s.got.length === 2, 'both handed over');
  let answer;
  gw.onRequest = (ws, op) => (op === Op.DELIVERED
    ? new Promise((resolve) => { answer = resolve; }) : undefined);
  s.close();
  await until(() => answer, 'the last DELIVERED sent');
  const [ws] = gw.live;
  assert.ok(ws, 'the connection closed before its DELIVERED was answered');
  gw.push(ws, gw.add(CONV, 'm3'));
  answer();
  await until(() => gw.delivered.get(CONV) === 2n, 'DELIVERED of 2 kept by the server');
  await until(() => gw.live.length === 0, 'the connection closed after the answer');
  assert.deepEqual(s.got, [1, 2], 'a push after close was handed over');
});

// close's last DELIVERED is sent while a refusal of DELIVERED is still
// remembered: the server may have gained the op meanwhile (upgraded, the
// session reconnected to the new release), and a session that ends has no
// later to report its positions at.
for (const { name, refuse, conns } of [
  { name: 'answers UNSUPPORTED', refuse: (gw) => gw.unsupported, conns: 1 },
  { name: 'closes on unknown opcodes', refuse: (gw) => gw.unknown, conns: 2 },
]) {
  test(`close reports DELIVERED while a refusal of it is remembered (${name})`, async (t) => {
    const gw = new FakeGateway();
    refuse(gw).add(Op.DELIVERED);
    let refused = 0;
    gw.onRequest = (ws, op) => {
      if (op === Op.DELIVERED && refuse(gw).has(op)) refused++;
    };
    for (let i = 1; i <= 3; i++) gw.add(CONV, `m${i}`);
    const s = open(gw, { resyncIntervalMs: 3_600_000 }); // remembered for an hour
    t.after(() => s.close());
    await s.start();
    await until(() => s.got.length === 3 && refused > 0 && gw.conns.length === conns &&
      s.state === State.ONLINE, 'a DELIVERED refused');

    // The upgrade restarts the server: the session comes back to the
    // release that has DELIVERED.
    refuse(gw).delete(Op.DELIVERED);
    gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 0);
    await until(() => gw.conns.length === conns + 1 && s.state === State.ONLINE,
      'online on the upgraded server');
    s.close();
    await until(() => gw.delivered.get(CONV) === 3n, 'DELIVERED of 3 at close');
  });
}

// An ended session hands nothing over, whatever answers on the connection
// it keeps for its last DELIVERED: a SEND acked or a SYNC page answered in
// that second must not emit 'message' (or 'outbox') after 'ended'. Before
// end kept the connection, closing it rejected both requests at once.
test('nothing is handed over after end while the last DELIVERED is awaited', async (t) => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  const s = open(gw, { ackIntervalMs: 3_600_000 });
  t.after(() => s.close());
  await s.start();
  await until(() => s.got.length === 1, 'm1 handed over');
  await until(() => s.state === State.ONLINE, 'online');
  const held = [];
  gw.onRequest = (ws, op) => ((op === Op.SEND || op === Op.SYNC || op === Op.DELIVERED)
    ? new Promise((resolve) => held.push({ op, resolve })) : undefined);
  // A gap: m3 pushed without m2, so a SYNC is in flight.
  gw.add(CONV, 'm2');
  gw.push(gw.live[0], gw.add(CONV, 'm3'));
  const e = s.send({ convId: CONV, text: 'mine' });
  await until(() => held.some((h) => h.op === Op.SYNC) && held.some((h) => h.op === Op.SEND),
    'the SYNC and the SEND in flight');
  const after = [];
  let ended = false;
  s.on('ended', () => { ended = true; });
  s.on('message', (m) => { if (ended) after.push(`message ${m.seq}`); });
  s.on('outbox', (x) => { if (ended) after.push(`outbox ${x.state}`); });
  s.close();
  assert.equal(e.state, 'failed');
  after.length = 0; // what end itself reported
  await until(() => held.some((h) => h.op === Op.DELIVERED), 'the last DELIVERED sent');
  for (const h of held.filter((x) => x.op !== Op.DELIVERED)) h.resolve();
  await new Promise((r) => setTimeout(r, 50));
  for (const h of held.filter((x) => x.op === Op.DELIVERED)) h.resolve();
  await until(() => gw.live.length === 0, 'the connection closed');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(after, [], 'events after ended');
  assert.deepEqual(s.got, [1]);
  assert.equal(e.state, 'failed');
});

// An application that closes the session from a listener gets no message
// after that and no conversation reported ('conv'), and the last DELIVERED
// covers every message it got: the rest of a fetched page used to be handed
// over after 'ended', past the position the last DELIVERED had just taken,
// so the server's position lagged what the application had; the rest of a
// listing was reported.
for (const { event, closeOn, want, delivered } of [
  { event: 'message', closeOn: (m) => m.seq === 1n, want: [1], delivered: 1n },
  { event: 'conv', closeOn: (c) => c.convId === CONV, want: [], delivered: undefined },
]) {
  test(`close from a ${event} listener: nothing after it, all it got acked`, async (t) => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 3; i++) gw.add(CONV, `m${i}`);
    gw.add('p2p:1:3', 'other 1'); // listed after CONV
    const s = open(gw, { ackIntervalMs: 3_600_000 });
    t.after(() => s.close());
    recordAfterEnd(s);
    s.on(event, (x) => { if (closeOn(x)) s.close(); });
    await s.start();
    await until(() => s.state === State.ENDED, 'ended');
    await until(() => gw.live.length === 0, 'the connection closed');
    assert.deepEqual(s.after, [], 'events after ended');
    assertHanded(s.got, want);
    assert.equal(gw.delivered.get(CONV), delivered, "the server's delivered position");
  });
}

// Nor is a listing answered in that second reported ('conv').
test('a listing answered after end reports nothing', async (t) => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  const s = open(gw, { ackIntervalMs: 3_600_000, resyncIntervalMs: 30 });
  t.after(() => s.close());
  await s.start();
  await until(() => s.got.length === 1 && s.state === State.ONLINE, 'm1 handed over');
  const convs = [];
  s.on('conv', (c) => convs.push(c.convId));
  let listed = false;
  let release;
  gw.onRequest = (ws, op) => {
    if (op !== Op.SYNC_CONVS) return undefined;
    listed = true;
    return new Promise((resolve) => { release = resolve; });
  };
  await until(() => listed, 'the resync listing in flight');
  gw.add(GROUP, 'g1');
  let answer;
  gw.onRequest = (ws, op) => (op === Op.DELIVERED
    ? new Promise((resolve) => { answer = resolve; }) : undefined);
  s.close();
  await until(() => answer, 'the last DELIVERED sent');
  release();
  await new Promise((r) => setTimeout(r, 50));
  answer();
  await until(() => gw.live.length === 0, 'the connection closed');
  assert.deepEqual(convs, [], 'conversations reported after ended');
  assert.deepEqual(s.got, [1]);
});

// A token refresh in flight when the session ends leaves no timer behind:
// its failure scheduled another try 30 s on, which kept Node up after close.
test('a refresh in flight at end leaves no timer running', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  let refreshing = false;
  gw.onRequest = (ws, op) => {
    if (op === Op.REFRESH) refreshing = true;
    return op === Op.REFRESH; // unanswered
  };
  s.positions.setTokens({ ...s.positions.tokens(), accessExpiryMs: Date.now() + 100 });
  s.scheduleRefresh(s.conn);
  await until(() => refreshing, 'the REFRESH sent');
  s.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(s.timers.size, 0, 'timers left after end');
});

// loseRefresh has the next REFRESH of s go unanswered (the server rotating
// its token first when rotate), its connection dropped when drop, else left
// to time out, and sends it now rather than at four fifths of the access
// token's life. It resolves once that REFRESH reached the server.
async function loseRefresh(gw, s, { rotate, drop, times = 1 }) {
  let lost = 0;
  gw.onRequest = (ws, op, req) => {
    if (op !== Op.REFRESH || lost >= times) return undefined;
    lost++;
    if (rotate) gw.rotate(req.refreshToken);
    if (drop) ws.close(1006);
    return true;
  };
  s.positions.setTokens({ ...s.positions.tokens(), accessExpiryMs: Date.now() + 100 });
  s.scheduleRefresh(s.conn);
  await until(() => lost === 1, 'the REFRESH sent', 2000);
}

// The server rotates the refresh token at every REFRESH and takes the old
// one back only once, within 30 s: a REFRESH whose answer is lost is to be
// sent again at once. It was tried again 30 s later on the dead connection
// (which did nothing), and the next connection, logged in by the access
// token, refreshed at four fifths of its life, minutes on, presenting the
// rotated-away token: the server took it for stolen and signed the device
// out.
for (const { name, rotate, drop } of [
  { name: 'rotated, connection lost', rotate: true, drop: true },
  { name: 'not acted on, connection lost', rotate: false, drop: true },
  { name: 'rotated, timed out', rotate: true, drop: false },
]) {
  test(`a REFRESH whose answer is lost is sent again at once (${name})`, async (t) => {
    const gw = new FakeGateway();
    const s = open(gw, { requestTimeoutMs: 300 });
    t.after(() => s.close());
    await s.start();
    await until(() => s.state === State.ONLINE, 'online');
    await loseRefresh(gw, s, { rotate, drop });
    await until(() => gw.refreshes.length === 2, 'the refresh token presented again', 3000);
    assert.deepEqual(gw.refreshes, ['refresh-1', 'refresh-1']);
    await until(() => s.positions.tokens().refresh === gw.refreshToken, 'the new pair kept');
    assert.equal(gw.reused, 0, 'a refresh token presented after its grace');
    assert.equal(s.positions.tokens().unsure, undefined, 'the new token marked unsure');
    assert.notEqual(s.state, State.ENDED);
  });
}

// A token whose REFRESH went unanswered twice was rotated twice: the
// server refuses it when it comes a third time. The session drops it and
// goes on with its access token until that expires.
test('a refresh token refused after lost answers is dropped', async (t) => {
  const gw = new FakeGateway();
  const positions = new MemoryPositions();
  positions.setTokens({ access: 'access-1', refresh: 'refresh-1', username: 'me' });
  const s = open(gw, { password: '', positions });
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  await loseRefresh(gw, s, { rotate: true, drop: true, times: 2 });
  await until(() => gw.refreshes.length === 3, 'the refresh token presented again', 3000);
  await until(() => s.positions.tokens().refresh === '', 'the refused refresh token dropped');
  assert.deepEqual(gw.refreshes, ['refresh-1', 'refresh-1', 'refresh-1']);
  assert.equal(gw.reused, 0, 'a refresh token presented after its grace');
  await until(() => s.state === State.ONLINE, 'online with the access token');
  assert.equal(s.positions.tokens().access, 'access-1');
});

// A session closed while start is logging in stays ended: start's login
// used to make it the session's connection all the same, and the ended
// session went ONLINE again, handed messages over and kept the connection.
test('close during start leaves the session ended', async () => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  const s = open(gw);
  let ended = false;
  const after = [];
  s.on('ended', () => { ended = true; });
  s.on('message', (m) => { if (ended) after.push(`message ${m.seq}`); });
  s.on('state', (e) => { if (ended) after.push(`state ${e.state}`); });
  const started = s.start();
  await new Promise((r) => setTimeout(r, 1)); // the socket opens; LOGIN is out
  s.close();
  await started.catch(() => {});
  await new Promise((r) => setTimeout(r, 50));
  try {
    assert.equal(s.state, State.ENDED);
    assert.deepEqual(after, [], 'events after ended');
    assert.equal(gw.live.length, 0, 'a connection left open');
  } finally {
    if (s.conn) s.conn.close(); // the leaked connection's heartbeat would keep Node up
  }
});

// dropDuringLogin starts a session handed m1 (acks only at close), drops its
// connection and resolves once the reconnect's LOGIN waits at the gateway;
// login(ws, op, req) answers LOGIN as onRequest does, by default unanswered.
async function dropDuringLogin(gw, login = () => true) {
  gw.add(CONV, 'm1');
  const s = open(gw, { ackIntervalMs: 3_600_000 });
  await s.start();
  await until(() => s.got.length === 1 && s.state === State.ONLINE, 'm1 handed over');
  let loggingIn = false;
  gw.onRequest = (ws, op, req) => {
    if (op !== Op.LOGIN) return undefined;
    loggingIn = true;
    return login(ws, op, req);
  };
  gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 0);
  await until(() => loggingIn, 'the reconnect LOGIN sent');
  gw.add(CONV, 'm2'); // stored while away: the closed session must not hand it over
  recordAfterEnd(s);
  return s;
}

// recordAfterEnd collects in s.after the messages, conversations and states
// s reports from its 'ended' event on.
function recordAfterEnd(s) {
  s.after = [];
  let ended = false;
  s.on('ended', () => { ended = true; });
  s.on('message', (m) => { if (ended) s.after.push(`message ${m.seq}`); });
  s.on('conv', (c) => { if (ended) s.after.push(`conv ${c.convId}`); });
  s.on('state', (e) => { if (ended) s.after.push(`state ${e.state}`); });
}

// Close while a reconnect logs in: the connection that had the hand-over is
// gone, so the login is let finish, briefly, and carries the last
// DELIVERED. Without it the server keeps an older delivered position, from
// which the next start at the latest hands the same messages over again.
test('close while a reconnect logs in sends the last DELIVERED on it', async () => {
  const gw = new FakeGateway();
  let answer;
  const s = await dropDuringLogin(gw, () => new Promise((resolve) => { answer = resolve; }));
  s.close();
  s.after.length = 0; // what end itself reported
  answer();
  await until(() => gw.delivered.get(CONV) === 1n, 'DELIVERED of 1 kept by the server');
  await until(() => gw.live.length === 0, 'the connection closed after the answer');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(s.after, [], 'events after ended');
  assertHanded(s.got, [1]);
});

// End while a reconnect logs in, when that login then fails: the attempt
// that was to carry the last DELIVERED (or the LOGOUT) has no connection, so,
// as when the end finds the session offline, one more login within the
// final wait carries it. The session used to return at once: the server
// kept the older delivered position, or the device's tokens.
for (const { name, end, done } of [
  { name: 'close sends the last DELIVERED', end: (s) => s.close(),
    done: (gw) => gw.delivered.get(CONV) === 1n },
  { name: 'logout signs the device out', end: (s) => s.logout(),
    done: (gw) => gw.logouts === 1 && gw.delivered.get(CONV) === 1n },
]) {
  test(`a reconnect login failing after the end: ${name} on one more`, async () => {
    const gw = new FakeGateway();
    let answer;
    // Only the reconnect's LOGIN waits; the one after the end is answered.
    const s = await dropDuringLogin(gw, () => (answer ? undefined
      : new Promise((resolve) => { answer = resolve; })));
    const opened = gw.conns.length;
    await end(s);
    s.after.length = 0; // what end itself reported
    gw.failLogins = 1;
    answer();
    await until(() => done(gw), `${name} on a connection of its own`, 1500);
    await until(() => gw.live.length === 0, 'every connection closed', 1500);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(gw.conns.length, opened + 1, 'connections opened after the end');
    assert.deepEqual(s.after, [], 'events after ended');
    assertHanded(s.got, [1]);
  });
}

// A login that never answers keeps the ended session's connection no
// longer than the last DELIVERED would be awaited, not for the request
// timeout.
test('close while a reconnect login hangs closes within the final wait', async () => {
  const gw = new FakeGateway();
  const s = await dropDuringLogin(gw);
  s.close();
  s.after.length = 0;
  await until(() => gw.live.length === 0, 'the connection closed', 2000);
  assert.deepEqual(s.after, [], 'events after ended');
  assertHanded(s.got, [1]);
  assert.equal(gw.delivered.get(CONV), undefined);
});

// dropToOffline starts a session handed m1 and resolves once the gateway
// has closed its connection with an hour's reconnect delay, as a restarting
// server does, and the session waits it out. With acked, the gateway has
// m1's DELIVERED by then; otherwise only the last one at close reports it.
async function dropToOffline(gw, { acked = false } = {}) {
  gw.add(CONV, 'm1');
  const s = open(gw, acked ? {} : { ackIntervalMs: 3_600_000 });
  await s.start();
  await until(() => s.got.length === 1 && s.state === State.ONLINE, 'm1 handed over');
  if (acked) await until(() => gw.delivered.get(CONV) === 1n, 'DELIVERED of 1');
  gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 3_600_000);
  await until(() => s.state === State.OFFLINE, 'offline');
  gw.add(CONV, 'm2'); // stored while away: the closed session must not hand it over
  recordAfterEnd(s);
  return s;
}

// Close while offline, waiting to reconnect: no connection is left to carry
// the last DELIVERED, nor is one on its way, so close opens one and logs in
// for it alone, handing nothing over.
test('close while offline logs in once to send the last DELIVERED', async () => {
  const gw = new FakeGateway();
  const s = await dropToOffline(gw);
  const opened = gw.conns.length;
  s.close();
  s.after.length = 0;
  await until(() => gw.delivered.get(CONV) === 1n, 'DELIVERED of 1 kept by the server', 1500);
  await until(() => gw.live.length === 0, 'the connection closed after the answer');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(gw.conns.length, opened + 1, 'connections opened by close');
  assert.deepEqual(s.after, [], 'events after ended');
  assertHanded(s.got, [1]);
});

// A gateway that never answers keeps close's connection opening no longer
// than the last DELIVERED is awaited, not for the request timeout: Node
// exits once the tests are done.
test('close while offline with the gateway unreachable gives up within the final wait',
  async () => {
    const gw = new FakeGateway();
    const s = await dropToOffline(gw);
    const opened = gw.conns.length;
    gw.unreachable = true;
    const start = Date.now();
    s.close();
    s.after.length = 0;
    await until(() => gw.conns.length === opened + 1, 'close trying a connection', 500);
    await until(() => gw.conns[opened].readyState === 3, 'the attempt given up', 2000);
    assert.ok(Date.now() - start < 1500, `gave up after ${Date.now() - start} ms`);
    assert.deepEqual(s.after, [], 'events after ended');
    assertHanded(s.got, [1]);
    assert.equal(gw.delivered.get(CONV), undefined);
  });

// With every position handed over acknowledged, close while offline has
// nothing to report and opens no connection.
test('close while offline with everything acknowledged opens nothing', async () => {
  const gw = new FakeGateway();
  const s = await dropToOffline(gw, { acked: true });
  const opened = gw.conns.length;
  s.close();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(gw.conns.length, opened, 'connections opened by close');
  assertHanded(s.got, [1]);
});

// A reconnect whose socket is still opening at the close is given up with
// the final wait too, not left to the open's timeout (the request timeout).
test('close while a reconnect socket is opening gives it up within the final wait', async () => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  const s = open(gw, { ackIntervalMs: 3_600_000, requestTimeoutMs: 5000 });
  await s.start();
  await until(() => s.got.length === 1 && s.state === State.ONLINE, 'm1 handed over');
  gw.unreachable = true;
  gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 0);
  await until(() => gw.conns.length === 2, 'the reconnect socket opening');
  s.close();
  await until(() => gw.conns[1].readyState === 3, 'the opening socket closed', 2000);
  assert.equal(gw.logins.length, 1, 'a LOGIN after the end');
  assertHanded(s.got, [1]);
});

// A send after end fails at once with the session's end: it used to stay
// pending, with a deadline timer that kept Node up for sendTimeoutMs.
test('a send after end fails at once and arms no deadline', async () => {
  const gw = new FakeGateway();
  const s = open(gw, { sendTimeoutMs: 60_000 });
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  s.close();
  const e = s.send({ convId: CONV, text: 'too late' });
  assert.equal(e.state, 'failed');
  assert.equal(e.deadline, undefined, 'a deadline armed');
  await assert.rejects(e.result, (err) => err === s.ended);
  assert.equal(gw.sends.size, 0, 'sent after end');
});

// Logout while a reconnect logs in: that login ends after the LOGOUT that
// was to revoke the device, so it is signed out too, and its tokens are
// not saved; otherwise the device would stay signed in, here and on the
// server.
test('logout while a reconnect logs in signs that login out too', async () => {
  const gw = new FakeGateway();
  let answer;
  const s = await dropDuringLogin(gw, () => new Promise((resolve) => { answer = resolve; }));
  await s.logout();
  s.after.length = 0; // what end itself reported
  answer();
  await until(() => gw.logouts === 1, 'LOGOUT on the reconnect');
  await until(() => gw.live.length === 0, 'the connection closed');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(s.positions.tokens(), null, 'tokens saved after logout');
  assert.deepEqual(s.after, [], 'events after ended');
  assertHanded(s.got, [1]);
});

// Logout while the first login is out: the same, for start.
test('logout during start signs that login out', async () => {
  const gw = new FakeGateway();
  let answer;
  gw.onRequest = (ws, op) => (op === Op.LOGIN
    ? new Promise((resolve) => { answer = resolve; }) : undefined);
  const s = open(gw);
  const started = s.start();
  await until(() => answer, 'the LOGIN sent');
  await s.logout();
  answer();
  await assert.rejects(started);
  await until(() => gw.logouts === 1, 'LOGOUT on the first connection');
  await until(() => gw.live.length === 0, 'the connection closed');
  assert.equal(s.positions.tokens(), null, 'tokens saved after logout');
});

// Logout while the first login is out, when that login then fails: the
// saved login it used (a reload's) signs the device out on a connection of
// its own, as for a reconnect's failing login.
test('logout during start whose login fails signs out with the saved login', async () => {
  const gw = new FakeGateway();
  let answer;
  gw.onRequest = (ws, op) => (op === Op.LOGIN && !answer
    ? new Promise((resolve) => { answer = resolve; }) : undefined);
  const positions = new MemoryPositions();
  positions.setTokens({ access: 'access-1', refresh: 'refresh-1', username: 'me' });
  const s = open(gw, { password: '', positions });
  const started = s.start();
  await until(() => answer, 'the LOGIN sent');
  await s.logout();
  gw.failLogins = 1;
  answer();
  await assert.rejects(started);
  await until(() => gw.logouts === 1, 'LOGOUT on a connection of its own', 1500);
  await until(() => gw.live.length === 0, 'that connection closed', 1500);
  assert.deepEqual(gw.logins.map((l) => l.token), ['access-1', 'access-1']);
  assert.equal(s.positions.tokens(), null, 'tokens saved after logout');
});

// A logout after the session ended (the app closed it first) forgot the
// saved tokens and sent nothing, so they stayed valid on the server. It now
// signs them out on a connection of its own, and says when it could not.
test('logout after close signs the saved login out on the server', async () => {
  const gw = new FakeGateway();
  const s = open(gw);
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  s.close();
  await until(() => gw.live.length === 0, 'the connection closed');
  const before = gw.logins.length;
  await s.logout();
  assert.equal(gw.logouts, 1, 'no LOGOUT after close');
  assert.deepEqual(gw.logins.slice(before).map((l) => l.token), ['access-1'],
    'logged in with the saved token, and only with it');
  assert.equal(s.positions.tokens(), null);
  await until(() => gw.live.length === 0, 'the connection closed');

  // Unreachable: the logout rejects rather than pass for done.
  const gw2 = new FakeGateway();
  const s2 = open(gw2, { requestTimeoutMs: 200 });
  await s2.start();
  await until(() => s2.state === State.ONLINE, 'online');
  s2.close();
  await until(() => gw2.live.length === 0, 'the connection closed');
  gw2.unreachable = true;
  await assert.rejects(s2.logout());
  assert.equal(gw2.logouts, 0);
});

// The gateway closes a connection once it is signed out, so logout sends
// what was handed over first: a device that signs in again later starts
// from that position.
test('logout reports what was handed over before signing out', async () => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  const s = open(gw, { ackIntervalMs: 3_600_000 });
  await s.start();
  await until(() => s.got.length === 1 && s.state === State.ONLINE, 'm1 handed over');
  await s.logout();
  await until(() => gw.live.length === 0, 'the connection closed');
  assert.equal(gw.logouts, 1);
  assert.equal(gw.delivered.get(CONV), 1n, 'DELIVERED of 1 before the LOGOUT');
  assert.equal(s.positions.tokens(), null);
});

// A push that comes while the LOGOUT is out is not handed over: the last
// DELIVERED went before the LOGOUT and the gateway closes the connection
// after it, so the server never learns of it, and a later sign-in of the
// device would hand it over again.
test('logout hands over nothing that comes after its last DELIVERED', async () => {
  const gw = new FakeGateway();
  gw.add(CONV, 'm1');
  const s = open(gw, { ackIntervalMs: 3_600_000 });
  await s.start();
  await until(() => s.got.length === 1 && s.state === State.ONLINE, 'm1 handed over');
  gw.onRequest = (ws, op) => {
    if (op !== Op.LOGOUT) return undefined;
    gw.push(ws, gw.add(CONV, 'm2'));
    return Promise.resolve();
  };
  await s.logout();
  await until(() => gw.live.length === 0, 'the connection closed');
  assert.equal(gw.logouts, 1);
  assert.equal(gw.delivered.get(CONV), 1n, 'DELIVERED of 1 before the LOGOUT');
  assertHanded(s.got, [1]);
});

// Logout while offline, waiting to reconnect: the saved login, taken before
// logout clears it, signs the device out on the server on a connection of
// its own (with the last DELIVERED); otherwise the server keeps the
// device's tokens valid until they expire.
test('logout while offline signs the device out on the server', async () => {
  const gw = new FakeGateway();
  const s = await dropToOffline(gw);
  await s.logout();
  s.after.length = 0;
  await until(() => gw.logouts === 1, 'LOGOUT on a connection of its own', 1500);
  await until(() => gw.live.length === 0, 'that connection closed', 1500);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(gw.logins.at(-1).token, 'access-1', 'the saved login used');
  assert.equal(gw.delivered.get(CONV), 1n, 'the last DELIVERED');
  assert.equal(s.positions.tokens(), null, 'tokens saved after logout');
  assert.deepEqual(s.after, [], 'events after ended');
  assertHanded(s.got, [1]);
});

// A gateway older than DELIVERED closes the connection for it, dropping
// the requests sent after it; logout's LOGOUT must reach the server all the
// same, or the device's tokens stay valid there until they expire. Here
// logout's DELIVERED is the session's first, so no refusal of it is
// remembered yet; the LOGOUT goes on one more connection, without a
// DELIVERED. Online, logout used to reject with a TypeError (the session's
// connection gone); offline, the LOGOUT went beside the DELIVERED, and was
// lost with it.
for (const { name, setup, more } of [
  { name: 'online', more: 1, setup: async (gw) => {
    gw.add(CONV, 'm1');
    const s = open(gw, { ackIntervalMs: 3_600_000 });
    await s.start();
    await until(() => s.got.length === 1 && s.state === State.ONLINE, 'm1 handed over');
    return s;
  } },
  { name: 'offline', more: 2, setup: (gw) => dropToOffline(gw) },
]) {
  test(`logout ${name} signs out on a gateway that closes on DELIVERED`, async () => {
    const gw = new FakeGateway();
    gw.unknown.add(Op.DELIVERED);
    const s = await setup(gw);
    const opened = gw.conns.length;
    await s.logout();
    await until(() => gw.logouts === 1, 'the LOGOUT handled', 1500);
    await until(() => gw.live.length === 0, 'every connection closed', 1500);
    assert.equal(gw.conns.length, opened + more, 'connections opened by logout');
    assert.equal(s.positions.tokens(), null, 'tokens saved after logout');
  });
}

// A LOGOUT whose answer is lost may have signed the device out or not: the
// caller is told so with an OutcomeUnknownError (the LOGOUT and why no
// answer came), not the bare connection error a request never sent also
// gives; a refusal stays a ResonanceError. Logout rejected with the
// ClosedError or TimeoutError alone. Online, the LOGOUT goes once more on
// a connection of its own (retried) within the final wait, whether the
// connection dropped or stayed up without answering; a timed-out LOGOUT
// was not sent again.
for (const { name, lose, after, want, retried } of [
  { name: 'connection lost', lose: 'drop', want: 'OutcomeUnknownError', retried: true },
  { name: 'timed out', lose: 'silence', want: 'OutcomeUnknownError', retried: true },
  { name: 'connection lost, after close', lose: 'drop', after: true,
    want: 'OutcomeUnknownError' },
  { name: 'refused', lose: 'refuse', want: 'ResonanceError' },
]) {
  test(`a logout whose answer is lost says its outcome is unknown (${name})`, async () => {
    const gw = new FakeGateway();
    const s = open(gw, { requestTimeoutMs: 300 });
    await s.start();
    await until(() => s.state === State.ONLINE, 'online');
    if (after) {
      s.close();
      await until(() => gw.live.length === 0, 'the connection closed');
    }
    let lost = false;
    gw.onRequest = (ws, op) => {
      if (op !== Op.LOGOUT || lost) return undefined;
      lost = true;
      if (lose === 'refuse') {
        gw.unsupported.add(Op.LOGOUT);
        return undefined;
      }
      gw.logouts++; // the server signed the device out
      if (lose === 'drop') ws.close(1006);
      return true;
    };
    const err = await s.logout().then(() => null, (e) => e);
    assert.equal(err?.name, want, `logout rejected with ${err}, want ${want}`);
    if (want === 'OutcomeUnknownError') {
      assert.equal(err.op, Op.LOGOUT);
      assert.equal(err.cause?.name, lose === 'drop' ? 'ClosedError' : 'TimeoutError');
    }
    assert.equal(s.positions.tokens(), null, 'tokens saved after logout');
    gw.unsupported.clear();
    if (retried) await until(() => gw.logouts === 2, 'the lost LOGOUT sent again', 1500);
    await until(() => gw.live.length === 0, 'every connection closed', 1500);
  });
}

// A LOGOUT whose answer is lost may have landed: the server then revoked
// the device's tokens, and the connection of its own that sends it again
// finds them refused. The device is signed out, which logout wanted: that
// connection does not log in with the password just to send a LOGOUT, as
// logout on an ended session (signOutEnded) does not.
test('a lost LOGOUT that landed is not sent again after a password login', async () => {
  const gw = new FakeGateway();
  const s = open(gw);
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  let lost = false;
  gw.onRequest = (ws, op) => {
    if (op !== Op.LOGOUT || lost) return undefined;
    lost = true;
    gw.logouts++;
    gw.accessTokens.clear(); // the server revoked the device's tokens
    ws.close(1006);
    return true;
  };
  const before = gw.logins.length;
  const err = await s.logout().then(() => null, (e) => e);
  assert.equal(err?.name, 'OutcomeUnknownError', `logout rejected with ${err}`);
  await until(() => gw.conns[1]?.readyState === 3, 'the connection of its own closed', 1500);

  const logins = gw.logins.slice(before);
  assert.ok(logins.length > 0, 'no login on a connection of its own');
  assert.equal(logins.filter((l) => l.password).length, 0,
    `logged in with the password: ${logins.map((l) => (l.password ? 'password' : l.token))}`);
  assert.equal(gw.logouts, 1, 'LOGOUTs');
});

// createGroup and manageGroup send again under one client_msg_id after a
// lost answer, a few times. Giving up while no answer settled an attempt
// that went unanswered, the group may exist or the change be made: the
// caller is told so with an OutcomeUnknownError (the op, and the lost
// attempt's error as cause), not the bare TimeoutError or ClosedError a
// request never sent also gives. A final refusal of a later attempt
// settles it; one of a server that did not act on the attempt (BUSY,
// RATE_LIMITED) does not. Requests never sent (offline) stay the plain
// error. Both rejected with the plain error after a lost answer.
for (const { name, call, lose, refuse, offline, want, cause } of [
  { name: 'every answer lost', call: 'create', lose: 'silence', want: 'OutcomeUnknownError',
    cause: 'TimeoutError' },
  { name: 'the only attempt cut by the end', call: 'manage', lose: 'end',
    want: 'OutcomeUnknownError', cause: 'ClosedError' },
  { name: 'lost, then refused', call: 'manage', lose: 'drop', refuse: ErrorCode.UNSUPPORTED,
    want: 'ResonanceError' },
  { name: 'lost, then busy', call: 'manage', lose: 'drop', refuse: ErrorCode.BUSY,
    want: 'OutcomeUnknownError', cause: 'ClosedError' },
  { name: 'lost, then rate limited', call: 'create', lose: 'drop',
    refuse: ErrorCode.RATE_LIMITED, want: 'OutcomeUnknownError', cause: 'ClosedError' },
  { name: 'never sent', call: 'create', offline: true, want: 'TimeoutError' },
]) {
  test(`a group change whose answer is lost says its outcome is unknown (${name})`, async (t) => {
    const gw = new FakeGateway();
    const s = offline ? await dropToOffline(gw) : open(gw);
    t.after(() => s.close());
    s.opts.requestTimeoutMs = 100;
    if (!offline) {
      await s.start();
      await until(() => s.state === State.ONLINE, 'online');
    }
    const op = call === 'create' ? Op.CREATE_GROUP : Op.MANAGE_GROUP;
    const ids = new Set();
    gw.onRequest = (ws, reqOp, req) => {
      if (reqOp !== op) return undefined;
      ids.add(req.clientMsgId);
      if (gw.refused.has(op)) return undefined;
      if (lose === 'drop') {
        gw.refused.set(op, refuse); // the attempts after the lost one are refused
        ws.close(1006);
        return true;
      }
      if (lose === 'end') setTimeout(() => s.close(), 0);
      return true;
    };
    const done = call === 'create' ? s.createGroup('g', [2n])
      : s.manageGroup({ convId: GROUP, action: GroupAction.RENAME, name: 'renamed' });
    const err = await done.then(() => null, (e) => e);
    assert.equal(err?.name, want, `rejected with ${err}, want ${want}`);
    if (cause) {
      assert.equal(err.op, op);
      assert.equal(err.cause?.name, cause);
    }
    assert.ok(ids.size <= 1, `attempts under ${ids.size} client_msg_ids`);
  });
}

// REGISTER is not repeated: a lost answer leaves the account created or
// not, which the caller is told with an OutcomeUnknownError rather than the
// ClosedError a gateway never reached also gives; a refusal stays a
// ResonanceError.
for (const { name, lose, want } of [
  { name: 'connection lost', lose: true, want: 'OutcomeUnknownError' },
  { name: 'refused', lose: false, want: 'ResonanceError' },
]) {
  test(`a register whose answer is lost says its outcome is unknown (${name})`, async () => {
    const gw = new FakeGateway();
    globalThis.WebSocket = gw.WebSocket;
    gw.onRequest = (ws, op) => {
      if (op !== Op.REGISTER || !lose) return undefined;
      ws.close(1006);
      return true;
    };
    const err = await register('ws://fake/', 'newbie', 'secret-pw').then(() => null, (e) => e);
    assert.equal(err?.name, want, `register rejected with ${err}, want ${want}`);
    if (want === 'OutcomeUnknownError') {
      assert.equal(err.op, Op.REGISTER);
      assert.equal(err.cause?.name, 'ClosedError');
    }
    await until(() => gw.live.length === 0, 'the connection closed');
  });
}

// changePassword answered: the server revoked every token but the pair in
// its answer, so the session saves that pair, restarts its refresh
// schedule from it (a refresh due before would present a revoked token)
// and keeps the new password for its password logins.
test('a password change saves the new pair, which later reconnects use', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  // A refresh due in a second, by the pair the change is to revoke.
  s.positions.setTokens({ ...s.positions.tokens(), accessExpiryMs: Date.now() + 100 });
  s.scheduleRefresh(s.conn);

  gw.tokenLifeMs = 1500; // the new pair's refresh falls due in about a second too
  const resp = await s.changePassword('secret-pw', 'new-secret-1');
  gw.tokenLifeMs = 3_600_000;
  assert.equal(resp.token, 'access-2');
  assert.equal(gw.password, 'new-secret-1');
  const tk = s.positions.tokens();
  assert.equal(tk.access, resp.token, 'access token saved');
  assert.equal(tk.refresh, resp.refreshToken, 'refresh token saved');
  assert.equal(tk.accessExpiryMs, Number(resp.tokenExpiresMs), 'expiry saved');

  await until(() => gw.refreshes.length > 0, 'a refresh', 3000);
  assert.deepEqual(gw.refreshes, ['refresh-2'], 'refresh tokens presented');
  assert.equal(gw.reused, 0, 'a revoked refresh token presented');

  // A reconnect logs in by the saved access token.
  const before = gw.logins.length;
  gw.live[0].close(1006);
  await until(() => gw.logins.length > before && s.state === State.ONLINE, 'online again');
  assert.equal(gw.logins.at(-1).token, s.positions.tokens().access);
  assert.ok(gw.accessTokens.has(gw.logins.at(-1).token), 'logged in by a revoked token');

  // Tokens lost on the server: the password login takes the new password.
  gw.accessTokens.clear();
  gw.refreshToken = '';
  const again = gw.logins.length;
  gw.live[0].close(1006);
  await until(() => gw.logins.length > again && s.state === State.ONLINE, 'online by password');
  assert.equal(gw.logins.at(-1).password, 'new-secret-1');
  assert.notEqual(s.state, State.ENDED);
});

// A refusal changes nothing: not the tokens, not the password the session
// logs in with. Both are the server's refusals, as it checks the new
// password before the old one.
for (const { name, oldPassword, newPassword, code } of [
  { name: 'wrong old password', oldPassword: 'not-my-pw', newPassword: 'new-secret-1',
    code: ErrorCode.INVALID_CREDENTIALS },
  { name: 'too short', oldPassword: 'secret-pw', newPassword: 'short',
    code: ErrorCode.BAD_REQUEST },
  { name: 'one repeated character', oldPassword: 'secret-pw', newPassword: 'aaaaaaaaaa',
    code: ErrorCode.BAD_REQUEST },
  { name: 'the username', oldPassword: 'secret-pw', newPassword: 'ME-THE-USER',
    code: ErrorCode.BAD_REQUEST },
]) {
  test(`a refused password change changes nothing (${name})`, async (t) => {
    const gw = new FakeGateway();
    gw.username = 'me-the-user';
    const s = open(gw);
    t.after(() => s.close());
    await s.start();
    await until(() => s.state === State.ONLINE, 'online');
    const tokens = s.positions.tokens();

    const err = await s.changePassword(oldPassword, newPassword).then(() => null, (e) => e);
    assert.equal(err?.name, 'ResonanceError', `rejected with ${err}`);
    assert.equal(err.code, code);
    assert.equal(gw.password, 'secret-pw');
    assert.deepEqual(s.positions.tokens(), tokens, 'tokens changed');

    // The next password login still takes the old password.
    gw.accessTokens.clear();
    gw.refreshToken = '';
    const before = gw.logins.length;
    gw.live[0].close(1006);
    await until(() => gw.logins.length > before && s.state === State.ONLINE, 'online again');
    assert.equal(gw.logins.at(-1).password, 'secret-pw');
  });
}

// CHANGE_PASSWORD is not repeated: a lost answer leaves the password and
// every token changed or not, which the caller is told with an
// OutcomeUnknownError (the ClosedError or TimeoutError as cause); the
// session keeps what it had, and the request went once.
for (const { name, acted, drop, cause } of [
  { name: 'changed, connection lost', acted: true, drop: true, cause: 'ClosedError' },
  { name: 'not acted on, connection lost', acted: false, drop: true, cause: 'ClosedError' },
  { name: 'changed, timed out', acted: true, drop: false, cause: 'TimeoutError' },
]) {
  test(`a password change whose answer is lost says its outcome is unknown (${name})`,
    async (t) => {
      const gw = new FakeGateway();
      const s = open(gw, { requestTimeoutMs: 300 });
      t.after(() => s.close());
      await s.start();
      await until(() => s.state === State.ONLINE, 'online');
      const tokens = s.positions.tokens();
      gw.onRequest = (ws, op, req) => {
        if (op !== Op.CHANGE_PASSWORD) return undefined;
        if (acted) gw.changePassword(ws, req);
        if (drop) ws.close(1006);
        return true;
      };

      const err = await s.changePassword('secret-pw', 'new-secret-1').then(() => null, (e) => e);
      assert.equal(err?.name, 'OutcomeUnknownError', `rejected with ${err}`);
      assert.equal(err.op, Op.CHANGE_PASSWORD);
      assert.equal(err.cause?.name, cause);
      assert.deepEqual(s.positions.tokens(), tokens, 'tokens changed');
      assert.equal(gw.passwordChanges.length, 1, 'CHANGE_PASSWORDs sent');
      assert.equal(gw.password, acted ? 'new-secret-1' : 'secret-pw');
    });
}

// loseChangeAnswer has gw lose the answer of the next CHANGE_PASSWORD: the
// server acts on it first if acted, its tokens expire if expire (every
// access token refused), and the connection drops.
function loseChangeAnswer(gw, { acted, expire }) {
  gw.onRequest = (ws, op, req) => {
    if (op !== Op.CHANGE_PASSWORD) return undefined;
    gw.onRequest = null;
    if (acted) gw.changePassword(ws, req);
    if (expire) gw.accessTokens.clear();
    ws.close(1006);
    return true;
  };
}

// passwordLogins returns the passwords of the password LOGINs after the
// first from, with the connection each came on.
function passwordLogins(gw, from) {
  return gw.loginConns.slice(from).filter(({ req }) => !req.token);
}

// recordLogins has gw keep each LOGIN with the connection it came on.
function recordLogins(gw) {
  gw.loginConns = [];
  gw.onLogin = (ws, req) => gw.loginConns.push({ ws, req });
}

// A lost CHANGE_PASSWORD answer leaves the new password unconfirmed. The
// change made, the tokens are refused at the reconnect and the new
// password logs in; the session goes on with it.
test('a password change whose answer is lost: made, the new password logs in', async (t) => {
  const gw = new FakeGateway();
  recordLogins(gw);
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  loseChangeAnswer(gw, { acted: true });
  const from = gw.loginConns.length;

  const err = await s.changePassword('secret-pw', 'new-secret-1').then(() => null, (e) => e);
  assert.equal(err?.name, 'OutcomeUnknownError', `rejected with ${err}`);
  assert.equal(s.passwordUnconfirmed, true, 'new password unconfirmed');
  await until(() => s.state === State.ONLINE || s.state === State.ENDED, 'online again');
  assert.equal(s.state, State.ONLINE, `session ${s.state}: ${s.states.at(-1).error}`);
  assert.deepEqual(passwordLogins(gw, from).map(({ req }) => req.password), ['new-secret-1']);
  assert.equal(s.passwordUnconfirmed, false, 'new password still unconfirmed');

  // It goes on: a push comes, and the next password login takes the new one.
  const m = gw.add(CONV, 'after the change');
  gw.push(gw.live[0], m);
  await until(() => s.got.includes(Number(m.seq)), 'the push handed over');
  gw.accessTokens.clear();
  const again = gw.loginConns.length;
  gw.live[0].close(1006);
  await until(() => passwordLogins(gw, again).length > 0 && s.state === State.ONLINE,
    'online by password');
  assert.deepEqual(passwordLogins(gw, again).map(({ req }) => req.password), ['new-secret-1']);
});

// The change made, its own revocation of the session's tokens closes the
// reconnect's connection as a signed-out device's, and the new password
// logs in on the next. Once that settled it, a sign-out while offline ends
// the session as any does: the exception lasts while the change is in
// doubt.
test('a password change whose answer is lost outlives its own sign-out, not a later one',
  async (t) => {
    const gw = new FakeGateway();
    recordLogins(gw);
    const s = open(gw);
    t.after(() => s.close());
    let ended = null;
    s.on('ended', (err) => { ended = err; });
    await s.start();
    await until(() => s.state === State.ONLINE, 'online');
    loseChangeAnswer(gw, { acted: true });
    const from = gw.loginConns.length;
    await s.changePassword('secret-pw', 'new-secret-1').then(() => null, (e) => e);
    await until(() => s.state === State.ONLINE || ended, 'online again');
    assert.equal(ended, null, `ended with ${ended}`);
    const logins = gw.loginConns.slice(from);
    assert.equal(logins.length, 2, 'a refused token, then the new password');
    assert.equal(logins[1].req.password, 'new-secret-1');
    assert.notEqual(logins[0].ws, logins[1].ws, 'the new password tried on the closed connection');

    gw.unreachable = true;
    gw.live[0].close(1006);
    await until(() => s.state === State.OFFLINE, 'offline');
    gw.revokeTokens();
    const again = gw.loginConns.length;
    gw.unreachable = false;
    s.reconnectNow();
    await until(() => ended, 'the end');
    assert.equal(ended.close?.reason, CloseReason.SIGNED_OUT, `ended with ${ended}`);
    assert.equal(passwordLogins(gw, again).length, 0, 'signed in again with the password');
  });

// Not made, the old tokens still log in, which settles it: the new
// password is dropped, and a later password login takes the old one alone.
test('a password change whose answer is lost: not made, the tokens log in', async (t) => {
  const gw = new FakeGateway();
  recordLogins(gw);
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  const tokens = s.positions.tokens();
  loseChangeAnswer(gw, { acted: false });
  const from = gw.loginConns.length;

  const err = await s.changePassword('secret-pw', 'new-secret-1').then(() => null, (e) => e);
  assert.equal(err?.name, 'OutcomeUnknownError', `rejected with ${err}`);
  assert.equal(s.passwordUnconfirmed, true, 'new password unconfirmed');
  await until(() => gw.loginConns.length > from && s.state === State.ONLINE, 'online again');
  assert.equal(gw.loginConns.at(-1).req.token, tokens.access, 'logged in by the old token');
  assert.equal(s.passwordUnconfirmed, false, 'new password kept after a token login');

  gw.accessTokens.clear();
  const again = gw.loginConns.length;
  gw.live[0].close(1006);
  await until(() => passwordLogins(gw, again).length > 0 && s.state === State.ONLINE,
    'online by password');
  assert.deepEqual(passwordLogins(gw, again).map(({ req }) => req.password), ['secret-pw']);
});

// Not made and the tokens expired: the new password is refused, which
// settles it, and the old one logs in at the next attempt, on a new
// connection (the gateway closes one after its third failed login).
test('a password change whose answer is lost: not made, tokens expired, the old password '
  + 'logs in', async (t) => {
  const gw = new FakeGateway();
  recordLogins(gw);
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  loseChangeAnswer(gw, { acted: false, expire: true });
  const from = gw.loginConns.length;

  const err = await s.changePassword('secret-pw', 'new-secret-1').then(() => null, (e) => e);
  assert.equal(err?.name, 'OutcomeUnknownError', `rejected with ${err}`);
  await until(() => s.state === State.ONLINE || s.state === State.ENDED, 'online again');
  assert.equal(s.state, State.ONLINE, `session ${s.state}: ${s.states.at(-1).error}`);
  const logins = passwordLogins(gw, from);
  assert.deepEqual(logins.map(({ req }) => req.password), ['new-secret-1', 'secret-pw']);
  assert.notEqual(logins[0].ws, logins[1].ws, 'the old password tried on the same connection');
  assert.equal(s.passwordUnconfirmed, false, 'new password still unconfirmed');
  assert.equal(gw.password, 'secret-pw');
});

// deleteAccount answered: the session forgets its saved login and ends for
// good, marked accountDeleted, without logging in again; a wrong password
// leaves the session and its tokens as they were.
test('an account deletion forgets the saved login and ends the session', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  const tokens = s.positions.tokens();

  const wrong = await s.deleteAccount('not-my-pw').then(() => null, (e) => e);
  assert.equal(wrong?.code, ErrorCode.INVALID_CREDENTIALS, `rejected with ${wrong}`);
  assert.deepEqual(s.positions.tokens(), tokens, 'tokens changed by a refusal');
  assert.equal(s.state, State.ONLINE);

  let ended = null;
  s.on('ended', (err) => { ended = err; });
  const logins = gw.logins.length;
  await s.deleteAccount('secret-pw');
  assert.ok(gw.deleted, 'the server was not asked');
  assert.equal(s.state, State.ENDED);
  assert.equal(ended?.accountDeleted, true, `ended with ${ended}`);
  assert.equal(s.positions.tokens(), null, 'the saved tokens are kept');
  await until(() => gw.live.length === 0, 'the connection closed');
  assert.equal(gw.logins.length, logins, 'logged in again after the deletion');
});

// Deleted on another device: the CLOSE ACCOUNT_DELETED ends the session
// for good, without a reconnect, and the saved login is forgotten.
test('a close for a deleted account ends the session and forgets its login', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  let ended = null;
  s.on('ended', (err) => { ended = err; });
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  const logins = gw.logins.length;

  gw.closeWith(gw.live[0], CloseReason.ACCOUNT_DELETED, -1);
  await until(() => s.state === State.ENDED, 'ended');
  assert.equal(ended?.name, 'SessionEndedError');
  assert.equal(ended.accountDeleted, true);
  assert.equal(s.positions.tokens(), null, 'the saved tokens are kept');
  assert.equal(gw.logins.length, logins, 'reconnected after ACCOUNT_DELETED');
});

// react sends REACT and brings the stored REACTION event into the 'message'
// stream, as the server does not push it back to this connection; a
// reaction that changes nothing answers duplicate with seq 0n and brings
// nothing. The history page then carries the sum on the message.
test('react brings its REACTION event into the stream; a no-op brings nothing', async (t) => {
  const gw = new FakeGateway();
  gw.add(CONV, 'react to me');
  const s = open(gw);
  t.after(() => s.close());
  const events = [];
  s.on('message', (m) => { if (m.contentType === ContentType.REACTION) events.push(m); });
  await s.start();
  await until(() => s.got.length === 1, 'the message');

  const ack = await s.react(CONV, 1n, '👍');
  assert.equal(ack.seq, 2n);
  await until(() => events.length === 1, 'the reaction event');
  const ev = reactionEventOf(events[0]);
  assert.deepEqual({ seq: ev.seq, emoji: ev.emoji, removed: ev.removed },
    { seq: 1n, emoji: '👍', removed: false });
  assert.equal(events[0].senderId, gw.userId);

  const again = await s.react(CONV, 1n, '👍');
  assert.equal(again.duplicate, true);
  assert.equal(again.seq, 0n, 'no event for a reaction the user has');
  const page = await s.history(CONV);
  assert.deepEqual(reactionsOf(page.messages[0], gw.userId),
    [{ emoji: '👍', count: 1, userIds: [gw.userId], mine: true }]);
  assert.equal(events.length, 1, 'events handed over');
  assertHanded(s.got, [1, 2]);
});

// pin sends PIN and brings the stored PIN event into the 'message' stream;
// a pin that changes nothing answers duplicate with seq 0n and brings
// nothing; conversations() lists the pins, most recently pinned first, so a
// device that missed the events has them.
test('pin brings its PIN event into the stream; conversations() lists the pins', async (t) => {
  const gw = new FakeGateway();
  gw.add(CONV, 'pin me');
  gw.add(CONV, 'and me');
  const s = open(gw);
  t.after(() => s.close());
  const events = [];
  s.on('message', (m) => { if (m.contentType === ContentType.PIN) events.push(m); });
  await s.start();
  await until(() => s.got.length === 2, 'the messages');

  const ack = await s.pin(CONV, 1n);
  assert.equal(ack.seq, 3n);
  await until(() => events.length === 1, 'the pin event');
  const ev = pinEventOf(events[0]);
  assert.deepEqual({ seq: ev.seq, unpinned: ev.unpinned }, { seq: 1n, unpinned: false });
  assert.equal(ev.msgId, gw.convs.get(CONV)[0].msgId);
  assert.equal(events[0].senderId, gw.userId);
  const again = await s.pin(CONV, 1n);
  assert.equal(again.duplicate, true);
  assert.equal(again.seq, 0n, 'no event for a pinned message');
  await s.pin(CONV, 2n);
  await until(() => events.length === 2, 'the second pin event');

  const other = open(gw); // another device, which missed the events
  t.after(() => other.close());
  await other.start();
  const conv = (await other.conversations()).find((c) => c.convId === CONV);
  assert.deepEqual(conv.pinnedSeqs, [2n, 1n]);

  const un = await s.pin(CONV, 1n, { unpin: true });
  assert.equal(un.seq, 5n);
  await until(() => events.length === 3, 'the unpin event');
  assert.equal(pinEventOf(events[2]).unpinned, true);
});

// A message a catch-up page hands over with reactions carries that page's
// last_seq (pageLastSeq): its sum may hold the REACTION events that follow
// it in the stream, and an app that applied them all counted a user past
// the ten a page names twice.
test('a caught-up message with reactions carries its page last_seq', async (t) => {
  const gw = new FakeGateway();
  gw.add(CONV, 'react to me');
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  await until(() => s.got.length === 1, 'the message');
  await s.react(CONV, 1n, '👍');

  const other = open(gw); // another device catches up: the message, then its event
  t.after(() => other.close());
  const msgs = [];
  other.on('message', (m) => msgs.push(m));
  await other.start();
  await until(() => msgs.length === 2, 'the message and the event');
  assert.equal(msgs[0].reactions.length, 1);
  assert.equal(msgs[0].pageLastSeq, 2n);
  assert.equal(msgs[1].pageLastSeq, undefined, 'an event has no sum to date');
});

// recall and edit send RECALL and EDIT under a client_msg_id and bring the
// stored events into the 'message' stream, as react does; a refusal (a
// message not the user's) rejects with the server's code.
test('recall and edit bring their events into the stream; a refusal rejects', async (t) => {
  const gw = new FakeGateway();
  gw.add(CONV, 'not mine');
  const s = open(gw);
  t.after(() => s.close());
  const events = [];
  s.on('message', (m) => { if (m.contentType >= ContentType.RECALL) events.push(m); });
  await s.start();
  await until(() => s.got.length === 1, 'the message');
  await s.send({ convId: CONV, text: 'typo' }).result;
  await s.send({ convId: CONV, text: 'oops' }).result;

  const edited = await s.edit(CONV, 2n, 'fixed');
  assert.equal(edited.seq, 4n);
  const recalled = await s.recall(CONV, 3n);
  assert.equal(recalled.seq, 5n);
  await until(() => events.length === 2, 'the two events');
  const ed = decodeStruct(schemas.EditEvent, events[0].content);
  assert.equal(events[0].contentType, ContentType.EDIT);
  assert.deepEqual({ seq: ed.seq, text: new TextDecoder().decode(ed.content) },
    { seq: 2n, text: 'fixed' });
  assert.equal(events[1].contentType, ContentType.RECALL);
  assert.equal(decodeStruct(schemas.RecallEvent, events[1].content).seq, 3n);

  const err = await s.recall(CONV, 1n).then(() => null, (e) => e);
  assert.equal(err?.code, ErrorCode.FORBIDDEN, 'recalled another user’s message');
  const page = await s.history(CONV);
  assert.equal(new TextDecoder().decode(page.messages[1].content), 'fixed');
  assert.equal(page.messages[2].recalled, true);
});

// listDevices lists what LIST_DEVICES answers; signOutDevice sends
// SIGN_OUT_DEVICE for another device, and for this one signs out as logout
// does (LOGOUT, the saved tokens cleared, the session ended).
test('signOutDevice signs another device out, and this one out as logout', async (t) => {
  const gw = new FakeGateway();
  gw.devices = [
    { deviceId: 'laptop', platform: 'web', lastLoginMs: 5n, online: false, current: false },
    { deviceId: 'dev-1', platform: 'web', lastLoginMs: 9n, online: true, current: true },
  ];
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  const devices = await s.listDevices();
  assert.deepEqual(devices.map((d) => [d.deviceId, d.lastLoginMs, d.current]),
    [['laptop', 5n, false], ['dev-1', 9n, true]]);

  await s.signOutDevice('laptop');
  assert.deepEqual(gw.signedOutDevices, ['laptop']);
  assert.equal(s.state, State.ONLINE, 'another device signed out ends this session');
  const err = await s.signOutDevice('nope').then(() => null, (e) => e);
  assert.equal(err?.code, ErrorCode.NOT_FOUND);

  await s.signOutDevice(s.deviceId);
  assert.equal(gw.logouts, 1, 'LOGOUTs');
  assert.equal(s.state, State.ENDED);
  assert.equal(s.positions.tokens(), null, 'the saved tokens are kept');
});

test('limits: the login reports them; an older server reports none and the defaults stand', async (t) => {
  const gw = new FakeGateway();
  gw.limits = { maxFileBytes: 3n << 20n, recallWindowMs: 600_000n, editWindowMs: 60_000n,
    maxPins: 7 };
  const s = open(gw);
  t.after(() => s.close());
  assert.equal(s.limits.maxFileBytes, DEFAULT_LIMITS.maxFileBytes, 'before the login');
  await s.start();
  assert.deepEqual({ ...s.limits }, {
    maxContentBytes: DEFAULT_LIMITS.maxContentBytes, maxFileBytes: 3 << 20,
    recallWindowMs: 600_000, editWindowMs: 60_000,
    maxGroupMembers: DEFAULT_LIMITS.maxGroupMembers, maxPins: 7, reported: true,
  });

  const old = new FakeGateway();
  const o = open(old);
  t.after(() => o.close());
  await o.start();
  assert.deepEqual(o.limits, DEFAULT_LIMITS);
});

test('windowOpen: a window of a message includes its last millisecond', () => {
  const m = { sendTimeMs: 1_000n };
  assert.equal(windowOpen(m, 500, 1_500), true);
  assert.equal(windowOpen(m, 500, 1_501), false);
});

// Suspended by the operator: the CLOSE ACCOUNT_SUSPENDED ends the session
// for good, marked accountSuspended, without a reconnect.
test('a close for a suspended account ends the session without a reconnect', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  let ended = null;
  s.on('ended', (err) => { ended = err; });
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  const logins = gw.logins.length;

  gw.closeWith(gw.live[0], CloseReason.ACCOUNT_SUSPENDED, -1);
  await until(() => s.state === State.ENDED, 'ended');
  assert.equal(ended?.name, 'SessionEndedError');
  assert.equal(ended.accountSuspended, true);
  assert.equal(ended.accountDeleted, false);
  assert.equal(gw.logins.length, logins, 'reconnected after ACCOUNT_SUSPENDED');
});

// Suspended while offline: the reconnect's token login is refused
// ACCOUNT_SUSPENDED, which ends the session at once: the password it keeps
// is not tried.
test('a login refused as suspended ends the session without the password', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  let ended = null;
  s.on('ended', (err) => { ended = err; });
  await s.start();
  await until(() => s.state === State.ONLINE, 'online');
  const logins = gw.logins.length;

  gw.suspended = true;
  gw.closeWith(gw.live[0], CloseReason.SERVER_SHUTDOWN, 0);
  await until(() => s.state === State.ENDED, 'ended');
  assert.equal(ended?.accountSuspended, true, `ended with ${ended}`);
  assert.equal(gw.logins.length, logins + 1, 'more than the token was tried');
  assert.ok(gw.logins.at(-1).token, 'the password was tried');
});

// SEARCH_MESSAGES pages newest first by a cursor; a page the server cut
// short of matches may be empty with a cursor to go on.
test('searchMessages pages matches newest first by the cursor', async (t) => {
  const gw = new FakeGateway();
  gw.add(CONV, 'Lunch at noon?');
  gw.add(CONV, 'no');
  gw.add(GROUP, 'lunch, again');
  gw.add(CONV, 'later');
  const s = open(gw);
  t.after(() => s.close());
  await s.start();

  const first = await s.searchMessages({ query: ' LUNCH ', limit: 1 });
  assert.deepEqual(first.messages.map((m) => m.convId), [GROUP], 'the newest match first');
  assert.ok(first.nextCursor > 0n, 'older matches remain');
  const second = await s.searchMessages({ query: 'lunch', cursor: first.nextCursor, limit: 1 });
  assert.deepEqual(second.messages.map((m) => [m.convId, Number(m.seq)]), [[CONV, 1]]);
  const only = await s.searchMessages({ query: 'lunch', convId: CONV });
  assert.deepEqual(only.messages.map((m) => m.convId), [CONV], 'one conversation');
  assert.equal(only.nextCursor, 0n, 'the search is done');

  gw.searchScan = 1; // the server reads one message per page
  const cut = await s.searchMessages({ query: 'lunch' });
  assert.deepEqual(cut.messages, [], 'the newest message does not match');
  assert.ok(cut.nextCursor > 0n, 'an empty page with more to come');
});

test('searchMessages rejects as the server refuses', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  await assert.rejects(s.searchMessages({ query: '  ' }), { code: ErrorCode.BAD_REQUEST });
  gw.refused.set(Op.SEARCH_MESSAGES, ErrorCode.RATE_LIMITED);
  await assert.rejects(s.searchMessages({ query: 'x' }), { code: ErrorCode.RATE_LIMITED });
});
