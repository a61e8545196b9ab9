'use strict';
// End-to-end tests against a running server. They start nothing: the server
// address comes from RESONANCE_ADDR (default 127.0.0.1:7000); WebSocket uses
// the same address, with RESONANCE_WS_PATH (default "/") and, when set,
// RESONANCE_WS_ORIGIN as the Origin header. scripts/node-test.sh starts a
// server and runs these.

const fs = require('node:fs');
const path = require('node:path');
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const {
  Client, Inbox, ResonanceError, ErrorCode, Op, ContentType, GroupAction, schemas, decodeStruct,
} = require('..');

const addr = process.env.RESONANCE_ADDR || '127.0.0.1:7000';
const wsPath = process.env.RESONANCE_WS_PATH || '/';
const wsOrigin = process.env.RESONANCE_WS_ORIGIN || undefined;
const password = 'node-test-password';

const clients = [];

test.after(() => {
  for (const c of clients) c.close();
});

async function connect(transport) {
  let c;
  try {
    c = await Client.connect({ addr, transport, path: wsPath, origin: wsOrigin });
  } catch (err) {
    const where = transport === 'ws' ? `ws://${addr}${wsPath}` : `tcp://${addr}`;
    const hint = transport === 'ws' ? ' (does the server serve WebSocket on this port?)' : '';
    throw new Error(`cannot connect over ${transport} to ${where}${hint}: ${err.message}`);
  }
  clients.push(c);
  return c;
}

// A user registered on its own connection, then logged in over transport.
async function newUser(transport, label) {
  const username = `node-${label}-${crypto.randomBytes(4).toString('hex')}`;
  const reg = await connect('tcp');
  const { userId } = await reg.register(username, password);
  reg.close();
  assert.ok(userId > 0n, 'register returns a user id');

  const client = await connect(transport);
  const login = await client.login({ username, password, deviceId: `${label}-${transport}` });
  assert.equal(login.userId, userId);
  assert.equal(login.username, username);
  assert.ok(login.token.length > 0, 'login returns a token');
  assert.ok(login.heartbeatIntervalMs > 0, 'login returns the heartbeat interval');
  assert.ok(login.tokenExpiresMs > BigInt(Date.now()), 'the token expires in the future');
  return { username, userId, client, login };
}

function p2pConv(a, b) {
  return a < b ? `p2p:${a}:${b}` : `p2p:${b}:${a}`;
}

// waitFor resolves with the first value of emitter's event that matches, or
// rejects after ms.
function waitFor(emitter, event, match, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no matching ${event} within ${ms} ms`));
    }, ms);
    function on(v) {
      if (!match(v)) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(v);
    }
    emitter.on(event, on);
  });
}

// exchange has a and b send to each other in turn and checks acks, pushes
// and a final sync of the conversation.
async function exchange(a, b, rounds) {
  const conv = p2pConv(a.userId, b.userId);
  const sent = [];
  for (let i = 0; i < rounds; i++) {
    for (const [from, to] of [[a, b], [b, a]]) {
      const text = `from ${from.username} #${i} ✓`;
      const pushed = waitFor(to.client, 'push', (m) => m.content.toString() === text);
      const ack = await from.client.send({ toUserId: to.userId, content: text });
      const seq = BigInt(sent.length + 1);
      assert.equal(ack.convId, conv, 'ack names the p2p conversation');
      assert.equal(ack.seq, seq, 'seqs run 1, 2, 3, ... in send order');
      assert.equal(ack.duplicate, false);
      assert.ok(ack.msgId > 0n && ack.sendTimeMs > 0n);

      const m = await pushed;
      assert.equal(m.convId, conv);
      assert.equal(m.seq, seq, 'the push carries the acked seq');
      assert.equal(m.msgId, ack.msgId);
      assert.equal(m.senderId, from.userId);
      assert.equal(m.contentType, ContentType.TEXT);
      assert.equal(m.sendTimeMs, ack.sendTimeMs);
      sent.push(text);
    }
  }

  for (const who of [a, b]) {
    const page = await who.client.sync({ convId: conv, afterSeq: 0n });
    assert.deepEqual(page.messages.map((m) => m.content.toString()), sent);
    assert.deepEqual(page.messages.map((m) => m.seq), sent.map((_, i) => BigInt(i + 1)));
    assert.equal(page.hasMore, false);
  }
  const tail = await a.client.sync({ convId: conv, afterSeq: BigInt(sent.length - 1), limit: 1 });
  assert.deepEqual(tail.messages.map((m) => m.content.toString()), [sent.at(-1)]);
  return conv;
}

