// Replies and mentions in the web app, without DOM: what a sent message
// mentions, and how a quoted message reads above a reply. User ids are
// BigInt.

import { ContentType, GroupRole, MAX_MENTIONS, parseMentions } from '../sdk/index.js';
import { line } from './text.js';

const utf8 = new TextDecoder();

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
  else body = `(${q.content.length} bytes)`;
  if (body.length > QUOTE_CHARS) body = `${body.slice(0, QUOTE_CHARS)}…`;
  return line`#${seq} ${who(q.senderId)}: “${body}”`;
}
