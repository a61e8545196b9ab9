// Reactions in the web app, without the DOM: each loaded message keeps its
// reactions as a list (the sum of a history page, then the live REACTION
// events applied), which the chips under the message show.

import { ContentType, applyReaction, reactionEventOf, reactionsOf } from '../sdk/index.js';

/** reactionList returns m's reactions, taken from its page the first time. */
export function reactionList(m, meId) {
  if (!m.reactionList) m.reactionList = reactionsOf(m, meId);
  return m.reactionList;
}

/**
 * applyReactionEvent applies the REACTION message ev to the message it
 * names in messages (seq string -> message), when that one is loaded: a
 * page loaded later carries the sum already. It returns whether a loaded
 * message changed.
 */
export function applyReactionEvent(messages, ev, meId) {
  let body;
  try {
    body = reactionEventOf(ev);
  } catch (err) {
    console.warn('reaction event', err);
    return false;
  }
  const target = body && messages.get(String(body.seq));
  if (!target || target.recalled) return false;
  target.reactionList = applyReaction(reactionList(target, meId), body, ev.senderId, meId);
  return true;
}

/** reactionsKey is the part of a message's render version its reactions make. */
export function reactionsKey(m, meId) {
  return reactionList(m, meId).map((r) => `${r.emoji}:${r.count}:${r.mine ? 1 : 0}`).join(',');
}

/** reactionText describes a REACTION message for the conversation list. */
export function reactionText(m, who) {
  let body;
  try {
    body = reactionEventOf(m);
  } catch {
    body = null;
  }
  if (!body) return '(reaction)';
  return body.removed ? `${who} took back ${body.emoji}` : `${who} reacted ${body.emoji}`;
}

/** isReaction reports a REACTION message. */
export function isReaction(m) {
  return m.contentType === ContentType.REACTION;
}
