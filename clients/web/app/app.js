// The Resonance web app: sign-in, conversation list, chat view, groups,
// typing and presence, on the SDK in ../sdk. Plain DOM, no framework: state
// lives in state.js and render functions (render.js) rebuild the parts that
// changed. This module starts the app and keeps the session's news: the
// session, conversations, users, notifications, opening and paging a
// conversation; sending.js sends, wiring.js wires the page's controls.
// User text is only ever set with textContent.

import {
  CloseReason, ContentType, ConvType, ErrorCode, Session, State, SessionEndedError,
  StoragePositions, decodeStruct, jitter, mentionsUser, schemas,
} from '../sdk/index.js';
import { el, errText, isLeave, setUserText } from './view.js';
import { safeText } from './text.js';
import { debounceWatch, peersToWatch } from './presence.js';
import { applyClear, isCleared, unhideOn } from './clearing.js';
import { endedText } from './account.js';
import {
  applyReactionEvent, isReaction, reactionList, settlePendingReactions,
} from './reacting.js';
import { applyPinEvent, dropPin, isPin, mergePins } from './pinning.js';
import { $, app, files, params } from './state.js';
import { onOutbox, renderUploads, stopEdit, showConvNote } from './sending.js';
import { scheduleRender, renderAll, renderConvs, showSideError } from './render.js';
import { wireUi } from './wiring.js';
import { closeSearch } from './searchview.js';

const TYPING_SEND_EVERY_MS = 3000;
const TYPING_SHOW_MS = 6000;
const PAGE = 30;

// ?debug=1 exposes the app's state and a log of every message the SDK
// delivered, kept in sessionStorage so that it spans reloads; the browser
// tests check exactly-once delivery with it.
const debug = params.has('debug');
if (debug) window.resonance = { app, log: () => debugLog() };

function debugLog() {
  return JSON.parse(sessionStorage.getItem('resonance.debuglog') || '[]');
}

function logDelivered(m) {
  const log = debugLog();
  log.push(`${m.convId}#${m.seq}`);
  sessionStorage.setItem('resonance.debuglog', JSON.stringify(log));
}

// ---- start ----

async function main() {
  wireUi();
  app.wsUrl = params.get('ws') || await fetchWsUrl();
  const deviceId = sessionStorage.getItem('resonance.device') ||
    `web-${Math.random().toString(36).slice(2, 10)}`;
  sessionStorage.setItem('resonance.device', deviceId);
  app.deviceId = deviceId;
  app.storage = new StoragePositions(sessionStorage, 'resonance');
  const tk = app.storage.tokens();
  if (tk && (tk.access || tk.refresh) && tk.username) {
    // A reload: log in again with the saved tokens, no password.
    await startSession({ username: tk.username });
  } else {
    showLogin('');
  }
}

async function fetchWsUrl() {
  try {
    const r = await fetch('config.json', { cache: 'no-store' });
    const cfg = await r.json();
    if (cfg.wsUrl) return cfg.wsUrl;
  } catch { /* fall through */ }
  return `ws://${location.hostname}:7000/`;
}

export async function startSession({ username, password }) {
  setConn({ state: State.CONNECTING });
  const s = new Session({
    url: app.wsUrl, username, password, deviceId: app.deviceId, platform: 'web',
    positions: app.storage, startAtLatest: true,
    sendTimeoutMs: Number(params.get('sendTimeoutMs')) || 30_000,
    resyncIntervalMs: Number(params.get('resyncIntervalMs')) || 60_000,
  });
  app.session = s;
  s.on('state', setConn);
  s.on('message', onMessage);
  s.on('conv', mergeSummary);
  s.on('notify', onNotify);
  s.on('outbox', onOutbox);
  s.on('resumed', onResumed);
  s.on('ended', onEnded);
  try {
    const login = await s.start();
    app.me = { userId: login.userId, username: login.username };
    // Recall is offered by the server's clock, which stamps send times.
    if (login.serverTimeMs) app.clockSkewMs = Number(login.serverTimeMs) - Date.now();
    app.users.set(String(login.userId), login.username);
    showChat();
    return true;
  } catch (err) {
    app.session = null;
    // The saved tokens of a device signed out since (the gateway refuses
    // them, then closes with SIGNED_OUT, which the next request meets): no
    // outage, and no retry logs it in.
    const signedOut = err.close?.reason === CloseReason.SIGNED_OUT;
    if (!password && !err.code && !signedOut && !(err instanceof SessionEndedError)) {
      // A reload while the server is unreachable: the saved login may be
      // fine, so keep it and try again rather than ask for the password.
      retryStart(username);
      return false;
    }
    app.storage.clear();
    showLogin(endedText(err));
    return false;
  }
}

