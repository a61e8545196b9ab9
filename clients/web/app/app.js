// The Resonance web app: sign-in, conversation list, chat view, groups,
// typing and presence, on the SDK in ../sdk. Plain DOM, no framework: state
// lives in the objects below and render functions rebuild the parts that
// changed. User text is only ever set with textContent.

import {
  CloseReason, ContentType, ConvType, DEFAULT_LIMITS, ErrorCode, GroupAction, GroupRole, Session,
  State, SessionEndedError, StoragePositions, decodeStruct, jitter, mentionsUser, nameOf, register,
  QUICK_REACTIONS, schemas, unreadMention,
} from '../sdk/index.js';
import {
  lengthNote, mentionsFor, offeredChanges, quoteText,
} from './compose.js';
import {
  bodyText, changeErrorText, deleteAccountErrorText, el, errText, groupEventText, isLeave,
  reconcile, setUserText, timeText, userEl, usernameProblem,
} from './view.js';
import { Line, joinLines, line, safeText } from './text.js';
import { debounceWatch, lastTime, peerPresence, peersToWatch } from './presence.js';
import { applyClear, isCleared, listed, unhideOn } from './clearing.js';
import { wireAccountDialogs } from './accountview.js';
import { endedText, passwordLengthNote } from './account.js';
import { fileErrorText, fileLabel, fileRefOfMessage, sizeText, uploadProblem } from './attach.js';
import { FileView } from './fileview.js';
import {
  applyReactionEvent, isReaction, reactionList, reactionText, reactionsKey,
  settlePendingReactions,
} from './reacting.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_SHOW_MS = 6000;
const PAGE = 30;
// NOTE_MS is how long a note above the messages (a refusal) stays unless
// dismissed sooner.
const NOTE_MS = 10_000;
// RECALL_MS, when set (?recallWindowMs=, which tests set short), stands in
// for the recall window the server reports.
const RECALL_MS = Number(params.get('recallWindowMs')) || 0;

// Everything this tab knows. Conversation ids and user ids (BigInt) are
// keyed as strings.
const app = {
  wsUrl: '',
  session: null,
  me: null, // {userId, username}
  ending: false, // the user signs out or deletes the account: the session's end is no news
  convs: new Map(), // conv id -> conv (see ensureConv)
  users: new Map(), // user id string -> username
  presence: new Map(), // user id string -> boolean, while connected
  connState: State.CONNECTING, // the session's last State (setConn)
  presenceSupported: true,
  watching: new Set(), // user id strings of the last watch set the server took
  openId: '',
  typingSentMs: 0,
  storage: null,
  replyTo: null, // {convId, seq} the composer replies to, or null
  editing: null, // {convId, seq, draft} of the user's message the composer edits, or null
  uploads: [], // files on their way: {id, name, size, sent, convId, error, ctl} (attachFiles)
  clockSkewMs: 0, // the server's clock less this one's, as of the login
};

// files renders FILE messages: thumbnails, cards, the full-size viewer.
const files = new FileView({ session: () => app.session, root: $('scroller') });

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

