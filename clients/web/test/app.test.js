// Unit tests of the web app's modules that need no DOM, in Node: the same
// modules the browser loads (the presence watch set, clearing and deleting
// a chat, compose.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { readFileSync } from 'node:fs';

import {
  MAX_PASSWORD_BYTES, SIGNED_OUT_TEXT, SUSPENDED_TEXT, changePasswordErrorText, deviceDetail,
  endedText, newPasswordProblem, passwordLengthNote,
} from '../app/account.js';
import { applyClear, isCleared, listed, unhideOn } from '../app/clearing.js';
import { debounceWatch, peerPresence, peersToWatch } from '../app/presence.js';
import {
  MAX_CONTENT_BYTES, QUOTE_CHARS, RECALL_WINDOW_MS, lengthNote, mentionsFor, offeredChanges,
  quoteText, recallClosesMs,
} from '../app/compose.js';
import {
  USERNAME_RULE, bodyText, changeErrorText, groupEventText, isLeave, usernameProblem,
} from '../app/view.js';
import { line, safeText, utf8Length } from '../app/text.js';
import {
  THUMB_MAX_BYTES, fileErrorText, fileLabel, fileRefOfMessage, showsInline, sizeText,
  uploadProblem,
} from '../app/attach.js';
import {
  applyReactionEvent, reactionList, reactionText, reactionsKey, settlePendingReactions,
} from '../app/reacting.js';
import {
  applyPinEvent, canPin, dropPin, isPinned, mergePins, pinText, pinnable,
} from '../app/pinning.js';
import {
  CloseReason, ContentType, ConvType, ErrorCode, GroupAction, GroupRole, MAX_PRESENCE_USERS,
  DEFAULT_LIMITS, SessionEndedError, State, decodeStruct, encodeFileRef, encodeStruct, limitsOf,
  schemas,
} from '../sdk/index.js';

// p2p is a 1:1 conversation of the app with peer, last active at ms (none
// when ms is undefined).
function p2p(peer, ms) {
  return { convId: `p2p:1:${peer}`, type: ConvType.P2P, peerUserId: BigInt(peer),
    lastMessage: ms === undefined ? null : { sendTimeMs: BigInt(ms) } };
}

// The server refuses a WATCH_PRESENCE of more ids than its limit as a whole
// (TOO_LARGE), so a user with more peers than that had no presence at all:
// the app sent them all.
test('the watch set is the peers of the most recently active conversations', () => {
  const extra = 50;
  const convs = [];
  for (let i = 0; i < MAX_PRESENCE_USERS + extra; i++) convs.push(p2p(100 + i, 1000 + i));
  convs.push({ convId: 'g:7', type: ConvType.GROUP, peerUserId: 0n, lastMessage: null });
  convs.push(p2p(99)); // just opened, nothing sent yet: the most recent
  const ids = peersToWatch(convs);
  assert.equal(ids.length, MAX_PRESENCE_USERS,
    `watching ${ids.length} ids, the server takes ${MAX_PRESENCE_USERS}`);
  assert.equal(ids[0], '99', 'the conversation just opened');
  const want = ['99'];
  for (let i = MAX_PRESENCE_USERS + extra - 1; want.length < MAX_PRESENCE_USERS; i--) {
    want.push(String(100 + i));
  }
  assert.deepEqual(ids, want, 'the newest conversations, newest first');
});

test('the watch set names each peer once', () => {
  const ids = peersToWatch([p2p(5, 10), p2p(6, 30), { ...p2p(5, 20), convId: 'p2p:5:1' }]);
  assert.deepEqual(ids, ['6', '5']);
});

// fakeTimers is setTimeout and clearTimeout on a clock that moves only by
// advance(ms), which runs the callbacks that come due.
function fakeTimers() {
  let now = 0;
  let next = 1;
  const due = new Map(); // id -> {at, fn}
  return {
    setTimeout(fn, ms) {
      due.set(next, { at: now + ms, fn });
      return next++;
    },
    clearTimeout(id) {
      due.delete(id);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const [id, t] = [...due].filter(([, d]) => d.at <= end)
          .sort((a, b) => a[1].at - b[1].at)[0] || [];
        if (!t) break;
        due.delete(id);
        now = t.at;
        t.fn();
      }
      now = end;
    },
  };
}