let startBackoffMs = 1000;

function retryStart(username) {
  const wait = jitter(startBackoffMs);
  startBackoffMs = Math.min(startBackoffMs * 2, 30_000);
  setConn({ state: State.OFFLINE, retryInMs: wait });
  setTimeout(() => startSession({ username }), wait);
}

// ---- views ----

export function showLogin(message) {
  setConn({ state: 'signed-out' });
  $('login-view').hidden = false;
  $('chat-view').hidden = true;
  $('whoami').hidden = true;
  $('login-error').textContent = message;
  $('login-user').focus();
}

function showChat() {
  $('login-view').hidden = true;
  $('chat-view').hidden = false;
  $('whoami').hidden = false;
  setUserText($('me-name'), app.me.username);
  renderConvs();
  const want = sessionStorage.getItem('resonance.open');
  if (want) openConv(want);
}

function setConn({ state, retryInMs }) {
  const el = $('conn');
  el.dataset.state = state;
  const text = {
    [State.CONNECTING]: 'Connecting…',
    [State.RESUMING]: 'Catching up…',
    [State.ONLINE]: 'Online',
    [State.OFFLINE]: `Offline, retrying in ${Math.ceil((retryInMs || 0) / 1000)} s`,
    [State.ENDED]: 'Signed out',
    'signed-out': 'Not signed in',
  }[state] || state;
  $('conn-text').textContent = text;
  $('reconnect').hidden = state !== State.OFFLINE;
  // Nothing of the peers reaches a tab without a connection: what it knew
  // is forgotten, and shown unknown until the next watch answers.
  if (state !== State.ONLINE && state !== State.RESUMING) app.presence.clear();
  app.connState = state;
  scheduleRender();
}

function onEnded(err) {
  // A failed first login is reported by startSession, and an end the user
  // asked for (sign out, delete account) by its own handler.
  if (!app.me || app.ending) return;
  resetState();
  showLogin(endedText(err));
}

export function resetState() {
  showConvNote('');
  app.session = null;
  app.me = null;
  app.ending = false;
  app.convs.clear();
  app.watching.clear();
  app.openId = '';
  app.replyTo = null;
  app.editing = null;
  for (const u of app.uploads) u.ctl.abort();
  app.uploads = [];
  renderUploads();
  app.storage.clear();
  sessionStorage.removeItem('resonance.open');
  closeSearch();
  $('conv').hidden = true;
  $('empty').hidden = false;
  $('convs').replaceChildren();
  $('messages').replaceChildren();
  files.sweep();
}

// ---- conversations ----