test('TCP: two users chat, acks, pushes, sync, idempotent retry', async () => {
  const a = await newUser('tcp', 'a');
  const b = await newUser('tcp', 'b');
  const conv = await exchange(a, b, 3);

  // A retry with the same client_msg_id stores nothing new.
  const clientMsgId = crypto.randomUUID();
  const first = await a.client.send({ convId: conv, content: 'once', clientMsgId });
  const again = await a.client.send({ convId: conv, content: 'once', clientMsgId });
  assert.equal(again.duplicate, true);
  assert.equal(again.seq, first.seq);
  assert.equal(again.msgId, first.msgId);

  const hb = await a.client.heartbeat();
  assert.ok(hb.serverTimeMs > 0n);
  const who = await a.client.getUser({ username: b.username });
  assert.equal(who.userId, b.userId);
});

test('TCP and WebSocket: a TCP user and a WebSocket user chat both ways', async () => {
  const a = await newUser('tcp', 'c');
  const b = await newUser('ws', 'd');
  await exchange(a, b, 3);
  const hb = await b.client.heartbeat();
  assert.ok(hb.serverTimeMs > 0n, 'heartbeat over WebSocket');
});

test('errors: before login, taken username, bad credentials', async () => {
  const c = await connect('tcp');
  await assert.rejects(c.sync({ convId: 'p2p:1:2' }),
    (e) => e instanceof ResonanceError && e.code === ErrorCode.UNAUTHENTICATED && !e.retryable);
  const username = `node-e-${crypto.randomBytes(4).toString('hex')}`;
  await c.register(username, password);
  await assert.rejects(c.register(username, password),
    (e) => e instanceof ResonanceError && e.code === ErrorCode.USERNAME_TAKEN);
  await assert.rejects(c.login({ username, password: 'wrong-password' }),
    (e) => e instanceof ResonanceError && e.code === ErrorCode.INVALID_CREDENTIALS);
  const ok = await c.login({ username, password, deviceId: 'e' });
  await assert.rejects(c.login({ username, password, deviceId: 'e' }),
    (e) => e.code === ErrorCode.ALREADY_LOGGED_IN);

  // The token logs in again on a new connection for the same device.
  const again = await connect('tcp');
  const viaToken = await again.login({ token: ok.token, deviceId: 'e' });
  assert.equal(viaToken.userId, ok.userId);
});

test('inbox: pushes shown in order, a gap filled by SYNC, duplicates dropped', async () => {
  const a = await newUser('tcp', 'f');
  const b = await newUser('tcp', 'g');
  const conv = p2pConv(a.userId, b.userId);
  const first = await a.client.send({ toUserId: b.userId, content: 'm1' });
  await a.client.send({ toUserId: b.userId, content: 'm2' }); // b drops this push

  // b's inbox starts having shown nothing; pushes of m1 and m2 reach b.client
  // before the inbox exists, so the push of m3 finds a gap and syncs.
  const inbox = new Inbox(b.client);
  const shown = [];
  inbox.on('message', (m) => shown.push(m.content.toString()));
  const done = waitFor(inbox, 'message', (m) => m.content.toString() === 'm3');
  await a.client.send({ toUserId: b.userId, content: 'm3' });
  await done;
  assert.deepEqual(shown, ['m1', 'm2', 'm3']);

  // A replayed push of an old message is a duplicate.
  b.client.emit('push', { ...first, convId: conv, seq: 1n, content: Buffer.from('m1') });
  await inbox.resume(conv);
  assert.deepEqual(shown, ['m1', 'm2', 'm3']);
});

test('inbox: a member added to a group later gets the ADD event and what follows', async () => {
  const owner = await newUser('tcp', 'l');
  const late = await newUser('tcp', 'm');
  const { convId } = await owner.client.createGroup({ name: 'Later' });
  for (let i = 1; i <= 3; i++) await owner.client.send({ convId, content: `before ${i}` });

  const inbox = new Inbox(late.client);
  const shown = [];
  inbox.on('message', (m) => shown.push(m));
  const done = waitFor(inbox, 'message', (m) => m.content.toString() === 'after');
  const added = await owner.client.manageGroup({
    convId, action: GroupAction.ADD, userIds: [late.userId],
  });
  await owner.client.send({ convId, content: 'after' });
  await done;

  assert.equal(added.seq, 5n, 'CREATE, three messages, then ADD');
  assert.deepEqual(shown.map((m) => m.seq), [5n, 6n]);
  assert.equal(shown[0].contentType, ContentType.GROUP_EVENT);
  const event = decodeStruct(schemas.GroupEvent, shown[0].content);
  assert.equal(event.action, GroupAction.ADD);
  assert.deepEqual(event.targets, [late.userId]);

  // What the inbox relies on: the added member's SYNC from 0 starts at
  // the ADD event, passing over the history from before.
  const page = await late.client.sync({ convId, afterSeq: 0n });
  assert.deepEqual(page.messages.map((m) => m.seq), [5n, 6n]);
});

