// Which peers the web app watches for presence. No DOM and no state of its
// own, so that Node tests load it as the browser does.

import { ConvType, MAX_PRESENCE_USERS } from '../sdk/index.js';

/**
 * lastTime is when a conversation was last active, for ordering: its last
 * message's send time (Unix ms, BigInt), or the latest possible for one with
 * none yet, which the user has just opened.
 */
export function lastTime(c) {
  return c.lastMessage ? c.lastMessage.sendTimeMs : BigInt(Number.MAX_SAFE_INTEGER);
}

/**
 * peersToWatch returns the distinct peers (user id strings) of the 1:1
 * conversations in convs, an iterable of the app's conversations, most
 * recently active first and at most MAX_PRESENCE_USERS of them: the server
 * refuses a longer WATCH_PRESENCE as a whole, which would leave every dot
 * stale. The peers left out are those at the bottom of the list.
 */
export function peersToWatch(convs) {
  const recent = [...convs].filter((c) => c.type === ConvType.P2P && c.peerUserId)
    .sort((a, b) => Number(lastTime(b) - lastTime(a)));
  const ids = new Set();
  for (const c of recent) {
    if (ids.size === MAX_PRESENCE_USERS) break;
    ids.add(String(c.peerUserId));
  }
  return [...ids];
}


/**
 * debounceWatch returns a function that asks for send to run once for a
 * burst of asks: the first ask arms a timer of delayMs and the asks made
 * before it fires join it (send reads the conversations when it runs, so
 * it has theirs too). timers holds setTimeout and clearTimeout (the global
 * ones by default; tests pass their own).
 *
 * The wait is not started over by a later ask: every message of a 1:1 chat
 * whose peer is not watched yet asks, so in a lively new chat a wait that
 * started over put the watch off for as long as messages kept coming, and
 * the peer read offline all that time.
 */
export function debounceWatch(send, delayMs, timers = globalThis) {
  let timer = 0;
  return () => {
    if (timer) return;
    timer = timers.setTimeout(() => {
      timer = 0;
      send();
    }, delayMs);
  };
}

/**
 * presenceText is a 1:1 conversation's subtitle for its peer: 'online' or
 * 'offline' as presence, a map of user id strings to booleans, has it, and
 * '' while it has nothing for the peer (no watch answer or NOTIFY yet): a
 * peer not known to be offline is not said to be.
 */
export function presenceText(presence, peerUserId) {
  const online = presence.get(String(peerUserId));
  if (online === undefined) return '';
  return online ? 'online' : 'offline';
}