export function ensureConv(convId) {
  let c = app.convs.get(convId);
  if (!c) {
    c = {
      convId, type: convId.startsWith('p2p:') ? ConvType.P2P : ConvType.GROUP, name: '',
      peerUserId: 0n, lastSeq: 0n, readSeq: 0n, peerReadSeq: 0n, unread: 0, lastMessage: null,
      mentionSeq: 0n, // the newest seq mentioning the user: "@" while past readSeq
      memberCount: 0, messages: new Map(), hasOlder: true, historyLoaded: false, loading: false,
      typing: new Map(), group: null, clearedSeq: 0n, hidden: false,
      // REACTION events to messages not loaded yet, by target seq (reacting.js)
      pendingReactions: new Map(),
      // the pinned seqs, most recently pinned first, as of pinsAsOf (pinning.js)
      pinnedSeqs: [], pinsAsOf: 0n,
    };
    if (c.type === ConvType.P2P && app.me) {
      const [, a, b] = convId.split(':');
      c.peerUserId = String(app.me.userId) === a ? BigInt(b) : BigInt(a);
    }
    app.convs.set(convId, c);
    if (c.type === ConvType.GROUP) refreshGroup(c);
    else scheduleWatch(); // a new peer to watch
  }
  return c;
}

function mergeSummary(sum) {
  const c = ensureConv(sum.convId);
  c.type = sum.type || c.type;
  if (sum.name) c.name = sum.name;
  if (sum.peerUserId) c.peerUserId = sum.peerUserId;
  c.memberCount = sum.memberCount || c.memberCount;
  if (sum.readSeq > c.readSeq) c.readSeq = sum.readSeq;
  if (sum.peerReadSeq > c.peerReadSeq) c.peerReadSeq = sum.peerReadSeq;
  if (sum.mentionSeq > c.mentionSeq) c.mentionSeq = sum.mentionSeq;
  // The server's unread count is right as of its last_seq; messages past
  // it were counted here as they arrived.
  if (sum.lastSeq >= c.lastSeq) {
    c.lastSeq = sum.lastSeq;
    c.unread = Number(sum.unread);
    if (sum.lastMessage && sum.lastMessage.msgId) c.lastMessage = sum.lastMessage;
    mergePins(c, sum);
  }
  // A clear or a delete on another tab or device; a deleted chat open here
  // closes, as it has left the list.
  applyClear(c, sum.clearedSeq || 0n, sum.hidden);
  if (c.hidden && app.openId === c.convId) closeConv();
  if (c.peerUserId) nameOf_(c.peerUserId);
  if (isViewing(c)) markReadIfSeen(c); // a summary read before our MARK_READ landed
  scheduleRender();
}

// The server forgets a watch set a day after it was last sent; the app
// sends it after every login and, for a tab left open, every hour.
const WATCH_AGAIN_MS = 3_600_000;
setInterval(() => watchPeers(), WATCH_AGAIN_MS);

async function onResumed() {
  try {
    for (const sum of await app.session.conversations()) mergeSummary(sum);
  } catch (err) {
    showSideError(err);
  }
  watchPeers();
  if (app.openId) markReadIfSeen(app.convs.get(app.openId));
}

function onMessage(m) {
  if (debug) logDelivered(m);
  const c = ensureConv(m.convId);
  if (isCleared(c, m)) return; // cleared on another tab before it came
  unhideOn(c, m);
  c.messages.set(String(m.seq), m);
  if (m.seq > c.lastSeq) {
    c.lastSeq = m.seq;
    // A reaction is the list's preview, as SYNC_CONVS' last_message has it
    // after a reload; a RECALL or EDIT shows its target instead.
    if (!isChange(m) || isReaction(m)) c.lastMessage = m;
    const mine = m.senderId === app.me.userId;
    if (!mine && !isViewing(c) && !isChange(m)) c.unread++;
    if (mine && m.seq > c.readSeq) c.readSeq = m.seq;
  }
  if (mentionsUser(m, app.me.userId) && m.seq > c.mentionSeq) c.mentionSeq = m.seq;
  if (m.contentType === ContentType.GROUP_EVENT) {
    refreshGroup(c);
    if (isLeave(m)) recheckUser(m.senderId);
  }
  if (m.contentType === ContentType.RECALL || m.contentType === ContentType.EDIT) applyChange(c, m);
  if (isReaction(m)) applyReactionEvent(c.messages, m, app.me.userId, c.pendingReactions);
  if (isPin(m)) applyPinEvent(c, m);
  c.typing.delete(String(m.senderId));
  nameOf_(m.senderId);
  rewatchFor(c);
  if (isViewing(c)) markReadIfSeen(c);
  scheduleRender();
}