async function startSession({ username, password }) {
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

function showLogin(message) {
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

function resetState() {
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
  $('conv').hidden = true;
  $('empty').hidden = false;
  $('convs').replaceChildren();
  $('messages').replaceChildren();
  files.sweep();
}

// ---- conversations ----

function ensureConv(convId) {
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
function isChange(m) {
  return m.contentType === ContentType.RECALL || m.contentType === ContentType.EDIT ||
    isReaction(m);
}

function isViewing(c) {
  return app.openId === c.convId && document.visibilityState === 'visible';
}

function markReadIfSeen(c) {
  if (!c || !isViewing(c) || c.lastSeq <= c.readSeq) {
    if (c && isViewing(c)) c.unread = 0;
    return;
  }
  const seq = c.lastSeq;
  c.readSeq = seq;
  c.unread = 0;
  app.session.markRead(c.convId, seq).catch(() => { c.readSeq = 0n; });
}

async function refreshGroup(c) {
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
function nameOf_(id) {
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

function convTitle(c) {
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
async function watchPeers() {
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

function sendTyping(typing) {
  const c = app.convs.get(app.openId);
  if (!c || !app.session || app.session.state !== State.ONLINE) return;
  const now = Date.now();
  if (typing && now - app.typingSentMs < TYPING_SEND_EVERY_MS) return;
  if (!typing && app.typingSentMs === 0) return; // no "started" to take back
  app.typingSentMs = typing ? now : 0;
  app.session.typing(c.convId, typing).catch(() => {});
}

// ---- sending ----

function onOutbox() {
  scheduleRender();
}

function sendText(text) {
  const c = app.convs.get(app.openId);
  if (!c || !text.trim()) return;
  const replyTo = app.replyTo && app.replyTo.convId === c.convId ? app.replyTo.seq : undefined;
  setReplyTo(null);
  let e;
  if (c.type === ConvType.P2P && c.lastSeq === 0n) {
    e = app.session.send({ toUserId: c.peerUserId, text }); // the first message creates it
  } else {
    const { mentions, mentionAll, allRefused } = mentionsFor(text,
      c.type === ConvType.GROUP ? c.group : null, app.me.userId, nameOf_);
    $('compose-note').textContent = allRefused
      ? '@all is for the group’s owner and admins; it was sent as text.' : '';
    e = app.session.send({ convId: c.convId, text, replyTo, mentions, mentionAll });
  }
  e.viewConvId = c.convId;
  sendTyping(false);
  scheduleRender();
  stickToBottom = true;
}

// attachFiles uploads each file to the open conversation and sends it as
// a FILE message once complete; the uploads show above the composer with
// their progress and a Cancel button. A file the server would refuse for
// its size is refused here, in words.
function attachFiles(list) {
  const c = app.convs.get(app.openId);
  if (!c || !app.session) return;
  for (const file of list) {
    const problem = uploadProblem(file, limits());
    if (problem) {
      showConvNote(el('span', '', new Line([{ user: file.name }, `: ${problem}`])));
      continue;
    }
    sendOneFile(c, file);
  }
}

let uploadIds = 0;

async function sendOneFile(c, file) {
  const u = { id: ++uploadIds, name: file.name || 'file', size: file.size, sent: 0,
    convId: c.convId, error: '', ctl: new AbortController() };
  app.uploads.push(u);
  renderUploads();
  try {
    const ref = await app.session.upload(file, { name: u.name, ...await imageSize(file),
      signal: u.ctl.signal, onProgress: (sent) => {
        u.sent = sent;
        uploadItem(u);
      } });
    const first = c.type === ConvType.P2P && c.lastSeq === 0n; // it creates the conversation
    const e = app.session.sendFile(first ? { toUserId: c.peerUserId } : { convId: c.convId },
      ref);
    e.viewConvId = c.convId;
    app.uploads = app.uploads.filter((x) => x !== u);
    stickToBottom = true;
  } catch (err) {
    if (err.name === 'AbortError') app.uploads = app.uploads.filter((x) => x !== u);
    else u.error = fileErrorText('send', err, limits());
  }
  renderUploads();
  scheduleRender();
}

// imageSize is an image's {width, height} for its FileRef, so that a
// reader's thumbnail has its shape before it loads; {} for other files.
async function imageSize(file) {
  if (!/^image\//.test(file.type) || typeof createImageBitmap !== 'function') return {};
  try {
    const bmp = await createImageBitmap(file);
    const size = { width: bmp.width, height: bmp.height };
    bmp.close();
    return size;
  } catch {
    return {}; // not an image the browser reads: sent without a size
  }
}

// renderUploads lists the open conversation's uploads: name, progress and
// Cancel, or the error and Dismiss. Each keeps its element, updated in
// place as chunks go (uploadItem), so that Cancel stays under the pointer.
function renderUploads() {
  const items = app.uploads.filter((u) => u.convId === app.openId).map(uploadItem);
  const list = $('uploads');
  // Put back only when changed: a node taken out and put back under the
  // pointer loses the click being made on it.
  if (items.length !== list.children.length || items.some((li, i) => list.children[i] !== li)) {
    list.replaceChildren(...items);
  }
}

function uploadItem(u) {
  if (!u.li) {
    u.li = el('li', 'upload');
    u.bar = document.createElement('progress');
    u.bar.max = u.size;
    u.bar.setAttribute('aria-label', `Uploading ${safeText(u.name)}`);
    u.state = el('span', 'upload-state');
    u.btn = el('button', 'link');
    u.btn.type = 'button';
    u.btn.addEventListener('click', () => {
      u.ctl.abort();
      app.uploads = app.uploads.filter((x) => x !== u);
      renderUploads();
    });
    u.li.append(userEl('span', 'file-name', u.name), u.bar, u.state, u.btn);
  }
  u.li.classList.toggle('failed', !!u.error);
  u.bar.hidden = !!u.error;
  u.bar.value = u.sent;
  const pct = Math.floor((100 * u.sent) / Math.max(u.size, 1));
  u.state.textContent = u.error || `${pct}% of ${sizeText(u.size)}`;
  u.btn.textContent = u.error ? 'Dismiss' : 'Cancel';
  u.btn.setAttribute('aria-label', `${u.btn.textContent} ${safeText(u.name)}`);
  return u.li;
}

// showLengthNote shows under the composer how far text is over the
// server's limit, or nothing; it reports whether text is over.
function showLengthNote(text) {
  const note = lengthNote(text, limits());
  $('length-note').textContent = note;
  $('length-note').hidden = !note;
  $('text').setAttribute('aria-invalid', String(!!note));
  return note !== '';
}

// startEdit puts the text of m, the user's own message in c, in the
// composer to be edited; Save sends the EDIT, Cancel or Escape drops it.
// A draft in the composer is kept aside and comes back after.
function startEdit(c, m) {
  setReplyTo(null);
  const draft = app.editing ? app.editing.draft : $('text').value;
  app.editing = { convId: c.convId, seq: m.seq, draft };
  $('text').value = bodyText(m);
  showLengthNote($('text').value);
  renderEditBar();
  $('text').focus();
}

function stopEdit() {
  if (!app.editing) return;
  $('text').value = app.editing.draft;
  app.editing = null;
  showLengthNote($('text').value);
  renderEditBar();
}

function renderEditBar() {
  const e = app.editing;
  const on = !!e && e.convId === app.openId;
  $('edit-bar').hidden = !on;
  $('send').textContent = on ? 'Save' : 'Send';
  $('edit-text').textContent = on ? `Editing your message #${e.seq}` : '';
}

// saveEdit sends the edit; the EDIT event that comes back through the
// stream changes the bubble. A refusal (the edit window has passed) is
// shown, and the text stays in the box.
async function saveEdit(text) {
  const e = app.editing;
  if (!text.trim()) return;
  try {
    await app.session.edit(e.convId, e.seq, text);
    if (app.editing === e) stopEdit();
  } catch (err) {
    showConvNote(changeErrorText('edit', err));
  }
}

// recallMessage recalls the user's message m in c after a confirm; the
// RECALL event that comes back erases it, here and on every device.
async function recallMessage(c, m) {
  if (!confirm('Recall this message? It is erased for everyone in the chat.')) return;
  try {
    await app.session.recall(c.convId, m.seq);
  } catch (err) {
    showConvNote(changeErrorText('recall', err));
  }
}

let noteTimer = 0;

// showConvNote shows content (text, or an element) above the messages, a
// refusal most often, until the user dismisses it or NOTE_MS pass: a later
// action does not wipe it before it is read, a newer note replaces it.
// Empty content takes the note away.
function showConvNote(content) {
  clearTimeout(noteTimer);
  if (typeof content === 'string') $('conv-error').textContent = content;
  else $('conv-error').replaceChildren(content);
  $('conv-note').hidden = !content;
  if (content) noteTimer = setTimeout(() => showConvNote(''), NOTE_MS);
}

// setReplyTo makes the composer reply to message m of the open
// conversation, or to none (null), and shows what it quotes above it.
function setReplyTo(m) {
  app.replyTo = m ? { convId: m.convId, seq: m.seq } : null;
  renderReplyBar();
  if (m) $('text').focus();
}

function renderReplyBar() {
  const r = app.replyTo;
  const c = r && app.convs.get(r.convId);
  $('reply-bar').hidden = !c || r.convId !== app.openId;
  $('reply-text').replaceChildren(...(c
    ? [el('span', '', quoteText(r.seq, c.messages.get(String(r.seq)), nameOf_))] : []));
}

// ---- opening a conversation and paging history ----

function closeConv() {
  app.openId = '';
  sessionStorage.removeItem('resonance.open');
  $('chat-view').classList.remove('open');
  renderAll();
}

// clearOpen clears the open chat's history for the user, and with hide
// deletes the chat from the list, after the user confirms. This tab shows
// it at once; the user's other tabs and devices learn it from a NOTIFY
// cleared, or from SYNC_CONVS when they were offline.
async function clearOpen(hide) {
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

async function openConv(convId) {
  const c = app.convs.get(convId) || ensureConv(convId);
  if (app.editing && app.editing.convId !== convId) stopEdit();
  app.openId = convId;
  sessionStorage.setItem('resonance.open', convId);
  $('chat-view').classList.add('open');
  $('members').hidden = true;
  $('members-btn').setAttribute('aria-expanded', 'false');
  stickToBottom = true;
  markReadIfSeen(c);
  renderAll();
  $('text').focus();
  if (!c.historyLoaded) await loadOlder(c);
  markReadIfSeen(c);
  renderAll();
}

async function loadOlder(c) {
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
  if (!stickToBottom) sc.scrollTop = sc.scrollHeight - fromBottom; // keep the view still
}

function oldestSeq(c) {
  let min = 0n;
  for (const m of c.messages.values()) if (min === 0n || m.seq < min) min = m.seq;
  return min;
}

// ---- rendering ----

let renderQueued = false;
let stickToBottom = true;

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderAll();
  });
}

function renderAll() {
  if (!app.me) return;
  renderConvs();
  renderOpen();
  let unread = 0;
  for (const c of app.convs.values()) unread += c.unread;
  document.title = unread > 0 ? `(${unread}) Resonance` : 'Resonance';
}

function renderConvs() {
  const list = [...app.convs.values()].filter((c) => listed(c, app.openId))
    .sort((a, b) => Number(lastTime(b) - lastTime(a)));
  const items = list.map((c) => {
    const li = document.createElement('li');
    const btn = el('button', 'conv-item');
    btn.type = 'button';
    btn.dataset.conv = c.convId;
    if (c.convId === app.openId) btn.setAttribute('aria-current', 'true');
    const name = el('span', 'conv-name');
    if (c.type === ConvType.P2P && app.presenceSupported) {
      const p = peerPresence(app.connState, app.presence, c.peerUserId);
      const state = { online: ' on', unknown: ' unknown' }[p] || '';
      const dot = el('span', `presence${state}`);
      dot.setAttribute('aria-hidden', 'true');
      name.append(dot);
    }
    name.append(userEl('bdi', '', convTitle(c)));
    btn.append(name);
    if (c.unread > 0) {
      const badge = el('span', 'badge', String(c.unread));
      badge.append(el('span', 'sr', ' unread'));
      btn.append(badge);
    }
    if (unreadMention(c)) {
      const at = el('span', 'badge mention', '@');
      at.append(el('span', 'sr', ' you were mentioned'));
      btn.append(at);
    }
    btn.append(el('span', 'conv-last', c.lastMessage ? preview(c, c.lastMessage) : ''));
    btn.addEventListener('click', () => openConv(c.convId));
    li.append(btn);
    return li;
  });
  $('convs').replaceChildren(...items);
}

function renderOpen() {
  const c = app.convs.get(app.openId);
  $('empty').hidden = !!c;
  $('conv').hidden = !c;
  if (!c) return;
  setUserText($('conv-title'), convTitle(c));
  $('conv-sub').textContent = subtitle(c);
  $('members-btn').hidden = c.type !== ConvType.GROUP;
  $('older').hidden = !c.hasOlder || !c.historyLoaded;
  renderMessages(c);
  renderReplyBar();
  renderEditBar();
  renderTyping(c);
  renderUploads();
  if (!$('members').hidden) renderMembers(c);
}

function subtitle(c) {
  if (c.type === ConvType.GROUP) {
    if (!c.memberCount) return 'Group';
    return c.memberCount === 1 ? '1 member' : `${c.memberCount} members`;
  }
  if (!app.presenceSupported || !c.peerUserId) return '';
  const p = peerPresence(app.connState, app.presence, c.peerUserId);
  if (p !== 'unknown') return p;
  return app.connState === State.ONLINE || app.connState === State.RESUMING ? ''
    : 'presence unknown while you are offline';
}

function renderMessages(c) {
  const sc = $('scroller');
  const atBottom = stickToBottom || sc.scrollHeight - sc.scrollTop - sc.clientHeight < 30;
  const msgs = [...c.messages.values()].filter((m) => !isChange(m))
    .sort((a, b) => (a.seq < b.seq ? -1 : 1));
  const now = serverNow();
  const items = msgs.map((m) => ({
    key: `${c.convId}#${m.seq}`,
    version: [m.recalled, m.editedMs, m.seq <= c.peerReadSeq, nameOf_(m.senderId),
      Object.values(offered(m, now)).join(),
      m.replyToSeq ? quoteOf(c, m.replyToSeq) : '',
      m.contentType === ContentType.GROUP_EVENT ? '' : reactionsKey(m, app.me.userId)].join('|'),
    build: () => renderMessage(c, m),
  }));
  for (const e of app.session.pending()) {
    if ((e.viewConvId || e.convId) !== c.convId) continue;
    items.push({ key: e.clientMsgId, version: e.state, build: () => renderPending(e) });
  }
  reconcile($('messages'), items);
  files.sweep();
  scheduleWindowEnd(msgs, now);
  if (atBottom) sc.scrollTop = sc.scrollHeight;
  stickToBottom = false;
}

function renderMessage(c, m) {
  const li = el('li', 'msg');
  li.dataset.seq = String(m.seq);
  if (m.contentType === ContentType.GROUP_EVENT) {
    li.classList.add('event');
    li.append(el('span', '', groupEventText(m, app.me.userId, nameOf_)));
    return li;
  }
  const mine = m.senderId === app.me.userId;
  if (mine) li.classList.add('mine');
  li.dataset.state = 'sent';
  if (!mine && c.type === ConvType.GROUP) li.append(userEl('div', 'who', nameOf_(m.senderId)));
  if (m.replyToSeq > 0n) {
    const q = el('div', 'quote', quoteOf(c, m.replyToSeq));
    q.prepend(el('span', 'sr', 'In reply to '));
    li.append(q);
  }
  if (mentionsUser(m, app.me.userId)) {
    li.classList.add('mentioned');
    li.append(el('span', 'sr', 'Mentions you. '));
  }
  const ref = fileRefOfMessage(m);
  li.append(ref ? files.render(ref) : userEl('div', 'body', bodyText(m), { multiline: true }));
  let meta = timeText(m.sendTimeMs);
  if (m.editedMs > 0n) meta += ' · edited';
  if (mine) meta += c.type === ConvType.P2P && m.seq <= c.peerReadSeq ? ' · seen' : ' · sent';
  const metaEl = el('div', 'meta', meta);
  if (!m.recalled) {
    const reply = el('button', 'link reply', 'Reply');
    reply.type = 'button';
    reply.setAttribute('aria-label', `Reply to message ${m.seq}`);
    reply.addEventListener('click', () => setReplyTo(m));
    const react = el('button', 'link react', 'React');
    react.type = 'button';
    react.setAttribute('aria-label', `React to message ${m.seq}`);
    react.setAttribute('aria-expanded', 'false');
    // first: the meta's text ends with the delivery state
    metaEl.prepend(reply, ' ', react, ' ');
    if (mine && (m.contentType === ContentType.TEXT || ref)) metaEl.prepend(...ownActions(c, m));
    const picker = renderPicker(c, m);
    react.addEventListener('click', () => {
      picker.hidden = !picker.hidden;
      react.setAttribute('aria-expanded', String(!picker.hidden));
    });
    li.append(renderChips(c, m));
    li.append(metaEl, picker);
    return li;
  }
  li.append(metaEl);
  return li;
}

// ownActions are the Edit and Recall buttons of the user's own message m,
// each while its window is open by the limits the server reported at
// login (offered); the server judges all the same, and the app shows its
// refusal.
function ownActions(c, m) {
  const actions = [];
  const can = offered(m, serverNow());
  if (can.edit) {
    const edit = el('button', 'link own edit', 'Edit');
    edit.type = 'button';
    edit.setAttribute('aria-label', `Edit message ${m.seq}`);
    edit.addEventListener('click', () => startEdit(c, m));
    actions.push(edit, ' ');
  }
  if (can.recall) {
    const recall = el('button', 'link own recall', 'Recall');
    recall.type = 'button';
    recall.setAttribute('aria-label', `Recall message ${m.seq}`);
    recall.addEventListener('click', () => recallMessage(c, m));
    actions.push(recall, ' ');
  }
  return actions;
}

// serverNow is the server's clock as this tab reckons it, in Unix ms.
function serverNow() {
  return Date.now() + app.clockSkewMs;
}

// limits are the server's as the session's login reported them (the
// defaults from a server that reports none), RECALL_MS standing in for
// its recall window when set.
function limits() {
  const l = app.session?.limits || DEFAULT_LIMITS;
  return RECALL_MS ? { ...l, recallWindowMs: RECALL_MS } : l;
}

// offered says which of Edit and Recall m offers at now (server Unix ms).
function offered(m, now) {
  return offeredChanges(m, app.me?.userId, now, limits());
}

let windowTimer = 0;

// scheduleWindowEnd renders again when the first Edit or Recall among msgs
// shown at now is due to go, so that it goes without waiting for other
// news. A window longer than setTimeout's range waits for a later render.
function scheduleWindowEnd(msgs, now) {
  clearTimeout(windowTimer);
  const l = limits();
  let next = Infinity;
  for (const m of msgs) {
    const can = offered(m, now);
    const sent = Number(m.sendTimeMs);
    if (can.recall) next = Math.min(next, sent + l.recallWindowMs);
    if (can.edit) next = Math.min(next, sent + l.editWindowMs);
  }
  if (next === Infinity || next - now > 2 ** 31 - 1000) return;
  windowTimer = setTimeout(scheduleRender, next - now + 50);
}

// renderChips shows a message's reactions, one chip per emoji with its
// count, the user's own marked; a click toggles the user's reaction.
function renderChips(c, m) {
  const row = el('div', 'reactions');
  for (const r of reactionList(m, app.me.userId)) {
    const chip = el('button', r.mine ? 'chip mine' : 'chip');
    chip.append(el('span', 'emoji', r.emoji), ` ${r.count}`);
    chip.type = 'button';
    chip.setAttribute('aria-pressed', String(r.mine));
    chip.setAttribute('aria-label', `${r.emoji} ${r.count}${r.mine ? ', yours' : ''}`);
    chip.addEventListener('click', () => react(c, m, r.emoji, r.mine));
    row.append(chip);
  }
  return row;
}

// renderPicker is the hidden row of QUICK_REACTIONS the React button opens.
function renderPicker(c, m) {
  const picker = el('div', 'picker');
  picker.hidden = true;
  for (const emoji of QUICK_REACTIONS) {
    const b = el('button', 'pick', emoji);
    b.type = 'button';
    b.setAttribute('aria-label', `React ${emoji}`);
    b.addEventListener('click', () => {
      picker.hidden = true;
      const had = reactionList(m, app.me.userId).find((r) => r.emoji === emoji);
      react(c, m, emoji, !!had?.mine);
    });
    picker.append(b);
  }
  return picker;
}

// react adds or takes back the user's emoji on m; the REACTION event that
// comes back through the stream updates the chips.
async function react(c, m, emoji, remove) {
  try {
    await app.session.react(c.convId, m.seq, emoji, { remove });
  } catch (err) {
    showSideError(err);
  }
}

// quoteOf is the quote line of a reply to seq in c.
function quoteOf(c, seq) {
  return quoteText(seq, c.messages.get(String(seq)), nameOf_);
}

function renderPending(e) {
  const li = el('li', 'msg mine');
  li.dataset.state = e.state;
  li.dataset.clientMsgId = e.clientMsgId;
  li.append(userEl('div', 'body', e.file ? fileLabel(e.file) : e.text, { multiline: true }));
  const meta = el('div', 'meta', e.state === 'failed' ? `not sent: ${errText(e.error)} ` : 'sending…');
  if (e.state === 'failed') {
    const retry = el('button', 'link', 'Retry');
    retry.type = 'button';
    retry.addEventListener('click', () => app.session.retry(e.clientMsgId));
    const drop = el('button', 'link', 'Discard');
    drop.type = 'button';
    drop.addEventListener('click', () => app.session.discard(e.clientMsgId));
    meta.append(retry, drop);
  }
  li.append(meta);
  return li;
}

function renderTyping(c) {
  const now = Date.now();
  const names = [...c.typing].filter(([, until]) => until > now).map(([id]) => nameOf_(id));
  const who = joinLines(names, ', ');
  const text = names.length === 1 ? line`${who} is typing…` : line`${who} are typing…`;
  $('typing').replaceChildren(...(names.length === 0 ? [] : [el('span', '', text)]));
}

function renderMembers(c) {
  const g = c.group;
  const me = g && g.members.find((mem) => mem.userId === app.me.userId);
  const canRemove = me && me.role !== GroupRole.MEMBER;
  const items = g ? g.members.map((mem) => {
    const li = el('li', '', line`${nameOf_(mem.userId)}`);
    li.append(el('span', 'role', mem.role === GroupRole.MEMBER ? ''
      : nameOf(GroupRole, mem.role).toLowerCase()));
    if (canRemove && mem.userId !== app.me.userId && mem.role !== GroupRole.OWNER) {
      const rm = el('button', 'link', 'Remove');
      rm.type = 'button';
      rm.setAttribute('aria-label', `Remove ${nameOf_(mem.userId)}`);
      rm.addEventListener('click', () => removeMember(c, mem.userId));
      li.append(rm);
    }
    return li;
  }) : [el('li', '', 'Loading…')];
  $('member-list').replaceChildren(...items);
}

async function removeMember(c, userId) {
  $('members-error').textContent = '';
  try {
    await app.session.manageGroup({ convId: c.convId, action: GroupAction.REMOVE,
      userIds: [userId] });
    refreshGroup(c);
  } catch (err) {
    $('members-error').textContent = errText(err);
  }
}

function preview(c, m) {
  if (m.contentType === ContentType.GROUP_EVENT) return groupEventText(m, app.me.userId, nameOf_);
  if (isReaction(m)) {
    return reactionText(m, m.senderId === app.me.userId ? 'You' : nameOf_(m.senderId));
  }
  // One line: a body's line breaks read as spaces, not as stand-ins.
  const body = bodyText(m).replace(/\r?\n/g, ' ');
  if (m.senderId === app.me.userId) return line`You: ${body}`;
  if (c.type === ConvType.GROUP) return line`${nameOf_(m.senderId)}: ${body}`;
  return line`${body}`;
}

function showSideError(err) {
  $('side-error').textContent = err ? errText(err) : '';
}

// ---- user actions ----

function wireUi() {
  $('conv-error-dismiss').addEventListener('click', () => showConvNote(''));
  // The server's username rule, said in words: a pattern attribute gave
  // only the browser's "Please match the requested format.".
  $('login-user').addEventListener('input', () => {
    $('login-user').setCustomValidity(usernameProblem($('login-user').value.trim()));
  });
  $('login-user').addEventListener('invalid', () => {
    $('login-error').textContent = $('login-user').validationMessage;
  });
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const action = ev.submitter && ev.submitter.value;
    const username = $('login-user').value.trim();
    const password = $('login-pass').value;
    $('login-error').textContent = passwordLengthNote(password);
    if ($('login-error').textContent) return;
    app.storage?.clear();
    if (action === 'register') {
      try {
        await register(app.wsUrl, username, password);
      } catch (err) {
        $('login-error').textContent = err.code === ErrorCode.USERNAME_TAKEN
          ? 'That username is taken.' : errText(err);
        return;
      }
    }
    if (await startSession({ username, password })) $('login-pass').value = '';
  });

  $('signout').addEventListener('click', signOut);
  wireAccountDialogs({ session: () => app.session, username: () => app.me?.username || '',
    signOut });

  wireDeleteAccount();
  $('reconnect').addEventListener('click', () => app.session?.reconnectNow());
  $('back').addEventListener('click', closeConv);
  $('clear-btn').addEventListener('click', () => clearOpen(false));
  $('delete-btn').addEventListener('click', () => clearOpen(true));
  window.addEventListener('online', () => app.session?.reconnectNow());
  document.addEventListener('visibilitychange', () => {
    if (app.openId) markReadIfSeen(app.convs.get(app.openId));
    scheduleRender();
  });

  let searchTimer = 0;
  $('newchat-user').addEventListener('input', () => {
    clearTimeout(searchTimer);
    const q = $('newchat-user').value.trim();
    if (q.length < 3) return; // the server's shortest prefix
    // Debounced: SEARCH_USERS is rate-limited per user.
    searchTimer = setTimeout(async () => {
      try {
        const r = await app.session.searchUsers(q, 8);
        $('user-suggestions').replaceChildren(...r.users
          .filter((u) => u.userId !== app.me.userId)
          .map((u) => Object.assign(document.createElement('option'), { value: u.username })));
      } catch { /* suggestions are optional */ }
    }, 300);
  });

  $('newchat-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showSideError(null);
    const username = $('newchat-user').value.trim();
    try {
      const u = await app.session.getUser({ username });
      if (u.userId === app.me.userId) throw new Error('That is you.');
      app.users.set(String(u.userId), u.username);
      const [lo, hi] = u.userId < app.me.userId ? [u.userId, app.me.userId]
        : [app.me.userId, u.userId];
      $('newchat-user').value = '';
      await openConv(`p2p:${lo}:${hi}`);
      watchPeers();
    } catch (err) {
      showSideError(err.code === ErrorCode.NOT_FOUND ? new Error(`No user “${username}”.`) : err);
    }
  });

  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('text').value;
    // Refused whole and kept in the box: the server would refuse it
    // TOO_LARGE, and cutting it would send what the user did not write.
    if (showLengthNote(text)) return;
    if (app.editing) {
      saveEdit(text);
      return;
    }
    $('text').value = '';
    sendText(text);
  });
  $('text').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      $('composer').requestSubmit();
    } else if (ev.key === 'Escape' && app.editing) {
      stopEdit();
    }
  });
  $('text').addEventListener('input', () => {
    showLengthNote($('text').value);
    if (!app.editing) sendTyping($('text').value !== '');
  });
  wireAttach();
  $('edit-cancel').addEventListener('click', stopEdit);
  $('reply-cancel').addEventListener('click', () => setReplyTo(null));

  $('scroller').addEventListener('scroll', () => {
    const c = app.convs.get(app.openId);
    if (c && $('scroller').scrollTop < 40 && c.historyLoaded) loadOlder(c);
  });
  $('older').addEventListener('click', () => {
    const c = app.convs.get(app.openId);
    if (c) loadOlder(c);
  });

  $('newgroup').addEventListener('click', () => {
    $('group-error').textContent = '';
    $('group-dialog').showModal();
  });
  $('group-cancel').addEventListener('click', () => $('group-dialog').close());
  $('group-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('group-error').textContent = '';
    try {
      const ids = await userIds($('group-members').value);
      const ack = await app.session.createGroup($('group-name').value.trim(), ids);
      const c = ensureConv(ack.convId);
      c.name = $('group-name').value.trim();
      $('group-dialog').close();
      $('group-form').reset();
      await openConv(ack.convId);
    } catch (err) {
      $('group-error').textContent = errText(err);
    }
  });

  $('members-btn').addEventListener('click', () => {
    const open = $('members').hidden;
    $('members').hidden = !open;
    $('members-btn').setAttribute('aria-expanded', String(open));
    const c = app.convs.get(app.openId);
    if (open && c) refreshGroup(c);
    renderAll();
  });
  $('addmember-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('members-error').textContent = '';
    try {
      const ids = await userIds($('addmember-user').value);
      await app.session.manageGroup({ convId: app.openId, action: GroupAction.ADD, userIds: ids });
      $('addmember-user').value = '';
      refreshGroup(app.convs.get(app.openId));
    } catch (err) {
      $('members-error').textContent = errText(err);
    }
  });
  $('leave').addEventListener('click', async () => {
    try {
      await app.session.manageGroup({ convId: app.openId, action: GroupAction.LEAVE });
      $('members').hidden = true;
    } catch (err) {
      $('members-error').textContent = errText(err);
    }
  });
}