// Every message of a 1:1 chat whose peer is not watched yet asks for a
// watch, and each ask started the wait over: in a lively new chat the
// WATCH_PRESENCE was put off for as long as messages kept coming, and the
// header said "offline" for a peer who was signed in and writing.
test('a burst of asks sends the watch set within the delay of the first', () => {
  const timers = fakeTimers();
  let sent = 0;
  const schedule = debounceWatch(() => sent++, 500, timers);
  for (let i = 0; i < 10; i++) {
    schedule();
    timers.advance(200);
  }
  assert.ok(sent >= 1, `no watch sent 2s into a burst of asks 200 ms apart (sent ${sent})`);
  assert.ok(sent <= 4, `${sent} watches for a burst of 10 asks over 2 s`);
  const after = sent;
  timers.advance(1000);
  assert.ok(sent <= after + 1, 'the asks after the last watch sent make at most one more');
  timers.advance(5000);
  const settled = sent;
  schedule();
  schedule();
  timers.advance(499);
  assert.equal(sent, settled, 'sent before the delay');
  timers.advance(1);
  assert.equal(sent, settled + 1, 'two asks make one watch');
});

test('the delete-account dialog tells a wrong password from a lost answer', async () => {
  const { deleteAccountErrorText } = await import('../app/view.js');
  const { ErrorCode, OutcomeUnknownError, Op } = await import('../sdk/index.js');
  assert.match(deleteAccountErrorText({ code: ErrorCode.INVALID_CREDENTIALS }), /Wrong password/);
  const lost = new OutcomeUnknownError(Op.DELETE_ACCOUNT, new Error('connection closed'));
  assert.match(deleteAccountErrorText(lost), /may or may not be deleted/);
  assert.match(deleteAccountErrorText(new Error('offline')), /^Not deleted: offline$/);
});

// conv is an app conversation holding messages with seqs 1..n, all loaded.
function conv(n) {
  const messages = new Map();
  for (let i = 1n; i <= BigInt(n); i++) messages.set(String(i), { seq: i });
  return { convId: 'p2p:1:2', lastSeq: BigInt(n), readSeq: 0n, unread: n, messages,
    lastMessage: n > 0 ? { seq: BigInt(n) } : null, historyLoaded: true, hasOlder: false,
    clearedSeq: 0n, hidden: false };
}

test('a clear empties the view up to it, and the list keeps the chat', () => {
  const c = conv(5);
  applyClear(c, 3n, false);
  assert.deepEqual([...c.messages.keys()], ['4', '5']);
  assert.equal(c.readSeq, 3n);
  assert.equal(c.lastMessage.seq, 5n);
  assert.ok(listed(c, ''), 'a cleared chat stays in the list');
  applyClear(c, 2n, false);
  assert.equal(c.clearedSeq, 3n, 'a clear only moves forward');
  assert.ok(isCleared(c, { seq: 3n }) && !isCleared(c, { seq: 4n }));
});

test('a deleted chat leaves the list until a newer message comes', () => {
  const c = conv(4);
  applyClear(c, 4n, true);
  assert.equal(c.messages.size, 0);
  assert.equal(c.lastMessage, null);
  assert.equal(c.unread, 0);
  assert.equal(c.hasOlder, false);
  assert.ok(!listed(c, ''), 'listed after a delete');
  assert.ok(!listed(c, c.convId), 'listed after a delete while open');
  unhideOn(c, { seq: 4n });
  assert.ok(!listed(c, ''), 'a late cleared message listed it again');
  c.lastSeq = 5n;
  unhideOn(c, { seq: 5n });
  assert.ok(listed(c, ''), 'a new message did not list it again');
});

// A delete on another device comes as a NOTIFY cleared, which the app
// applies as it applies one from another tab or a listing.
test('a NOTIFY cleared with hidden deletes the chat here too', () => {
  const wire = encodeStruct(schemas.Notify,
    { cleared: { convId: 'p2p:1:2', clearedSeq: 3n, hidden: true } });
  const { cleared } = decodeStruct(schemas.Notify, wire);
  const c = conv(3);
  applyClear(c, cleared.clearedSeq, cleared.hidden);
  assert.equal(c.messages.size, 0);
  assert.ok(!listed(c, ''), 'listed after a delete on another device');
});