// applyChange applies a RECALL or EDIT event to the message it names, when
// that message is loaded; a page loaded later has the change already.
function applyChange(c, m) {
  try {
    if (m.contentType === ContentType.RECALL) {
      const ev = decodeStruct(schemas.RecallEvent, m.content);
      dropPin(c, ev.seq); // the server unpinned it with the recall
      const target = c.messages.get(String(ev.seq));
      if (target) {
        Object.assign(target, { recalled: true, content: new Uint8Array(0), reactionList: [] });
      }
    } else {
      const ev = decodeStruct(schemas.EditEvent, m.content);
      const target = c.messages.get(String(ev.seq));
      if (target) {
        Object.assign(target, { content: ev.content, contentType: ev.contentType,
          editedMs: m.sendTimeMs });
      }
    }
  } catch (err) {
    console.warn('message change', err);
  }
}

// isChange reports a message that changes another instead of being shown;
// none counts as unread.
export function isChange(m) {
  return m.contentType === ContentType.RECALL || m.contentType === ContentType.EDIT ||
    isReaction(m);
}

function isViewing(c) {
  return app.openId === c.convId && document.visibilityState === 'visible';
}

export function markReadIfSeen(c) {
  if (!c || !isViewing(c) || c.lastSeq <= c.readSeq) {
    if (c && isViewing(c)) c.unread = 0;
    return;
  }
  const seq = c.lastSeq;
  c.readSeq = seq;
  c.unread = 0;
  app.session.markRead(c.convId, seq).catch(() => { c.readSeq = 0n; });
}

export async function refreshGroup(c) {
  if (!app.session) return;
  try {
    const g = await app.session.getGroup(c.convId);
    c.group = g;
    c.name = g.name || c.name;
    c.memberCount = g.members.length;
    for (const mem of g.members) nameOf_(mem.userId);
    scheduleRender();
  } catch (err) {
    if (err.code !== ErrorCode.UNSUPPORTED) console.warn('get group', err);
  }
}

// What the app shows for a user whose account was deleted (GET_USER by id
// answers deleted, with no username).
const DELETED_NAME = 'Deleted account';

// nameOf_ returns the username of id, fetching it once in the background.
export function nameOf_(id) {
  const key = String(id);
  const known = app.users.get(key);
  if (known !== undefined) return known || `user ${key}`;
  app.users.set(key, '');
  lookUpUser(key);
  return `user ${key}`;
}

// lookUpUser reads the name of the user whose id is key, again when known:
// a name is all the app keeps of a user, and a deleted account's reads as
// such. A failed first look-up is tried again at the next nameOf_.
function lookUpUser(key) {
  app.session?.getUser({ userId: BigInt(key) }).then((u) => {
    app.users.set(key, u.deleted ? DELETED_NAME : u.username);
    scheduleRender();
  }, () => {
    if (!app.users.get(key)) app.users.delete(key);
  });
}

// recheckUser looks a known user up again after a sign of a deletion: the
// user going offline (a deletion signs every device out and tells the
// watchers) or leaving a group (a deletion leaves them all).
function recheckUser(id) {
  const key = String(id);
  const known = app.users.get(key);
  if (known && known !== DELETED_NAME && key !== String(app.me?.userId)) lookUpUser(key);
}

export function convTitle(c) {
  if (c.type === ConvType.GROUP) return c.name || 'Group';
  return c.peerUserId ? nameOf_(c.peerUserId) : c.convId;
}

// ---- notifications: typing, presence, read ----

