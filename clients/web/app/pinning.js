// Pinned messages in the web app, without the DOM: each conversation keeps
// its pins (seqs, most recently pinned first) as SYNC_CONVS last listed
// them, with the live PIN events since applied; a recall drops its
// message's pin, as the server does without a PIN event.

import { ContentType, applyPin, mayPin, pinEventOf } from '../sdk/index.js';
import { bodyText } from './view.js';
import { line } from './text.js';

/**
 * mergePins takes the pins of sum, a ConvSummary no older than what c
 * holds: they are the server's as of sum.lastSeq, events up to it included.
 */
export function mergePins(c, sum) {
  c.pinnedSeqs = [...(sum.pinnedSeqs || [])];
  c.pinsAsOf = sum.lastSeq || 0n;
}

/**
 * applyPinEvent applies the PIN message m to c's pins unless the listing
 * they came from is as new as m (it holds m's change already). It returns
 * whether the pins changed.
 */
export function applyPinEvent(c, m) {
  if (m.seq <= (c.pinsAsOf || 0n)) return false;
  let ev;
  try {
    ev = pinEventOf(m);
  } catch (err) {
    console.warn('pin event', err);
    return false;
  }
  if (!ev) return false;
  c.pinnedSeqs = applyPin(c.pinnedSeqs || [], ev);
  c.pinsAsOf = m.seq;
  return true;
}

/** dropPin forgets the pin of the message at seq of c (recalled). */
export function dropPin(c, seq) {
  c.pinnedSeqs = (c.pinnedSeqs || []).filter((s) => s !== seq);
}

/** isPinned reports whether the message at seq of c is pinned. */
export function isPinned(c, seq) {
  return (c.pinnedSeqs || []).includes(seq);
}

/**
 * canPin reports whether the app offers Pin and Unpin in c to meId: in 1:1
 * always, in a group to its owner and admins once GET_GROUP told the roles.
 */
export function canPin(c, meId) {
  const me = c.group?.members?.find((mem) => mem.userId === meId);
  return mayPin(c.type, me ? me.role : 0);
}

/** pinnable reports whether m is a message one may pin: sent, not recalled. */
export function pinnable(m) {
  return !m.recalled && [ContentType.TEXT, ContentType.BINARY, ContentType.FILE]
    .includes(m.contentType);
}

/** pinExcerpt is how a pinned message at seq of c is named (a Line). */
export function pinExcerpt(c, seq) {
  const m = c.messages.get(String(seq));
  if (!m) return line`message #${seq}`;
  const body = bodyText(m).replace(/\r?\n/g, ' ');
  return line`${body.length > 80 ? `${body.slice(0, 79)}…` : body}`;
}

/** pinText describes a PIN message in the timeline and the list (a Line). */
export function pinText(c, m, who) {
  let ev;
  try {
    ev = pinEventOf(m);
  } catch {
    ev = null;
  }
  if (!ev) return line`(pin)`;
  const what = pinExcerpt(c, ev.seq);
  return ev.unpinned ? line`${who} unpinned “${what}”` : line`${who} pinned “${what}”`;
}

/** isPin reports a PIN message. */
export function isPin(m) {
  return m.contentType === ContentType.PIN;
}