// A group message's @names become mentions of members only, @all only for
// the owner and admins, and the sender never mentions themself.
test('mentionsFor resolves @names against the group, @all by role', () => {
  const names = new Map([['1', 'Ann'], ['2', 'bob'], ['3', 'carol']]);
  const who = (id) => names.get(String(id));
  const group = { members: [
    { userId: 1n, role: GroupRole.OWNER }, { userId: 2n, role: GroupRole.MEMBER },
    { userId: 3n, role: GroupRole.ADMIN }] };
  assert.deepEqual(mentionsFor('hi @BOB and @nobody, @ann', group, 1n, who),
    { mentions: [2n], mentionAll: false, allRefused: false });
  assert.deepEqual(mentionsFor('@all lunch', group, 3n, who),
    { mentions: [], mentionAll: true, allRefused: false }, 'an admin');
  assert.deepEqual(mentionsFor('@all lunch', group, 2n, who),
    { mentions: [], mentionAll: false, allRefused: true }, 'a member: sent as text');
  assert.deepEqual(mentionsFor('@bob', null, 1n, who),
    { mentions: [], mentionAll: false, allRefused: false }, 'members unknown yet');
});

test('quoteText names the quoted seq, with an excerpt when loaded', () => {
  const who = () => 'ann';
  const text = (s) => ({ senderId: 1n, contentType: ContentType.TEXT,
    content: new TextEncoder().encode(s), recalled: false });
  assert.equal(String(quoteText(3n, undefined, who)), '#3');
  assert.equal(String(quoteText(3n, text('lunch?'), who)), '#3 ann: “lunch?”');
  assert.equal(String(quoteText(3n, text('x'.repeat(QUOTE_CHARS + 5)), who)),
    `#3 ann: “${'x'.repeat(QUOTE_CHARS)}…”`);
  assert.equal(String(quoteText(3n, { ...text('gone'), recalled: true }, who)),
    '#3 ann: “(message recalled)”');
});

// A deletion leaves every group with a LEAVE event: the app looks its
// sender up again on one (isLeave), to show a deleted account as such.
test('isLeave tells a LEAVE group event from the others and from text', () => {
  const event = (action) => ({ contentType: ContentType.GROUP_EVENT,
    content: encodeStruct(schemas.GroupEvent, { action, targets: [], name: '' }) });
  assert.equal(isLeave(event(GroupAction.LEAVE)), true);
  assert.equal(isLeave(event(GroupAction.REMOVE)), false);
  assert.equal(isLeave({ contentType: ContentType.TEXT, content: new Uint8Array([1]) }), false);
  assert.equal(isLeave({ contentType: ContentType.GROUP_EVENT, content: new Uint8Array([0xff]) }),
    false, 'an event that does not decode');
});

// reactionEvent is a REACTION message of user's on seq.
function reactionEvent(user, seq, emoji, removed = false) {
  return { contentType: ContentType.REACTION, senderId: user,
    content: encodeStruct(schemas.ReactionEvent, { seq, msgId: 1n, emoji, removed }) };
}

test('reaction chips start from the page and follow the live events', () => {
  const me = 1n;
  const text = { seq: 3n, contentType: ContentType.TEXT, recalled: false,
    reactions: [{ emoji: '👍', count: 2, userIds: [2n, me] }] };
  const messages = new Map([['3', text]]);
  assert.deepEqual(reactionList(text, me).map((r) => [r.emoji, r.count, r.mine]),
    [['👍', 2, true]]);
  const before = reactionsKey(text, me);

  assert.equal(applyReactionEvent(messages, reactionEvent(me, 3n, '👍', true), me), true);
  assert.equal(applyReactionEvent(messages, reactionEvent(4n, 3n, '🎉'), me), true);
  assert.deepEqual(reactionList(text, me).map((r) => [r.emoji, r.count, r.mine]),
    [['👍', 1, false], ['🎉', 1, false]]);
  assert.notEqual(reactionsKey(text, me), before, 'the message renders again');

  // A target not loaded is left to the page that loads it.
  assert.equal(applyReactionEvent(messages, reactionEvent(4n, 9n, '🎉'), me), false);
});

