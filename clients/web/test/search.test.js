// Unit tests of the web app's message search (app/search.js) in Node: its
// paging over empty pages, and the highlight of the match, against the
// SDK's Session on the fake gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MessageSearch, SEARCH_PAGES, matchParts, queryProblem, snippet } from '../app/search.js';
import { Session } from '../sdk/session.js';
import { MemoryPositions } from '../sdk/positions.js';
import { ErrorCode } from '../sdk/schema.js';
import { FakeGateway } from './fakegateway.js';

async function started(gw, t) {
  globalThis.WebSocket = gw.WebSocket;
  const s = new Session({ url: 'ws://fake/', username: 'me', password: 'secret-pw',
    deviceId: 'tab', positions: new MemoryPositions(), minBackoffMs: 20, maxBackoffMs: 100 });
  t.after(() => s.close());
  await s.start();
  return s;
}

// The server reads a bounded part of the history per page: a rare word
// comes after pages with no match, which the app asks past on its own.
test('a search asks past empty pages, a few at most, and More goes on', async (t) => {
  const gw = new FakeGateway();
  gw.add('p2p:1:2', 'the lunch plan');
  for (let i = 0; i < SEARCH_PAGES + 2; i++) gw.add('p2p:1:2', `filler ${i}`);
  gw.searchScan = 1;
  let pages = 0;
  gw.onRequest = (ws, op) => { if (op === 0x59) pages++; return false; };
  const s = await started(gw, t);

  pages = 0;
  const search = new MessageSearch('Lunch');
  assert.equal(await search.more(s), 0, 'no match within the first pages');
  assert.equal(pages, SEARCH_PAGES, 'pages asked');
  assert.equal(search.done, false, 'older messages remain');
  assert.equal(await search.more(s), 1, 'More finds it');
  assert.deepEqual(search.results.map((m) => String(m.content.length)), ['14']);
  await search.more(s);
  assert.equal(search.done, true, 'the search reached the oldest message');
  pages = 0;
  assert.equal(await search.more(s), 0);
  assert.equal(pages, 0, 'nothing asked after the end');
});

test('results stay newest first across pages; a refusal leaves them', async (t) => {
  const gw = new FakeGateway();
  for (let i = 1; i <= 5; i++) gw.add(i % 2 ? 'p2p:1:2' : 'g:7', `note ${i}`);
  const s = await started(gw, t);
  const search = new MessageSearch('note', { limit: 2 });
  await search.more(s);
  await search.more(s);
  assert.deepEqual(search.results.map((m) => Number(m.msgId)), [1004, 1003, 1002, 1001]);
  gw.refused.set(0x59, ErrorCode.RATE_LIMITED);
  await assert.rejects(search.more(s), { code: ErrorCode.RATE_LIMITED });
  assert.equal(search.results.length, 4, 'kept');
  assert.equal(search.done, false, 'More may try again');
  gw.refused.clear();
  await search.more(s);
  assert.deepEqual(search.results.map((m) => Number(m.msgId)), [1004, 1003, 1002, 1001, 1000]);
});

test('the match is found ignoring case, in the text as shown', () => {
  assert.deepEqual(matchParts('Lunch and LUNCH', 'lunch'), [
    { text: 'Lunch', match: true }, { text: ' and ', match: false },
    { text: 'LUNCH', match: true },
  ]);
  assert.deepEqual(matchParts('nothing here', 'lunch'), [{ text: 'nothing here', match: false }]);
  assert.deepEqual(matchParts('', 'x'), []);
});

test('a long text is cut to the part around its first match', () => {
  const long = `${'a'.repeat(200)} needle ${'b'.repeat(200)}`;
  const s = snippet(long, 'NEEDLE');
  assert.ok(s.includes('needle'), s);
  assert.ok(s.startsWith('…') && s.endsWith('…'), s);
  assert.ok(s.length < 140, `${s.length} characters`);
  assert.equal(snippet('short one', 'one'), 'short one');
  assert.equal(snippet('line\nbreak', 'break'), 'line break', 'one line');
});

test('queryProblem says what the server would refuse', () => {
  assert.equal(queryProblem('  hi '), '');
  assert.match(queryProblem('   '), /Type/);
  assert.match(queryProblem('x'.repeat(65)), /64/);
  assert.equal(queryProblem('é'.repeat(64)), '', 'characters, not bytes');
});
