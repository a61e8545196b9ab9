// Unit tests of the SDK's files (sdk/files.js) against the fake gateway in
// Node: an upload in paced chunks, sent as a FILE message and downloaded
// back byte for byte; an upload resumed after its connection was lost under
// it; the server's refusals (TOO_LARGE, NOT_FOUND) and a download whose
// bytes do not match; a cancelled upload; the FileRef's optional fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Session } from '../sdk/session.js';
import { MemoryPositions } from '../sdk/positions.js';
import { ContentType, ErrorCode } from '../sdk/schema.js';
import {
  ChunkPacer, FileMismatchError, MAX_FILE_CHUNK, encodeFileRef, fileRefOf, mimeOf,
} from '../sdk/files.js';
import { sha256Plain } from '../sdk/sha256.js';
import { FakeGateway } from './fakegateway.js';

const CONV = 'p2p:1:2';

async function until(cond, what, timeout = 3000) {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function open(gw) {
  globalThis.WebSocket = gw.WebSocket;
  const s = new Session({
    url: 'ws://fake/', username: 'me', password: 'secret-pw', deviceId: 'tab',
    positions: new MemoryPositions(), minBackoffMs: 20, maxBackoffMs: 100, ackIntervalMs: 20,
  });
  s.files = [];
  s.on('message', (m) => { if (m.contentType === ContentType.FILE) s.files.push(m); });
  return s;
}

// bytesOf is n bytes that differ from chunk to chunk, so that a chunk
// stored twice or skipped changes the hash.
function bytesOf(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 15)) & 0xff;
  return b;
}

test('an upload goes in chunks, is sent as FILE and downloads byte for byte', async (t) => {
  const gw = new FakeGateway();
  gw.add(CONV, 'hi');
  const s = open(gw);
  t.after(() => s.close());
  await s.start();

  const data = bytesOf(2 * MAX_FILE_CHUNK + 100);
  const progress = [];
  const ref = await s.upload(new Blob([data], { type: 'text/plain; charset=utf-8' }),
    { name: 'notes.txt', onProgress: (sent, size) => progress.push([sent, size]) });
  assert.equal(ref.mime, 'text/plain', 'the type without its parameters');
  assert.equal(ref.size, BigInt(data.length));
  assert.equal(gw.uploads.length, 3);
  assert.equal(gw.uploads[0].fileId, '', 'the first starts the upload');
  assert.equal(gw.uploads[0].data.length, MAX_FILE_CHUNK, 'with the first chunk');
  assert.ok(gw.uploads.every((u) => u.data.length <= MAX_FILE_CHUNK));
  assert.deepEqual(progress.at(-1), [data.length, data.length]);

  const e = s.sendFile({ convId: CONV }, ref, 'my notes');
  await e.result;
  await until(() => s.files.length === 1, 'the FILE message');
  const sent = fileRefOf(s.files[0]);
  assert.equal(sent.caption, 'my notes');
  assert.equal(sent.name, 'notes.txt');
  const stored = gw.convs.get(CONV).at(-1);
  assert.equal(stored.contentType, ContentType.FILE);
  assert.equal(fileRefOf(stored).fileId, ref.fileId);

  const blob = await s.download(sent);
  assert.equal(blob.type, 'text/plain');
  assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), data);
  assert.equal(gw.downloads, 3);
});

// The server keeps an upload's bytes across connections: the next one asks
// where it stands (an UPLOAD with the id and no data) and goes on from
// there, under the same file id.
test('an upload whose connection is lost resumes on the next one', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  await s.start();

  const data = bytesOf(4 * MAX_FILE_CHUNK - 5);
  gw.closeAfterChunks = 2; // the second chunk is stored, its answer lost
  const ref = await s.upload(new Blob([data]), { name: 'big.bin' });
  assert.equal(gw.files.size, 1, 'one upload');
  assert.equal(gw.conns.length, 2, 'on a second connection');
  const ask = gw.uploads.findIndex((u) => u.fileId && u.data.length === 0);
  assert.ok(ask > 0, 'the new connection asked where to resume');
  assert.equal(gw.uploads[ask + 1].offset, BigInt(2 * MAX_FILE_CHUNK), 'and went on from there');
  assert.equal(ref.mime, 'application/octet-stream');
  const blob = await s.download(ref);
  assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), data);
});