// A reaction to a message not loaded yet was dropped: the page that loads it
// may have been read before the reaction was stored, so its chips lacked it
// until a reload.
test('a reaction that comes before its page is applied when the page comes', () => {
  const me = 1n;
  const messages = new Map();
  const pending = new Map();
  const ev = (user, evSeq, emoji, removed) => ({ ...reactionEvent(user, 3n, emoji, removed),
    seq: evSeq });
  assert.equal(applyReactionEvent(messages, ev(4n, 20n, '🎉'), me, pending), false);
  assert.equal(applyReactionEvent(messages, ev(2n, 21n, '👍', true), me, pending), false);
  assert.equal(applyReactionEvent(messages, ev(5n, 9n, '👍'), me, pending), false);

  // The page was read at seq 19: it sums the 👍 of 5 (seq 9) and of 2, but
  // not the 🎉 (seq 20) nor the take-back (seq 21).
  const text = { seq: 3n, contentType: ContentType.TEXT, recalled: false, pageLastSeq: 19n,
    reactions: [{ emoji: '👍', count: 2, userIds: [2n, 5n] }] };
  messages.set('3', text);
  assert.equal(settlePendingReactions(messages, pending, me), true);
  assert.deepEqual(reactionList(text, me).map((r) => [r.emoji, r.count]),
    [['👍', 1], ['🎉', 1]]);
  assert.equal(pending.size, 0, 'settled events are forgotten');

  // Past the users a page names, an event no newer than the page may be in
  // its count: only a newer one adds.
  const names = Array.from({ length: 10 }, (_, i) => BigInt(10 + i));
  const busy = { seq: 4n, contentType: ContentType.TEXT, recalled: false, pageLastSeq: 19n,
    reactions: [{ emoji: '❤️', count: 12, userIds: names }] };
  messages.set('4', busy);
  const heart = (evSeq) => ({ ...reactionEvent(99n, 4n, '❤️'), seq: evSeq });
  applyReactionEvent(messages, heart(18n), me, pending);
  assert.equal(reactionList(busy, me)[0].count, 12, 'summed by the page already');
  applyReactionEvent(messages, heart(22n), me, pending);
  assert.equal(reactionList(busy, me)[0].count, 13);
});

test('a reaction reads as a short line in the conversation list', () => {
  assert.equal(String(reactionText(reactionEvent(2n, 3n, '👍'), 'ann')), 'ann reacted 👍');
  assert.equal(String(reactionText(reactionEvent(1n, 3n, '👍', true), 'You')), 'You took back 👍');
});

// A peer's text showed as it was sent: a bidi override read "a\u202Eevil"
// as "alive", in the bubble and the list, and control characters went to
// the page unseen. safeText shows C0 controls as the terminal does and
// takes the override out; a message body keeps its lines.
test('safeText shows controls as stand-ins and takes bidi overrides out', () => {
  const cases = [
    { name: 'override', in: 'a\u202Eevil', want: 'a\uFFFDevil' },
    { name: 'embedding and isolate', in: '\u202Bx\u2067y\u2069', want: '\uFFFDx\uFFFDy\uFFFD' },
    { name: 'bell and escape', in: 'ding\x07 \x1b[2J', want: 'ding\u2407 \u241b[2J' },
    { name: 'line feed in a name', in: 'ann\n[12:00] bob', want: 'ann\u240a[12:00] bob' },
    { name: 'DEL and C1', in: 'a\x7fb\x9bc', want: 'a\u2421b\uFFFDc' },
    { name: 'zero width space', in: 'ad\u200bmin', want: 'ad\uFFFDmin' },
    { name: 'emoji sequences kept', in: '👨‍👩‍👧 🏴󠁧󠁢󠁳󠁣󠁴󠁿', want: '👨‍👩‍👧 🏴󠁧󠁢󠁳󠁣󠁴󠁿' },
    { name: 'right-to-left text kept', in: 'שלום\u200f!', want: 'שלום\u200f!' },
  ];
  for (const c of cases) assert.equal(safeText(c.in), c.want, c.name);
  assert.equal(safeText('two\nlines\tand\x07', { multiline: true }), 'two\nlines\tand\u2407');
});

// Names in the app's own sentences are user text too: a Line keeps them
// apart (the page puts each in a <bdi>) and cleans them.
test('a group event keeps names apart from the app’s words, cleaned', () => {
  const content = encodeStruct(schemas.GroupEvent,
    { action: GroupAction.ADD, targets: [2n, 3n], name: '', role: 0 });
  const names = { 1: 'ann\u202E', 2: 'bob', 3: 'cy' };
  const l = groupEventText({ senderId: 1n, contentType: ContentType.GROUP_EVENT, content },
    9n, (id) => names[id]);
  assert.deepEqual(l.segments, [{ user: 'ann\u202E' }, ' added ', { user: 'bob' }, ', ',
    { user: 'cy' }]);
  assert.equal(String(l), 'ann\uFFFD added bob, cy');
  assert.equal(String(line`#${3n} ${'x\x1b'}`), '#3 x\u241b');
});