test('resume: SYNC_CONVS, MARK_READ and DELIVERED (skipped while not served)', async (t) => {
  const a = await newUser('tcp', 'h');
  const b = await newUser('tcp', 'i');
  const ack = await a.client.send({ toUserId: b.userId, content: 'hello' });

  let convs;
  try {
    convs = await b.client.syncConvs({});
  } catch (err) {
    const gone = b.client.closed ? ` (server closed the connection: ${JSON.stringify(
      b.client.closeMsg)})` : '';
    t.skip(`SYNC_CONVS not served: ${err.message}${gone}`);
    return;
  }
  const summary = convs.convs.find((c) => c.convId === ack.convId);
  assert.ok(summary, 'the new conversation is listed');
  assert.equal(summary.lastSeq, ack.seq);
  assert.equal(summary.peerUserId, a.userId);
  assert.equal(summary.unread, 1n);

  await b.client.delivered([{ convId: ack.convId, seq: ack.seq }]);
  const read = await b.client.markRead({ convId: ack.convId, seq: ack.seq });
  assert.equal(read.readSeq, ack.seq);

  const page = await b.client.sync({ convId: ack.convId, beforeSeq: (1n << 63n) - 1n });
  assert.deepEqual(page.messages.map((m) => m.seq), [ack.seq]);
  assert.equal(page.lastSeq, ack.seq);
});

test('search: SEARCH_MESSAGES finds text case-insensitively, newest first', async () => {
  const a = await newUser('tcp', 's');
  const b = await newUser('ws', 't');
  const first = await a.client.send({ toUserId: b.userId, content: 'Lunch at noon?' });
  await a.client.send({ toUserId: b.userId, content: 'something else' });
  const last = await b.client.send({ toUserId: a.userId, content: 'LUNCH sounds good' });
  const found = await b.client.searchMessages({ query: 'lunch' });
  assert.deepEqual(found.messages.map((m) => m.seq), [last.seq, first.seq]);
  assert.equal(found.nextCursor, 0n);
  const one = await b.client.searchMessages({ query: 'lunch', convId: first.convId, limit: 1 });
  assert.deepEqual(one.messages.map((m) => m.seq), [last.seq]);
  const rest = await b.client.searchMessages({
    query: 'lunch', convId: first.convId, cursor: one.nextCursor,
  });
  assert.deepEqual(rest.messages.map((m) => m.seq), [first.seq]);
  await assert.rejects(b.client.searchMessages({ query: '' }),
    (e) => e instanceof ResonanceError && e.code === ErrorCode.BAD_REQUEST);
});

test('limits: sync pages stay within 64 KiB and page on; an oversized send is refused', async () => {
  const a = await newUser('tcp', 'j');
  const b = await newUser('tcp', 'k');
  let ack;
  for (let i = 0; i < 6; i++) {
    ack = await a.client.send({ toUserId: b.userId, content: Buffer.alloc(16 * 1024, 0x61 + i) });
  }
  // Six 16 KiB messages do not fit one 64 KiB frame: the server cuts the page
  // and sets has_more, and paging from the last seq gets the rest, once each.
  const first = await b.client.sync({ convId: ack.convId, limit: 6 });
  assert.ok(first.messages.length < 6 && first.hasMore, 'the first page is cut short');
  const seqs = first.messages.map((m) => m.seq);
  for (let page = first; page.hasMore;) {
    page = await b.client.sync({ convId: ack.convId, afterSeq: seqs[seqs.length - 1], limit: 6 });
    seqs.push(...page.messages.map((m) => m.seq));
  }
  assert.deepEqual(seqs, [1n, 2n, 3n, 4n, 5n, 6n]);
  await assert.rejects(a.client.send({ toUserId: b.userId, content: Buffer.alloc(16 * 1024 + 1) }),
    (e) => e instanceof ResonanceError && e.code === ErrorCode.TOO_LARGE);
  await assert.rejects(a.client.send({ toUserId: b.userId, content: Buffer.alloc(70 * 1024) }),
    (e) => e.code === ErrorCode.TOO_LARGE && /not sent/.test(e.message));
  assert.equal(a.client.closed, false);
});

test('opcodes: the client knows every opcode of the IDL, with the same value', () => {
  // The IDL is the source of truth; read its Op enum rather than a copy of it.
  const idl = fs.readFileSync(path.join(__dirname, '../../../idl/protocol.thrift'), 'utf8');
  const body = idl.slice(idl.indexOf('enum Op {'), idl.indexOf('}', idl.indexOf('enum Op {')));
  const fromIDL = Object.fromEntries(
    [...body.matchAll(/^\s*([A-Z_]+)\s*=\s*(0x[0-9A-Fa-f]+)/gm)].map(([, k, v]) => [k, Number(v)]),
  );
  assert.ok(Object.keys(fromIDL).length > 20, 'parsed the Op enum');
  assert.deepEqual({ ...Op }, fromIDL);
});
