// The app's side of clearing a chat's history and deleting a chat
// (Session.clearConv), kept free of the DOM so that Node tests it: what a
// conversation keeps after a clear, and whether the list shows it.

/**
 * applyClear brings conversation c in step with a clear up to clearedSeq
 * (here, on another tab or device): the messages up to it leave the view,
 * a last message among them leaves the list, nothing up to it is unread,
 * and with hidden, while nothing newer came, the chat leaves the list.
 */
export function applyClear(c, clearedSeq, hidden) {
  if (clearedSeq > (c.clearedSeq || 0n)) c.clearedSeq = clearedSeq;
  const cleared = c.clearedSeq || 0n;
  for (const [key, m] of c.messages) if (m.seq <= cleared) c.messages.delete(key);
  if (c.lastMessage && c.lastMessage.seq <= cleared) c.lastMessage = null;
  if (c.readSeq < cleared) c.readSeq = cleared;
  if (c.lastSeq <= cleared) c.unread = 0;
  // The server pages history back to the cleared point, no further.
  if (c.historyLoaded && c.messages.size === 0) c.hasOlder = false;
  c.hidden = !!hidden && c.lastSeq <= cleared;
}

/** unhideOn lists a deleted chat again when message m is newer than its clear. */
export function unhideOn(c, m) {
  if (c.hidden && m.seq > (c.clearedSeq || 0n)) c.hidden = false;
}

/** isCleared reports whether m is history the user cleared from c. */
export function isCleared(c, m) {
  return m.seq <= (c.clearedSeq || 0n);
}

/** listed reports whether the conversation list shows c. */
export function listed(c, openId) {
  return !c.hidden && (c.lastSeq > 0n || c.convId === openId);
}