// The composer had maxlength="4000": a longer paste was cut unseen and the
// cut text sent, though the server takes 16 KiB of UTF-8. lengthNote
// counts bytes, not characters, and says how far over a text is.
test('lengthNote counts UTF-8 bytes against the server limit', () => {
  assert.equal(MAX_CONTENT_BYTES, 16384);
  assert.equal(lengthNote('x'.repeat(5000)), '', '5,000 ASCII characters fit');
  assert.equal(lengthNote('x'.repeat(MAX_CONTENT_BYTES)), '', 'exactly the limit fits');
  assert.match(lengthNote('x'.repeat(MAX_CONTENT_BYTES + 1)), /16,385 bytes, 1 byte over/);
  // 4,097 emoji are 4,097 characters (8,194 UTF-16 units) but 16,388 bytes.
  assert.match(lengthNote('😀'.repeat(4097)), /16,388 bytes, 4 bytes over the limit of 16,384/);
  assert.equal(utf8Length('é😀a'), 7);
});

// A refused recall or edit says why in the server's words, and a lost
// answer is not reported as a refusal.
test('changeErrorText shows the server refusal of a recall or an edit', () => {
  const refused = { code: ErrorCode.FORBIDDEN,
    serverMessage: 'forbidden: the recall window of 2m0s has passed' };
  assert.equal(changeErrorText('recall', refused), 'Not recalled: the server refused ' +
    '(forbidden: the recall window of 2m0s has passed). Only your own messages can be ' +
    'recalled, within 2 minutes of sending by default.');
  assert.match(changeErrorText('edit', { name: 'OutcomeUnknownError' }),
    /may or may not be edited/);
  assert.match(changeErrorText('edit', { code: ErrorCode.TOO_LARGE }), /too long/);
});

// The sign-in form answered a bad username with the browser's "Please
// match the requested format."; usernameProblem says the server's rule and
// what broke it.
test('usernameProblem says the username rule and what broke it', () => {
  const cases = [
    { name: 'fine', in: 'john.smith_2-x', want: '' },
    { name: 'empty: the field is required', in: '', want: '' },
    { name: 'space', in: 'john smith', want: `${USERNAME_RULE}; not spaces.` },
    { name: 'non-ASCII', in: 'zoé😀', want: `${USERNAME_RULE}; not “é”, “😀”.` },
    { name: 'short', in: 'jo', want: `${USERNAME_RULE}; this one has 2.` },
    { name: 'long', in: 'j'.repeat(33), want: `${USERNAME_RULE}; this one has 33.` },
  ];
  for (const c of cases) assert.equal(usernameProblem(c.in), c.want, c.name);
  assert.match(USERNAME_RULE, /3–32 characters: ASCII letters, digits, _ \. or -/);
});

// While the tab's own connection was down ("Offline, retrying in 6 s") a
// peer last seen online still showed a green dot and "online".
test('peer presence is unknown while the tab is offline', () => {
  const presence = new Map([['2', true], ['3', false]]);
  const cases = [
    { name: 'online peer', state: State.ONLINE, peer: 2n, want: 'online' },
    { name: 'offline peer', state: State.ONLINE, peer: 3n, want: 'offline' },
    { name: 'catching up', state: State.RESUMING, peer: 2n, want: 'online' },
    { name: 'never heard of', state: State.ONLINE, peer: 4n, want: 'unknown' },
    { name: 'tab offline', state: State.OFFLINE, peer: 2n, want: 'unknown' },
    { name: 'tab reconnecting', state: State.CONNECTING, peer: 3n, want: 'unknown' },
    { name: 'session ended', state: State.ENDED, peer: 2n, want: 'unknown' },
  ];
  for (const c of cases) assert.equal(peerPresence(c.state, presence, c.peer), c.want, c.name);
});

// A user with a lost laptop had no way to sign it out but deleting the
// account: the Devices list shows each device (name, platform, connected,
// last sign-in), and Change password checks the server's rules first.
test('a device reads with its platform, connection and last sign-in', () => {
  const at = new Date(2026, 11, 6, 9, 5).getTime(); // local time
  assert.equal(deviceDetail({ platform: 'web', online: true, lastLoginMs: BigInt(at) }),
    'web · online now · last sign-in 2026-12-06 09:05');
  assert.equal(deviceDetail({ platform: '', online: false, lastLoginMs: 0n }),
    'unknown platform · not connected · never signed in');
});