function onNotify(n) {
  if (n.typing) {
    const c = ensureConv(n.typing.convId);
    const key = String(n.typing.userId);
    if (n.typing.typing) c.typing.set(key, Date.now() + TYPING_SHOW_MS);
    else c.typing.delete(key);
    setTimeout(scheduleRender, TYPING_SHOW_MS + 50);
  } else if (n.presence) {
    app.presenceSupported = true; // a server that sends presence serves it
    app.presence.set(String(n.presence.userId), n.presence.online);
    if (!n.presence.online) recheckUser(n.presence.userId);
  } else if (n.cleared) {
    // A clear or a delete on another of the user's devices (the SDK has
    // already passed over the cleared messages).
    takeClear(n.cleared.convId, n.cleared.clearedSeq, n.cleared.hidden);
  } else if (n.read) {
    const c = ensureConv(n.read.convId);
    if (n.read.userId === app.me.userId) {
      if (n.read.readSeq > c.readSeq) c.readSeq = n.read.readSeq;
      if (c.readSeq >= c.lastSeq) c.unread = 0;
    } else if (n.read.readSeq > c.peerReadSeq) {
      c.peerReadSeq = n.read.readSeq;
    }
  }
  scheduleRender();
}

// scheduleWatch sends the watch set soon, once for a burst of new
// conversations (WATCH_PRESENCE is rate-limited per user).
const scheduleWatch = debounceWatch(() => watchPeers(), 500);

// A server older than WATCH_PRESENCE refuses it UNSUPPORTED: the app hides
// presence then, and still asks at each resume and every hour, which costs
// nothing while the session remembers the refusal (it answers UNSUPPORTED
// itself) and finds the op once the server has been upgraded.
//
// Any other failure is shown: the dots stop following the peers until the
// next watch set is taken, and a refusal such as TOO_LARGE would otherwise
// go unnoticed for good.
export async function watchPeers() {
  if (!app.session || app.session.state !== State.ONLINE) return;
  const ids = peersToWatch(app.convs.values());
  try {
    const r = await app.session.watchPresence(ids.map(BigInt));
    app.presenceSupported = true;
    app.watching = new Set(ids);
    for (const p of r.presences) app.presence.set(String(p.userId), p.online);
    scheduleRender();
  } catch (err) {
    if (err.code !== ErrorCode.UNSUPPORTED) {
      console.warn('watch presence', err);
      if (err.code) showSideError(new Error(`Presence is not updating: ${errText(err)}`));
      return;
    }
    app.presenceSupported = false;
    scheduleRender(); // hide what was shown
  }
}

// rewatchFor sends the watch set again when c, just active, is a 1:1
// conversation whose peer it leaves out: with more peers than the server
// watches, the set follows the conversations in use.
function rewatchFor(c) {
  if (c.type === ConvType.P2P && c.peerUserId && app.presenceSupported &&
      !app.watching.has(String(c.peerUserId))) {
    scheduleWatch();
  }
}

export function sendTyping(typing) {
  const c = app.convs.get(app.openId);
  if (!c || !app.session || app.session.state !== State.ONLINE) return;
  const now = Date.now();
  if (typing && now - app.typingSentMs < TYPING_SEND_EVERY_MS) return;
  if (!typing && app.typingSentMs === 0) return; // no "started" to take back
  app.typingSentMs = typing ? now : 0;
  app.session.typing(c.convId, typing).catch(() => {});
}

// ---- opening a conversation and paging history ----

export function closeConv() {
  app.openId = '';
  sessionStorage.removeItem('resonance.open');
  $('chat-view').classList.remove('open');
  renderAll();
}

