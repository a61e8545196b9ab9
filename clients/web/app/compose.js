// Replies and mentions in the web app, without DOM: what a sent message
// mentions, and how a quoted message reads above a reply. User ids are
// BigInt.

import {
  ContentType, DEFAULT_LIMITS, GroupRole, MAX_MENTIONS, parseMentions, windowOpen,
} from '../sdk/index.js';
import { line, utf8Length } from './text.js';
import { fileLabel, fileRefOfMessage } from './attach.js';

const utf8 = new TextDecoder();

/**
 * RECALL_WINDOW_MS is how long after sending the server lets a sender
 * recall a message by default (its --recall-window; docs/protocol.md,
 * Recall and edit). The session's limits hold the server's own, from its
 * login; this stands in for a server that reports none.
 */
export const RECALL_WINDOW_MS = DEFAULT_LIMITS.recallWindowMs;

/**
 * offeredChanges says which of Edit and Recall the app offers on message
 * m at nowMs (the server's clock, which stamped m): {edit, recall}. Only
 * on the user's (meId) own messages not recalled, each within its window
 * as limits (the session's) say; a file is recalled, never edited.
 */
export function offeredChanges(m, meId, nowMs, limits = DEFAULT_LIMITS) {
  if (m.senderId !== meId || m.recalled) return { edit: false, recall: false };
  return {
    edit: m.contentType === ContentType.TEXT && windowOpen(m, limits.editWindowMs, nowMs),
    recall: windowOpen(m, limits.recallWindowMs, nowMs),
  };
}

/**
 * recallClosesMs is when message m can no longer be recalled, in the
 * server's Unix ms: its send time (set by the server) plus windowMs.
 */
export function recallClosesMs(m, windowMs = RECALL_WINDOW_MS) {
  return Number(m.sendTimeMs) + windowMs;
}

/** QUOTE_CHARS is how much of a quoted message a reply shows. */
export const QUOTE_CHARS = 60;

/**
 * mentionsFor resolves the @names of text against a group (GroupInfo, or
 * null while unknown) whose members' names who(id) gives: {mentions,
 * mentionAll, allRefused}. Names fold to lower case, as the server folds
 * usernames; @all counts only for the group's owner and admins (allRefused
 * says it was typed by someone else, and is then sent as text).
 */
export function mentionsFor(text, group, meId, who) {
  if (!group || !String(text).includes('@')) {
    return { mentions: [], mentionAll: false, allRefused: false };
  }
  const byName = new Map();
  let mayAll = false;
  for (const mem of group.members) {
    byName.set(String(who(mem.userId)).toLowerCase(), mem.userId);
    if (mem.userId === meId) mayAll = mem.role === GroupRole.OWNER || mem.role === GroupRole.ADMIN;
  }
  const { ids, all } = parseMentions(String(text).toLowerCase(), byName);
  return {
    mentions: ids.filter((id) => id !== meId).slice(0, MAX_MENTIONS),
    mentionAll: all && mayAll,
    allRefused: all && !mayAll,
  };
}

/**
 * quoteText is the line above a reply (a Line): `#3 alice: “excerpt”`, or
 * `#3` alone when the quoted message q is not loaded; a recalled one reads
 * as such.
 */
export function quoteText(seq, q, who) {
  if (!q) return line`#${seq}`;
  let body;
  if (q.recalled) body = '(message recalled)';
  else if (q.contentType === ContentType.TEXT) body = utf8.decode(q.content);
  else if (fileRefOfMessage(q)) body = fileLabel(fileRefOfMessage(q));
  else body = `(${q.content.length} bytes)`;
  if (body.length > QUOTE_CHARS) body = `${body.slice(0, QUOTE_CHARS)}…`;
  return line`#${seq} ${who(q.senderId)}: “${body}”`;
}

/**
 * MAX_CONTENT_BYTES is the most content the server takes in one message
 * or edit by default (16 KiB of UTF-8, TOO_LARGE beyond); the session's
 * limits hold the server's own.
 */
export const MAX_CONTENT_BYTES = DEFAULT_LIMITS.maxContentBytes;

/**
 * lengthNote says how far text is over the server's content limit (as
 * limits, the session's, say), counted in UTF-8 bytes as the server
 * counts, or '' when it fits. The composer refuses to send such a text and
 * keeps it, rather than cut it short unseen.
 */
export function lengthNote(text, limits = DEFAULT_LIMITS) {
  const max = limits.maxContentBytes;
  const n = utf8Length(text);
  if (n <= max) return '';
  const over = n - max;
  const fmt = (x) => x.toLocaleString('en-US');
  return `Too long to send: ${fmt(n)} bytes, ${fmt(over)} ${over === 1 ? 'byte' : 'bytes'} ` +
    `over the limit of ${fmt(max)} (UTF-8; an emoji takes 4). Shorten it.`;
}
