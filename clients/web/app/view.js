// Formatting and DOM helpers of the web app that hold no state of their
// own. User text is only ever set with textContent, cleaned and isolated
// (text.js): userEl for a piece of it, a Line's <bdi>s for names in the
// app's sentences.

import { ContentType, ErrorCode, GroupAction, GroupRole, decodeStruct, nameOf, schemas }
  from '../sdk/index.js';
import { Line, joinLines, line, safeText } from './text.js';
import { fileLabel, fileRefOfMessage } from './attach.js';

const utf8 = new TextDecoder();

// reconcile makes list's children the items' nodes in order, building only
// those whose key is new or whose version changed, so that the live region
// announces new messages only, and scroll and selection stay put.
export function reconcile(list, items) {
  const existing = new Map([...list.children].map((n) => [n.dataset.key, n]));
  const keep = new Set(items.map((it) => it.key));
  for (const [key, n] of existing) if (!keep.has(key)) n.remove();
  let prev = null;
  for (const it of items) {
    let node = existing.get(it.key);
    if (!node || node.dataset.version !== it.version) {
      const fresh = it.build();
      fresh.dataset.key = it.key;
      fresh.dataset.version = it.version;
      if (node) node.replaceWith(fresh);
      node = fresh;
    }
    const at = prev ? prev.nextSibling : list.firstChild;
    if (at !== node) list.insertBefore(node, at);
    prev = node;
  }
}

/**
 * bodyText is what a message shows in a line: its text, a file's name (or
 * "Photo"), or what it holds.
 */
export function bodyText(m) {
  if (m.recalled) return '(message recalled)';
  if (m.contentType === ContentType.TEXT) return utf8.decode(m.content);
  const ref = fileRefOfMessage(m);
  if (ref) return fileLabel(ref);
  return `(${m.content.length} bytes of ${nameOf(ContentType, m.contentType).toLowerCase()})`;
}

/** groupEventText describes a GROUP_EVENT message (a Line); who(id) names a user. */
export function groupEventText(m, meId, who) {
  let ev;
  try {
    ev = decodeStruct(schemas.GroupEvent, m.content);
  } catch {
    return line`(group change)`;
  }
  const actor = m.senderId === meId ? line`You` : line`${who(m.senderId)}`;
  const targets = joinLines(ev.targets.map((id) => who(id)), ', ');
  switch (ev.action) {
    case GroupAction.CREATE: return line`${actor} created the group “${ev.name}”`;
    case GroupAction.ADD: return line`${actor} added ${targets}`;
    case GroupAction.REMOVE: return line`${actor} removed ${targets}`;
    case GroupAction.LEAVE: return line`${actor} left`;
    case GroupAction.RENAME: return line`${actor} renamed the group to “${ev.name}”`;
    case GroupAction.SET_ROLE:
      return line`${actor} made ${targets} ${nameOf(GroupRole, ev.role).toLowerCase()}`;
    case GroupAction.DISMISS: return line`${actor} dismissed the group`;
    default: return line`(group change)`;
  }
}

/** isLeave reports whether m is a GROUP_EVENT of its sender leaving the group. */
export function isLeave(m) {
  if (m.contentType !== ContentType.GROUP_EVENT) return false;
  try {
    return decodeStruct(schemas.GroupEvent, m.content).action === GroupAction.LEAVE;
  } catch {
    return false;
  }
}

/** timeText is a message time (Unix ms, BigInt) as hours and minutes. */
export function timeText(ms) {
  return new Date(Number(ms)).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/**
 * el makes an element with a class and text: a string of the app's, or a
 * Line, whose user text goes in <bdi>s, cleaned.
 */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text instanceof Line) e.append(...lineNodes(text));
  else if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * userEl makes an element holding one piece of user text, cleaned
 * (multiline keeps line feeds and tabs, for a message body) and isolated
 * with dir="auto", so that its direction is its own and bidi controls in
 * it cannot reorder what is around it.
 */
export function userEl(tag, cls, text, { multiline = false } = {}) {
  const e = el(tag, cls, safeText(text, { multiline }));
  e.dir = 'auto';
  return e;
}

/** setUserText makes e hold one piece of user text as userEl does. */
export function setUserText(e, text) {
  e.dir = 'auto';
  e.textContent = safeText(text);
}

// lineNodes are the DOM nodes of a Line: text nodes for the app's words, a
// <bdi> for each piece of user text.
function lineNodes(l) {
  return l.segments.map((s) => {
    if (typeof s === 'string') return document.createTextNode(s);
    const b = document.createElement('bdi');
    b.textContent = safeText(s.user);
    return b;
  });
}

/** errText is an error as shown to the user: the server's message when it sent one. */
export function errText(err) {
  if (!err) return '';
  if (err.code) return err.serverMessage || nameOf(ErrorCode, err.code);
  return err.message || String(err);
}

// deleteAccountErrorText is what the delete-account dialog says when the
// deletion failed: a wrong password plainly, and a lost answer as the
// unknown outcome it is.
export function deleteAccountErrorText(err) {
  if (err?.code === ErrorCode.INVALID_CREDENTIALS) return 'Wrong password; nothing was deleted.';
  if (err?.code === ErrorCode.RATE_LIMITED) return 'Too many tries; wait a while and try again.';
  if (err?.name === 'OutcomeUnknownError') {
    return 'The answer was lost: the account may or may not be deleted. Reload to find out.';
  }
  return `Not deleted: ${errText(err)}`;
}

/**
 * changeErrorText is what the chat says when a recall or an edit of the
 * user's message (verb: 'recall' or 'edit') failed: the server's refusal
 * in its words (its window has passed, say), and a lost answer as the
 * unknown outcome it is.
 */
export function changeErrorText(verb, err) {
  const done = verb === 'recall' ? 'recalled' : 'edited';
  if (err?.name === 'OutcomeUnknownError') {
    return `The answer was lost: the message may or may not be ${done}.`;
  }
  if (err?.code === ErrorCode.FORBIDDEN) {
    const rule = verb === 'recall' ? 'within 2 minutes of sending'
      : 'within 24 hours of sending';
    return `Not ${done}: the server refused (${err.serverMessage || 'forbidden'}). ` +
      `Only your own messages can be ${done}, ${rule} by default.`;
  }
  if (err?.code === ErrorCode.TOO_LARGE) return `Not ${done}: the text is too long.`;
  return `Not ${done}: ${errText(err)}`;
}

/** USERNAME_RULE is the server's rule for usernames, as the sign-in form says it. */
export const USERNAME_RULE = 'A username is 3–32 characters: ASCII letters, digits, _ . or -';

/**
 * usernameProblem says what is wrong with name against the server's rule
 * (USERNAME_RULE, then which characters it does not take, or how long the
 * name is), or '' when it fits or is empty (the field is required anyway).
 */
export function usernameProblem(name) {
  if (name === '') return '';
  const bad = [...new Set([...name].filter((ch) => !/^[A-Za-z0-9_.-]$/.test(ch)))];
  if (bad.length > 0) {
    const shown = bad.slice(0, 5).map((ch) => (ch === ' ' ? 'spaces' : `“${safeText(ch)}”`));
    return `${USERNAME_RULE}; not ${shown.join(', ')}.`;
  }
  if (name.length < 3 || name.length > 32) {
    return `${USERNAME_RULE}; this one has ${name.length}.`;
  }
  return '';
}