// wireAttach runs the Attach button, and drops and pastes of files into
// the conversation, and the image viewer's Close.
function wireAttach() {
  $('attach').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', () => {
    attachFiles([...$('file-input').files]);
    $('file-input').value = ''; // the same file may be chosen again
  });
  $('text').addEventListener('paste', (ev) => {
    const pasted = [...(ev.clipboardData?.files || [])];
    if (pasted.length === 0) return; // text pastes as text
    ev.preventDefault();
    attachFiles(pasted);
  });
  const hasFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes('Files');
  $('conv').addEventListener('dragover', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    $('conv').classList.add('dropping');
  });
  $('conv').addEventListener('dragleave', (ev) => {
    if (ev.target === $('conv') || !$('conv').contains(ev.relatedTarget)) {
      $('conv').classList.remove('dropping');
    }
  });
  $('conv').addEventListener('drop', (ev) => {
    $('conv').classList.remove('dropping');
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    attachFiles([...ev.dataTransfer.files]);
  });
  $('viewer-close').addEventListener('click', () => $('image-dialog').close());
}

// signOut signs this device out (LOGOUT) and returns to the sign-in view.
async function signOut() {
  const s = app.session;
  app.ending = true;
  try {
    await s?.logout();
  } catch { /* signed out locally anyway */ }
  resetState();
  showLogin('');
}

