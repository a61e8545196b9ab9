// Reactions in the web app, without the DOM: each loaded message keeps its
// reactions as a list (the sum of a history page, then the live REACTION
// events applied), which the chips under the message show.

import { ContentType, applyReaction, reactionEventOf, reactionsOf } from '../sdk/index.js';
import { line } from './text.js';

/** reactionList returns m's reactions, taken from its page the first time. */
export function reactionList(m, meId) {
  if (!m.reactionList) m.reactionList = reactionsOf(m, meId);
  return m.reactionList;
}

/** MAX_PENDING is how many early REACTION events a conversation keeps. */
const MAX_PENDING = 200;

/**
 * applyReactionEvent applies the REACTION message ev to the message it
 * names in messages (seq string -> message), when that one is loaded. When
 * it is not, and pending (target seq string -> events) is given, ev waits
 * there for the page that loads it (settlePendingReactions): that page may
 * have been read before ev was stored. It returns whether a loaded message
 * changed.
 */
export function applyReactionEvent(messages, ev, meId, pending) {
  let body;
  try {
    body = reactionEventOf(ev);
  } catch (err) {
    console.warn('reaction event', err);
    return false;
  }
  if (!body) return false;
  const key = String(body.seq);
  const target = messages.get(key);
  if (!target) {
    if (pending) keepPending(pending, key, ev);
    return false;
  }
  return applyTo(target, ev, body, meId);
}

/**
 * settlePendingReactions applies the events waiting in pending to the
 * messages a page has just loaded, oldest first, and forgets them. It
 * returns whether a message changed.
 */
export function settlePendingReactions(messages, pending, meId) {
  let changed = false;
  for (const [key, events] of pending) {
    const target = messages.get(key);
    if (!target) continue;
    pending.delete(key);
    events.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
    for (const ev of events) {
      const body = reactionEventOf(ev);
      if (applyTo(target, ev, body, meId)) changed = true;
    }
  }
  return changed;
}

function keepPending(pending, key, ev) {
  const events = pending.get(key) || [];
  events.push(ev);
  pending.delete(key); // re-inserted last: the oldest key goes first
  pending.set(key, events);
  if (pending.size > MAX_PENDING) pending.delete(pending.keys().next().value);
}

// applyTo applies ev (body decoded) to target. An event no newer than the
// page target came on (pageLastSeq, the conversation's last seq when the
// page was read, after its reactions were summed) may be in that sum
// already: it is applied only where the list can tell it is not.
function applyTo(target, ev, body, meId) {
  if (target.recalled) return false;
  const list = reactionList(target, meId);
  const onPage = target.pageLastSeq !== undefined && ev.seq !== undefined &&
    ev.seq <= target.pageLastSeq;
  if (onPage && !uncounted(list, body, ev.senderId)) return false;
  target.reactionList = applyReaction(list, body, ev.senderId, meId);
  return true;
}

// uncounted reports whether list surely does not hold body's change yet:
// an addition to an emoji it lacks or whose users it names in full without
// the sender, or the removal of a reaction it names.
function uncounted(list, body, userId) {
  const r = list.find((x) => x.emoji === body.emoji);
  if (!r) return !body.removed;
  const named = r.userIds.includes(userId);
  if (body.removed) return named;
  return !named && r.userIds.length >= r.count;
}

/** reactionsKey is the part of a message's render version its reactions make. */
export function reactionsKey(m, meId) {
  return reactionList(m, meId).map((r) => `${r.emoji}:${r.count}:${r.mine ? 1 : 0}`).join(',');
}

/** reactionText describes a REACTION message for the conversation list (a Line). */
export function reactionText(m, who) {
  let body;
  try {
    body = reactionEventOf(m);
  } catch {
    body = null;
  }
  if (!body) return line`(reaction)`;
  return body.removed ? line`${who} took back ${body.emoji}` : line`${who} reacted ${body.emoji}`;
}

/** isReaction reports a REACTION message. */
export function isReaction(m) {
  return m.contentType === ContentType.REACTION;
}