test('the change password dialog checks the new password as the server does', () => {
  const base = { oldPassword: 'old-secret', username: 'ann' };
  const cases = [
    { name: 'fine', newPassword: 'new-secret', again: 'new-secret', want: '' },
    { name: 'differ', newPassword: 'new-secret', again: 'new-secreT', want: /differ/ },
    { name: 'same as now', newPassword: 'old-secret', again: 'old-secret', want: /current one/ },
    { name: 'short', newPassword: 'short', again: 'short', want: /8 to 128 bytes/ },
    { name: 'username', newPassword: 'ANNANNANN', again: 'ANNANNANN', want: '' },
    { name: 'repeated', newPassword: 'aaaaaaaa', again: 'aaaaaaaa', want: /repeated/ },
  ];
  for (const c of cases) {
    const got = newPasswordProblem({ ...base, newPassword: c.newPassword, again: c.again });
    if (typeof c.want === 'string') assert.equal(got, c.want, c.name);
    else assert.match(got, c.want, c.name);
  }
  assert.match(newPasswordProblem({ ...base, username: 'annannann', newPassword: 'AnnAnnAnn',
    again: 'AnnAnnAnn' }), /username/);
  assert.equal(changePasswordErrorText({ code: ErrorCode.INVALID_CREDENTIALS }),
    'Wrong current password; nothing was changed.');
  assert.match(changePasswordErrorText({ name: 'OutcomeUnknownError' }), /may or may not/);
});

// The sign-in and delete-account password inputs had maxlength="128": a
// longer password, pasted from a manager, was cut short unseen and
// registered (or refused) as another one. No password input cuts; an
// over-long password is refused with a note that says its length.
test('a password over the limit is refused with a note, never cut', () => {
  const html = readFileSync(new URL('../app/index.html', import.meta.url), 'utf8');
  const inputs = [...html.matchAll(/<input[^>]*type="password"[^>]*>/g)].map((m) => m[0]);
  assert.ok(inputs.length >= 5, `${inputs.length} password inputs`);
  for (const input of inputs) assert.doesNotMatch(input, /maxlength/, input);

  assert.equal(passwordLengthNote('x'.repeat(MAX_PASSWORD_BYTES)), '');
  assert.match(passwordLengthNote('x'.repeat(MAX_PASSWORD_BYTES + 1)),
    /at most 128 bytes.*has 129/);
  assert.match(passwordLengthNote('é'.repeat(65)), /has 130/, 'counted in UTF-8 bytes');
  const long = 'p'.repeat(100) + 'q'.repeat(100);
  assert.match(newPasswordProblem({ oldPassword: 'old-secret', username: 'ann',
    newPassword: long, again: long }), /has 200/);
});

test('a FILE message reads as its name, or Photo, and says its size', () => {
  const sha256 = new Uint8Array(32);
  const fileMsg = (ref) => ({ contentType: ContentType.FILE, seq: 4n, senderId: 2n,
    recalled: false, content: encodeFileRef({ fileId: 'f', sha256, size: 10n, ...ref }) });
  const doc = fileMsg({ name: 'report.pdf', mime: 'application/pdf' });
  const pic = fileMsg({ name: 'cat.png', mime: 'image/png', width: 4, height: 3 });
  assert.equal(bodyText(doc), 'report.pdf');
  assert.equal(bodyText(pic), 'Photo', 'as the server previews an image');
  assert.equal(String(quoteText(4n, pic, () => 'bob')), '#4 bob: “Photo”');
  assert.equal(fileRefOfMessage({ ...doc, recalled: true }), null);
  assert.equal(fileRefOfMessage({ ...doc, content: new Uint8Array([1, 2]) }), null);
  assert.equal(showsInline(fileRefOfMessage(pic)), true);
  assert.equal(showsInline({ mime: 'image/png', size: BigInt(THUMB_MAX_BYTES + 1) }), false);
  // In binary units, as the terminal client writes them (client/chat).
  assert.deepEqual([0, 830, 12_700, 70_000, 3_250_000, 25 << 20, 3 * 2 ** 30].map(sizeText),
    ['0 B', '830 B', '12.4 KiB', '68.4 KiB', '3.1 MiB', '25.0 MiB', '3.0 GiB']);
  assert.equal(fileLabel({ name: 'a\u202Eb.exe', mime: 'text/plain' }), 'a\u202Eb.exe',
    'user text, cleaned where it is shown');
});

