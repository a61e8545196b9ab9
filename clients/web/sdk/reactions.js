// Emoji reactions: the REACTION events of a conversation and the sum SYNC
// pages carry on each message (Message.reactions). The SDK hands both over
// as they come; these helpers let an app keep a message's reactions current
// from the events without asking the server again.

import { ContentType, schemas } from './schema.js';
import { decodeStruct } from './thrift.js';

/** QUICK_REACTIONS are the emoji an app offers in its picker. */
export const QUICK_REACTIONS = Object.freeze(['👍', '❤️', '😂', '😮', '😢', '🎉']);

/** MAX_REACTION_USERS is how many of an emoji's users a SYNC page names. */
export const MAX_REACTION_USERS = 10;

/**
 * reactionEventOf decodes a REACTION message's ReactionEvent ({seq, msgId,
 * emoji, removed}; the message's sender reacted), or returns null for any
 * other message. It throws on a malformed body.
 */
export function reactionEventOf(m) {
  if (m.contentType !== ContentType.REACTION) return null;
  return decodeStruct(schemas.ReactionEvent, m.content);
}

/**
 * reactionsOf returns m's reactions as a SYNC page carries them, each with
 * mine set when meId is among the users it names. A user past the first
 * MAX_REACTION_USERS is not named: mine is then false until an event of
 * theirs says otherwise.
 */
export function reactionsOf(m, meId) {
  return (m.reactions || []).map((r) => ({
    emoji: r.emoji, count: r.count, userIds: [...r.userIds], mine: r.userIds.includes(meId),
  }));
}

/**
 * applyReaction returns a new list: reactions (as reactionsOf returns them)
 * after ev, a ReactionEvent by userId; meId marks the user's own. An event
 * that changes nothing the list knows (a removal by a user it does not
 * count) leaves it as it was. Emoji keep the order of first use; one whose
 * count reaches 0 leaves the list.
 */
export function applyReaction(reactions, ev, userId, meId) {
  const out = reactions.map((r) => ({ ...r, userIds: [...r.userIds] }));
  const i = out.findIndex((r) => r.emoji === ev.emoji);
  const mine = userId === meId;
  if (ev.removed) {
    if (i < 0) return out;
    const r = out[i];
    const named = r.userIds.indexOf(userId);
    if (named >= 0) r.userIds.splice(named, 1);
    r.count = Math.max(0, r.count - 1);
    if (mine) r.mine = false;
    if (r.count === 0) out.splice(i, 1);
    return out;
  }
  if (i < 0) {
    out.push({ emoji: ev.emoji, count: 1, userIds: [userId], mine });
    return out;
  }
  const r = out[i];
  if (r.userIds.includes(userId)) return out; // counted already
  r.count += 1;
  if (r.userIds.length < MAX_REACTION_USERS) r.userIds.push(userId);
  if (mine) r.mine = true;
  return out;
}
