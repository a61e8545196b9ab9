// Which peers the web app watches for presence. No DOM and no state of its
// own, so that Node tests load it as the browser does.

import { ConvType, MAX_PRESENCE_USERS, State } from '../sdk/index.js';

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
 * peerPresence is what the app shows of a peer's presence: 'online',
 * 'offline', or 'unknown' while this tab's own connection is not up
 * (connState, a Session State) or no presence of the peer is known.
 * presence maps user id strings to the last online flag the server gave.
 * Without a connection no change reaches the tab, so a peer last seen
 * online must not keep showing so.
 */
export function peerPresence(connState, presence, peerId) {
  if (connState !== State.ONLINE && connState !== State.RESUMING) return 'unknown';
  const online = presence.get(String(peerId));
  if (online === undefined) return 'unknown';
  return online ? 'online' : 'offline';
}