test('a file refused or gone is said in words', () => {
  assert.equal(uploadProblem({ size: 0 }), 'Not sent: the file is empty.');
  assert.match(uploadProblem({ size: (25 << 20) + 1 }), /25.0 MiB, over the limit of 25.0 MiB/);
  assert.equal(uploadProblem({ size: 100 }), '');
  assert.equal(fileErrorText('send', { code: ErrorCode.TOO_LARGE,
    serverMessage: 'too large: file over 1048576 bytes' }),
  "Not sent: the file is over the server's limit of 1.0 MiB.");
  assert.match(fileErrorText('send', { code: ErrorCode.TOO_LARGE }), /limit of 25.0 MiB/);
  assert.match(fileErrorText('open', { code: ErrorCode.NOT_FOUND }), /no longer available/);
  assert.match(fileErrorText('open', { name: 'FileMismatchError' }), /damaged/);
  assert.equal(fileErrorText('send', { name: 'AbortError' }), 'Cancelled.');
});

// A tab signed out from another device landed on Sign in with a bare
// "signed out": endedText says what happened and what to do, whichever way
// the sign-out reached the tab.
test('a session ended by a sign-out elsewhere says what happened and what to do', () => {
  assert.equal(SIGNED_OUT_TEXT, 'This device was signed out from another device or by a ' +
    'password change. Sign in again.');
  const close = { reason: CloseReason.SIGNED_OUT, message: 'signed out', reconnectAfterMs: -1 };
  assert.equal(endedText(new SessionEndedError('signed out', { close })), SIGNED_OUT_TEXT);
  assert.equal(endedText({ close }), SIGNED_OUT_TEXT, 'a refused start with the close');
  assert.equal(endedText(new SessionEndedError('account deleted', { accountDeleted: true })),
    'This account was deleted.');
  const suspended = { reason: CloseReason.ACCOUNT_SUSPENDED, message: 'account suspended',
    reconnectAfterMs: -1 };
  assert.equal(endedText(new SessionEndedError('suspended', { close: suspended })),
    SUSPENDED_TEXT);
  assert.equal(endedText({ code: ErrorCode.ACCOUNT_SUSPENDED }), SUSPENDED_TEXT,
    'a start refused as suspended');
  assert.equal(endedText(new SessionEndedError('replaced', {
    close: { reason: CloseReason.KICKED, message: 'replaced', reconnectAfterMs: -1 } })),
  'Signed in elsewhere with this device.');
  assert.equal(endedText({ code: ErrorCode.INVALID_CREDENTIALS }), 'Wrong username or password.');
  assert.equal(endedText(new SessionEndedError('the login expired; sign in again')),
    'the login expired; sign in again');
});

// Recall stayed on one's own messages past the server's window:
// recallClosesMs is when it closes, by the send time and the default window.
test('the recall window closes 2 minutes after the message was sent', () => {
  assert.equal(RECALL_WINDOW_MS, 2 * 60_000);
  const m = { sendTimeMs: 1_700_000_000_000n };
  assert.equal(recallClosesMs(m), 1_700_000_120_000);
  assert.equal(recallClosesMs(m, 5000), 1_700_000_005_000);
});

// The server's limits as its login reported them, not the defaults: a
// server set to 2 MiB files refuses a 3 MiB one before it goes, one set to
// 50 MiB takes 30 MiB; a refusal without the limit in words names the
// reported one. An older server reports none: the defaults stand.
test('file and text limits follow the ones the server reported', () => {
  const small = limitsOf({ limits: { maxFileBytes: 2n << 20n, maxContentBytes: 100 } });
  const large = limitsOf({ limits: { maxFileBytes: 50n << 20n } });
  assert.match(uploadProblem({ size: 3 << 20 }, small), /3.0 MiB, over the limit of 2.0 MiB/);
  assert.equal(uploadProblem({ size: 30 << 20 }, large), '');
  assert.match(uploadProblem({ size: 30 << 20 }, limitsOf({})), /over the limit of 25.0 MiB/);
  assert.match(fileErrorText('send', { code: ErrorCode.TOO_LARGE }, small), /limit of 2.0 MiB/);
  assert.match(lengthNote('x'.repeat(101), small), /101 bytes, 1 byte over the limit of 100/);
  assert.equal(lengthNote('x'.repeat(101), DEFAULT_LIMITS), '');
});