test('the server refusals reach the caller: TOO_LARGE and NOT_FOUND', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  await s.start();

  gw.maxFileSize = 1000;
  await assert.rejects(s.upload(new Blob([bytesOf(1001)]), { name: 'a' }),
    (err) => err.code === ErrorCode.TOO_LARGE);
  const ref = await s.upload(new Blob([bytesOf(1000)]), { name: 'a' });
  gw.unreadable.add(ref.fileId); // as for a recalled message's file
  await assert.rejects(s.download(ref), (err) => err.code === ErrorCode.NOT_FOUND);
  await assert.rejects(s.download({ fileId: 'f'.repeat(32) }),
    (err) => err.code === ErrorCode.NOT_FOUND);
});

test('a download whose bytes do not match the stored sha256 is refused', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  const ref = await s.upload(new Blob([bytesOf(5000)]), { name: 'x.bin' });
  gw.corrupt = true;
  await assert.rejects(s.download(ref), FileMismatchError);
});

test('a cancelled upload stops between chunks', async (t) => {
  const gw = new FakeGateway();
  const s = open(gw);
  t.after(() => s.close());
  await s.start();
  const ctl = new AbortController();
  const up = s.upload(new Blob([bytesOf(5 * MAX_FILE_CHUNK)]), { name: 'x.bin',
    signal: ctl.signal, onProgress: (sent) => { if (sent >= 2 * MAX_FILE_CHUNK) ctl.abort(); } });
  await assert.rejects(up, (err) => err.name === 'AbortError');
  assert.equal(gw.uploads.length, 2, 'no chunk after the cancel');
});

// The gateway closes a connection over 200 frames a second (bursts of
// 400): a file's chunks go in a burst of 100, then one every 10 ms.
test('the chunk pacer lets a burst through, then one chunk per 10 ms', async () => {
  let now = 0;
  const p = new ChunkPacer(() => now);
  for (let i = 0; i < 100; i++) {
    const t0 = Date.now();
    await p.wait();
    assert.ok(Date.now() - t0 < 5, `chunk ${i} waited`);
  }
  const t0 = Date.now();
  await p.wait();
  assert.ok(Date.now() - t0 >= 8, 'the 101st chunk waits its turn');
  now = 5000; // a pause refills the burst
  const t1 = Date.now();
  await p.wait();
  assert.ok(Date.now() - t1 < 5);
});

test('a FileRef leaves out the optional fields it does not set', () => {
  const ref = { fileId: 'ab', name: 'a.png', mime: 'image/png', size: 3n,
    sha256: new Uint8Array(32) };
  const bare = encodeFileRef(ref);
  const full = encodeFileRef({ ...ref, width: 4, height: 3, caption: 'c' });
  assert.equal(full.length - bare.length, 2 * 7 + 3 + 4 + 1, 'width, height and caption');
  const m = { contentType: ContentType.FILE, seq: 1n, content: full };
  assert.deepEqual([fileRefOf(m).width, fileRefOf(m).caption], [4, 'c']);
  assert.equal(mimeOf(''), 'application/octet-stream');
  assert.equal(mimeOf('image/PNG'), 'image/png');
  assert.equal(mimeOf('a b/c'), 'application/octet-stream');
});

// A page served over plain http from a LAN address has no crypto.subtle:
// the plain digest must agree with it, around the padding's edges.
test('the plain SHA-256 agrees with crypto.subtle', async () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_001]) {
    const data = bytesOf(n);
    const want = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
    assert.deepEqual(sha256Plain(data), want, `${n} bytes`);
  }
});
