// Rendering the web app: the conversation list, the open conversation's
// messages with their actions, reactions, typing and members. Render
// functions rebuild the parts that changed. Split from app.js.

import {
  ContentType, ConvType, DEFAULT_LIMITS, GroupAction, GroupRole, State, mentionsUser, nameOf,
  QUICK_REACTIONS, unreadMention,
} from '../sdk/index.js';
import { offeredChanges, quoteText } from './compose.js';
import {
  bodyText, el, errText, groupEventText, reconcile, setUserText, timeText, userEl,
} from './view.js';
import { joinLines, line } from './text.js';
import { lastTime, peerPresence } from './presence.js';
import { listed } from './clearing.js';
import { fileLabel, fileRefOfMessage } from './attach.js';
import { isReaction, reactionList, reactionText, reactionsKey } from './reacting.js';
import {
  canPin, isPin, isPinned, pinExcerpt, pinText, pinnable,
} from './pinning.js';
import { $, app, files, params } from './state.js';
import { isChange, refreshGroup, nameOf_, convTitle, openConv } from './app.js';
import {
  renderUploads, startEdit, renderEditBar, recallMessage, setReplyTo, renderReplyBar,
} from './sending.js';
import { userIds } from './wiring.js';
import { renderSearch } from './searchview.js';

// RECALL_MS, when set (?recallWindowMs=, which tests set short), stands in
// for the recall window the server reports.
const RECALL_MS = Number(params.get('recallWindowMs')) || 0;

let renderQueued = false;

export function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderAll();
  });
}

export function renderAll() {
  if (!app.me) return;
  renderConvs();
  renderOpen();
  renderSearch();
  let unread = 0;
  for (const c of app.convs.values()) unread += c.unread;
  document.title = unread > 0 ? `(${unread}) Resonance` : 'Resonance';
}

export function renderConvs() {
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
  renderPinned(c);
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
  const atBottom = app.stickToBottom || sc.scrollHeight - sc.scrollTop - sc.clientHeight < 30;
  const msgs = [...c.messages.values()].filter((m) => !isChange(m))
    .sort((a, b) => (a.seq < b.seq ? -1 : 1));
  const now = serverNow();
  const items = msgs.map((m) => ({
    key: `${c.convId}#${m.seq}`,
    version: [m.recalled, m.editedMs, m.seq <= c.peerReadSeq, nameOf_(m.senderId),
      Object.values(offered(m, now)).join(),
      m.replyToSeq ? quoteOf(c, m.replyToSeq) : '',
      m.contentType === ContentType.GROUP_EVENT ? '' : reactionsKey(m, app.me.userId),
      isPin(m) ? String(pinText(c, m, '')) : '',
      pinnable(m) && canPin(c, app.me.userId) ? `pin:${isPinned(c, m.seq)}` : ''].join('|'),
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
  app.stickToBottom = false;
}

function renderMessage(c, m) {
  const li = el('li', 'msg');
  li.dataset.seq = String(m.seq);
  if (m.contentType === ContentType.GROUP_EVENT) {
    li.classList.add('event');
    li.append(el('span', '', groupEventText(m, app.me.userId, nameOf_)));
    return li;
  }
  if (isPin(m)) {
    li.classList.add('event');
    li.append(el('span', '', pinText(c, m, whoText(m))));
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
    if (pinnable(m) && canPin(c, app.me.userId)) metaEl.prepend(pinButton(c, m), ' ');
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

// whoText names the sender of m for an event line: "You" for the user.
function whoText(m) {
  return m.senderId === app.me.userId ? 'You' : nameOf_(m.senderId);
}

// pinButton pins m, or unpins it when pinned; the PIN event that comes
// back through the stream updates the bar and the button.
function pinButton(c, m) {
  const pinned = isPinned(c, m.seq);
  const b = el('button', 'link pin', pinned ? 'Unpin' : 'Pin');
  b.type = 'button';
  b.setAttribute('aria-label', `${pinned ? 'Unpin' : 'Pin'} message ${m.seq}`);
  b.addEventListener('click', () => pin(c, m.seq, pinned));
  return b;
}

async function pin(c, seq, unpin) {
  try {
    await app.session.pin(c.convId, seq, { unpin });
  } catch (err) {
    showSideError(err);
  }
}

// renderPinned shows the bar of c's pinned messages above the history: the
// most recently pinned one, and a button that opens the list of all, each
// of which scrolls to its message when loaded and may be unpinned.
function renderPinned(c) {
  const bar = $('pinned');
  const pins = c.pinnedSeqs || [];
  bar.hidden = pins.length === 0;
  if (pins.length === 0) {
    bar.replaceChildren();
    return;
  }
  const open = bar.dataset.open === c.convId;
  const toggle = el('button', 'link pinned-toggle',
    pins.length === 1 ? '📌 1 pinned' : `📌 ${pins.length} pinned`);
  toggle.type = 'button';
  toggle.setAttribute('aria-expanded', String(open));
  toggle.addEventListener('click', () => {
    bar.dataset.open = open ? '' : c.convId;
    renderPinned(c);
  });
  const first = el('span', 'pinned-first', pinExcerpt(c, pins[0]));
  const parts = [toggle, ' ', first];
  if (open) {
    const list = el('ol', 'pinned-list');
    list.setAttribute('aria-label', 'Pinned messages');
    for (const seq of pins) list.append(pinnedItem(c, seq));
    parts.push(list);
  }
  bar.replaceChildren(...parts);
}

function pinnedItem(c, seq) {
  const li = el('li', '');
  const go = el('button', 'link', pinExcerpt(c, seq));
  go.type = 'button';
  go.addEventListener('click', () => {
    $('messages').querySelector(`li[data-seq="${seq}"]`)?.scrollIntoView({ block: 'center' });
  });
  li.append(go);
  if (canPin(c, app.me.userId)) {
    const un = el('button', 'link unpin', 'Unpin');
    un.type = 'button';
    un.setAttribute('aria-label', `Unpin message ${seq}`);
    un.addEventListener('click', () => pin(c, seq, true));
    li.append(' ', un);
  }
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
export function limits() {
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
  if (isPin(m)) return pinText(c, m, whoText(m));
  // One line: a body's line breaks read as spaces, not as stand-ins.
  const body = bodyText(m).replace(/\r?\n/g, ' ');
  if (m.senderId === app.me.userId) return line`You: ${body}`;
  if (c.type === ConvType.GROUP) return line`${nameOf_(m.senderId)}: ${body}`;
  return line`${body}`;
}

export function showSideError(err) {
  $('side-error').textContent = err ? errText(err) : '';
}
