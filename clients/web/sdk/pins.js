// Pinned messages: the PIN events of a conversation and the pins that
// SYNC_CONVS carries (ConvSummary.pinnedSeqs, most recently pinned first).
// The SDK hands both over as they come; these helpers keep a
// conversation's pins current from the events without asking again.

import { ContentType, ConvType, GroupRole, schemas } from './schema.js';
import { decodeStruct } from './thrift.js';

/**
 * pinEventOf decodes a PIN message's PinEvent ({seq, msgId, unpinned}; the
 * message's sender pinned or unpinned), or returns null for any other
 * message. It throws on a malformed body.
 */
export function pinEventOf(m) {
  if (m.contentType !== ContentType.PIN) return null;
  return decodeStruct(schemas.PinEvent, m.content);
}

/**
 * applyPin returns a new list: pinned (seqs as BigInt, most recently
 * pinned first) after ev, a PinEvent. A pin moves its seq to the front; an
 * unpin drops it. A repeat changes nothing.
 */
export function applyPin(pinned, ev) {
  const out = pinned.filter((seq) => seq !== ev.seq);
  if (!ev.unpinned) out.unshift(ev.seq);
  return out;
}

/**
 * mayPin reports whether the user may pin in a conversation of type, their
 * group role being role (GroupRole; 0 when unknown): in 1:1 either user,
 * in a group its owner and admins. The server judges all the same.
 */
export function mayPin(type, role) {
  if (type !== ConvType.GROUP) return true;
  return role === GroupRole.OWNER || role === GroupRole.ADMIN;
}