// userIds resolves comma-separated usernames to user ids.
async function userIds(list) {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  const ids = [];
  for (const username of names) {
    try {
      const u = await app.session.getUser({ username });
      app.users.set(String(u.userId), u.username);
      ids.push(u.userId);
    } catch (err) {
      if (err.code === ErrorCode.NOT_FOUND) throw new Error(`No user “${username}”.`);
      throw err;
    }
  }
  return ids;
}

main().catch((err) => {
  console.error(err);
  showLogin(errText(err));
});

// wireDeleteAccount runs the "Delete account" dialog: the password again
// and a confirmation, then DELETE_ACCOUNT; once deleted, the session has
// forgotten its tokens and the app returns to the sign-in view.
function wireDeleteAccount() {
  const dialog = $('delete-dialog');
  $('delete-account').addEventListener('click', () => {
    $('delete-pass').value = '';
    $('delete-confirm').checked = false;
    $('delete-error').textContent = '';
    dialog.showModal();
  });
  $('delete-cancel').addEventListener('click', () => dialog.close());
  $('delete-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const s = app.session;
    if (!s) return;
    $('delete-error').textContent = passwordLengthNote($('delete-pass').value);
    if ($('delete-error').textContent) return;
    $('delete-submit').disabled = true;
    try {
      // The session's end is this action's, not news (onEnded); app.me
      // stays, so messages that come meanwhile are still counted.
      app.ending = true;
      await s.deleteAccount($('delete-pass').value);
    } catch (err) {
      app.ending = false;
      $('delete-error').textContent = deleteAccountErrorText(err);
      return;
    } finally {
      $('delete-pass').value = '';
      $('delete-submit').disabled = false;
    }
    dialog.close();
    resetState();
    showLogin('Your account was deleted.');
  });
}