// clearOpen clears the open chat's history for the user, and with hide
// deletes the chat from the list, after the user confirms. This tab shows
// it at once; the user's other tabs and devices learn it from a NOTIFY
// cleared, or from SYNC_CONVS when they were offline.
export async function clearOpen(hide) {
  const c = app.convs.get(app.openId);
  if (!c) return;
  // Up to what this tab knows of, not the server's newest: a message that
  // came while the user was asked would otherwise be cleared unseen.
  const upToSeq = c.lastSeq;
  if (upToSeq === 0n) return;
  const title = safeText(convTitle(c));
  const ask = hide
    ? `Delete the chat with ${title}? Its history is cleared for you on all your ` +
      'devices, and it leaves your list until a new message comes. Others keep theirs.'
    : `Clear the history with ${title}? It is cleared for you on all your devices. ` +
      'Others keep theirs.';
  if (!confirm(ask)) return;
  try {
    const { clearedSeq } = await app.session.clearConv(c.convId, { upToSeq, hide });
    applyClear(c, clearedSeq, hide);
    if (c.hidden) closeConv();
    renderAll();
    tabs?.postMessage({ userId: String(app.me.userId), convId: c.convId,
      clearedSeq: String(clearedSeq), hide });
  } catch (err) {
    showConvNote(errText(err));
  }
}

// The other tabs of this browser signed in as the same user take a clear
// or a delete from here at once, also a tab whose connection is down; other
// devices learn it from the server (takeClear from onNotify).
const tabs = typeof BroadcastChannel === 'function'
  ? new BroadcastChannel('resonance.clears') : null;
tabs?.addEventListener('message', ({ data }) => {
  if (app.me && data.userId === String(app.me.userId)) {
    takeClear(data.convId, BigInt(data.clearedSeq), data.hide);
  }
});

// takeClear applies a clear or a delete made on another tab or device to
// the conversation, when this tab has it (else its listing reports it); a
// deleted chat open here closes, as it has left the list.
function takeClear(convId, clearedSeq, hidden) {
  const c = app.convs.get(convId);
  if (!c) return;
  applyClear(c, clearedSeq, hidden);
  if (c.hidden && app.openId === c.convId) closeConv();
  scheduleRender();
}

export async function openConv(convId) {
  const c = app.convs.get(convId) || ensureConv(convId);
  if (app.editing && app.editing.convId !== convId) stopEdit();
  app.openId = convId;
  sessionStorage.setItem('resonance.open', convId);
  $('chat-view').classList.add('open');
  $('members').hidden = true;
  $('members-btn').setAttribute('aria-expanded', 'false');
  app.stickToBottom = true;
  markReadIfSeen(c);
  renderAll();
  $('text').focus();
  if (!c.historyLoaded) await loadOlder(c);
  markReadIfSeen(c);
  renderAll();
}

export async function loadOlder(c) {
  if (c.loading || !c.hasOlder || !app.session) return;
  c.loading = true;
  const oldest = oldestSeq(c);
  try {
    const page = await app.session.history(c.convId, oldest, PAGE);
    for (const m of page.messages) {
      if (isCleared(c, m)) continue; // a page read before a clear landed
      m.pageLastSeq = page.lastSeq; // its reactions' sum is no newer
      c.messages.set(String(m.seq), m);
      nameOf_(m.senderId);
    }
    settlePendingReactions(c.messages, c.pendingReactions, app.me.userId);
    c.hasOlder = page.hasMore;
    c.historyLoaded = true;
    if (page.lastSeq > c.lastSeq) c.lastSeq = page.lastSeq;
  } catch (err) {
    if (err.code === ErrorCode.NOT_FOUND) {
      c.hasOlder = false; // nothing stored yet
      c.historyLoaded = true;
    } else {
      showSideError(err);
    }
  } finally {
    c.loading = false;
  }
  const sc = $('scroller');
  const fromBottom = sc.scrollHeight - sc.scrollTop;
  renderAll();
  if (!app.stickToBottom) sc.scrollTop = sc.scrollHeight - fromBottom; // keep the view still
}

function oldestSeq(c) {
  let min = 0n;
  for (const m of c.messages.values()) if (min === 0n || m.seq < min) min = m.seq;
  return min;
}

main().catch((err) => {
  console.error(err);
  showLogin(errText(err));
});