// Edit stayed offered past the 24-hour edit window, and Recall went by the
// default window whatever the server's: offeredChanges offers each on the
// user's own message within the window the server reported only.
test('Edit and Recall are offered within the windows the server reported', () => {
  const limits = limitsOf({ limits: { recallWindowMs: 600_000n, editWindowMs: 3_600_000n } });
  const sent = 1_700_000_000_000;
  const text = { senderId: 1n, contentType: ContentType.TEXT, sendTimeMs: BigInt(sent) };
  const offered = (m, after, me = 1n) => offeredChanges(m, me, sent + after, limits);
  assert.deepEqual(offered(text, 0), { edit: true, recall: true });
  assert.deepEqual(offered(text, 5 * 60_000), { edit: true, recall: true },
    'past the default 2 minutes, within the server\'s 10');
  assert.deepEqual(offered(text, 600_000 + 1), { edit: true, recall: false });
  assert.deepEqual(offered(text, 3_600_000 + 1), { edit: false, recall: false });
  assert.deepEqual(offered(text, 0, 2n), { edit: false, recall: false }, 'another\'s message');
  assert.deepEqual(offered({ ...text, recalled: true }, 0), { edit: false, recall: false });
  assert.deepEqual(offered({ ...text, contentType: ContentType.FILE }, 0),
    { edit: false, recall: true }, 'a file is recalled, never edited');
  const dflt = (after) => offeredChanges(text, 1n, sent + after, DEFAULT_LIMITS);
  assert.deepEqual(dflt(24 * 3_600_000 + 1), { edit: false, recall: false },
    'an older server: the default 24 hours');
});

// pinConv is a conversation as app.js keeps it, with messages by seq.
function pinConv(type, msgs = []) {
  return { type, messages: new Map(msgs.map((m) => [String(m.seq), m])), pinnedSeqs: [],
    pinsAsOf: 0n, group: null };
}

function pinMsg(seq, target, unpinned = false, senderId = 2n) {
  return { seq, senderId, contentType: ContentType.PIN,
    content: encodeStruct(schemas.PinEvent, { seq: target, msgId: 0n, unpinned }) };
}

test('pins: the listing stands for the events up to its last seq; newer ones apply', () => {
  const c = pinConv(ConvType.P2P);
  mergePins(c, { lastSeq: 5n, pinnedSeqs: [3n, 1n] });
  assert.equal(applyPinEvent(c, pinMsg(4n, 3n)), false, 'in the listing already');
  assert.equal(applyPinEvent(c, pinMsg(5n, 2n, true)), false);
  assert.deepEqual(c.pinnedSeqs, [3n, 1n]);
  assert.equal(applyPinEvent(c, pinMsg(6n, 2n)), true);
  assert.equal(applyPinEvent(c, pinMsg(7n, 3n, true)), true);
  assert.deepEqual(c.pinnedSeqs, [2n, 1n]);
  assert.equal(applyPinEvent(c, pinMsg(7n, 1n, true)), false, 'the same event again');
  assert.equal(isPinned(c, 1n), true);
  dropPin(c, 1n); // recalled
  assert.deepEqual(c.pinnedSeqs, [2n]);
  mergePins(c, { lastSeq: 9n }); // a listing without pins
  assert.deepEqual(c.pinnedSeqs, []);
});

test('pins: offered in 1:1, and in a group to its owner and admins', () => {
  assert.equal(canPin(pinConv(ConvType.P2P), 1n), true);
  const g = pinConv(ConvType.GROUP);
  assert.equal(canPin(g, 1n), false, 'roles not known yet');
  g.group = { members: [{ userId: 1n, role: GroupRole.ADMIN },
    { userId: 2n, role: GroupRole.MEMBER }] };
  assert.equal(canPin(g, 1n), true);
  assert.equal(canPin(g, 2n), false);
  const text = { seq: 1n, contentType: ContentType.TEXT, content: new Uint8Array() };
  assert.equal(pinnable(text), true);
  assert.equal(pinnable({ ...text, recalled: true }), false);
  assert.equal(pinnable(pinMsg(2n, 1n)), false, 'an event');
});

test('pinText quotes the pinned message when loaded, names its seq when not', () => {
  const lunch = { seq: 3n, senderId: 2n, contentType: ContentType.TEXT,
    content: new TextEncoder().encode('lunch?\nat noon') };
  const c = pinConv(ConvType.P2P, [lunch]);
  assert.equal(String(pinText(c, pinMsg(4n, 3n), 'ann')), 'ann pinned “lunch? at noon”');
  assert.equal(String(pinText(c, pinMsg(5n, 3n, true), 'You')), 'You unpinned “lunch? at noon”');
  assert.equal(String(pinText(c, pinMsg(6n, 9n), 'ann')), 'ann pinned “message #9”');
  const evil = pinConv(ConvType.P2P, [{ ...lunch, content: new TextEncoder().encode('a\u202Eb') }]);
  assert.equal(String(pinText(evil, pinMsg(4n, 3n), 'ann')), 'ann pinned “a\uFFFDb”');
});
