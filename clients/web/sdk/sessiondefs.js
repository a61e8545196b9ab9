// What the Session's modules share (session.js, catchup.js, sending.js,
// requests.js): its states and errors, bounds of the protocol, and small
// helpers. index.js exports the public ones through session.js.

import { CloseReason, ErrorCode } from './schema.js';

/** State is the connection state a Session reports in 'state' events. */
export const State = Object.freeze({
  CONNECTING: 'connecting', // dialling or logging in
  RESUMING: 'resuming', // logged in, catching up
  ONLINE: 'online', // caught up; pushes flow
  OFFLINE: 'offline', // between connections; retryInMs says when the next attempt is
  ENDED: 'ended', // for good: closed, signed out, kicked or credentials refused
});

/** SessionEndedError says why a session ended; close is the server's CloseMsg, if any. */
export class SessionEndedError extends Error {
  constructor(message, { close = null, cause = null, accountDeleted = false } = {}) {
    super(message);
    this.name = 'SessionEndedError';
    this.close = close;
    this.cause = cause;
    // accountDeleted: the account is gone (deleteAccount here, or CLOSE
    // ACCOUNT_DELETED from another device); forget it and sign the app out.
    this.accountDeleted = accountDeleted || close?.reason === CloseReason.ACCOUNT_DELETED;
    // accountSuspended: the server's operator suspended the account (CLOSE
    // ACCOUNT_SUSPENDED, or a login refused with that code); the session
    // does not come back, nor try the password, until the user signs in
    // again after the suspension is lifted.
    this.accountSuspended = close?.reason === CloseReason.ACCOUNT_SUSPENDED ||
      cause?.code === ErrorCode.ACCOUNT_SUSPENDED;
  }
}

// UnconfirmedRefusedError is a login refused with the new password of a
// password change of unknown outcome (loginUnconfirmed): the change was not
// made, and the next attempt logs in with the old password. The refusal is
// its cause.
export class UnconfirmedRefusedError extends Error {
  constructor(cause) {
    super('the new password of the unconfirmed change was refused; the old one is next',
      { cause });
    this.name = 'UnconfirmedRefusedError';
  }
}

// UnconfirmedSignedOutError is a login whose token the gateway refused as a
// signed-out device's (CLOSE SIGNED_OUT behind the refusal) while a
// password change of unknown outcome is held: the change, if made, revoked
// this device's tokens itself. The tokens are forgotten, and the next
// attempt logs in with the new password; the close is its cause.
export class UnconfirmedSignedOutError extends Error {
  constructor(cause) {
    super('tokens revoked during a password change; the new password is next', { cause });
    this.name = 'UnconfirmedSignedOutError';
  }
}

// Reasons after which the device must not come back on its own.
export const FATAL_CLOSES = new Set([CloseReason.KICKED, CloseReason.LOGIN_FAILED,
  CloseReason.SIGNED_OUT, CloseReason.ACCOUNT_DELETED, CloseReason.ACCOUNT_SUSPENDED]);
// A connection up this long resets the reconnect backoff.
export const STABLE_MS = 60_000;
// FINAL_ACK_WAIT_MS bounds how long an ended session keeps its connection for
// the answer to its last DELIVERED, counted from the end: the opening and
// login of a connection that is to carry it included.
export const FINAL_ACK_WAIT_MS = 1000;
export const MAX_SEQ = (1n << 63n) - 1n;
// MAX_DELIVERED_POSITIONS is the server's bound on the positions of one
// DELIVERED (TOO_LARGE beyond it). At most 64 bytes of conversation id
// each, a full request stays well under the frame limit too.
export const MAX_DELIVERED_POSITIONS = 500;
/**
 * MAX_PRESENCE_USERS is the server's bound on the user ids of one
 * GET_PRESENCE or WATCH_PRESENCE: it refuses a longer list as a whole
 * (TOO_LARGE), so a caller with more users picks which to ask about.
 */
export const MAX_PRESENCE_USERS = 200;
// MAX_LACKED_WAIT_MS bounds how long a server's refusal of an op is
// remembered (LackedOp): against a server that stays older, a request an
// hour is lost to asking, or a connection when a gateway closes it for the
// op.
const MAX_LACKED_WAIT_MS = 3_600_000;

// monotonicMs reads the clock the session times its waits by: a wall clock
// (Date.now) jumps when it is set (a laptop waking, a user's correction),
// which would end a wait at once or stretch it by the jump. Date.now stays
// for what is compared with the server's times (token expiry).
export const monotonicMs = () => performance.now();

// LackedOp remembers, for a while after each refusal, that the server lacks
// an op: a release older than it, met during a rolling upgrade, which is
// soon replaced. Once the while is over the op is asked again, so that the
// upgraded server gets it back; a session that stopped asking for good
// would do without it for the rest of its life. The while starts at the
// base given (resyncIntervalMs) and doubles with each refusal in a row, up
// to MAX_LACKED_WAIT_MS. A refusal that comes while one is remembered is of
// a request sent before that one was known (DELIVEREDs in flight
// together), not one more in the row.
//
// now reads a monotonic clock in ms, monotonicMs unless a test gives
// another. Exported for the tests, not by index.js.
export class LackedOp {
  constructor(now = monotonicMs) {
    this.now = now;
    this.until = 0; // on this.now's clock
    this.wait = 0;
  }

  active() { return this.now() < this.until; }

  refused(baseMs) {
    if (this.active()) return;
    this.wait = Math.min(Math.max(2 * this.wait, baseMs), MAX_LACKED_WAIT_MS);
    this.until = this.now() + this.wait;
  }

  answered() { this.wait = 0; }
}

// refusedAsUnknown reports whether err says the server does not know the op
// of the request it failed: UNSUPPORTED, or a gateway older than the op
// closing the connection for an opcode it does not know (PROTOCOL_ERROR),
// since the SDK sends no malformed frame. Not a close beside the request
// (ClosedError.beside): one for another frame, such as an op of the
// application's the gateway does not know, would have the op go unasked
// for a while.
export function refusedAsUnknown(err) {
  return err.code === ErrorCode.UNSUPPORTED ||
    (err.close?.reason === CloseReason.PROTOCOL_ERROR && !err.beside);
}

export const utf8 = new TextEncoder();

// withoutUnsure returns saved tokens tk without the unsure mark of a
// refresh token (see Session.refreshFailed), for a new or dropped one.
export function withoutUnsure(tk) {
  const { unsure, ...rest } = tk;
  return rest;
}

/** jitter adds up to half of ms, so that clients dropped together do not return together. */
export function jitter(ms) {
  return ms + Math.floor(Math.random() * (ms / 2 + 1));
}

/** newClientMsgId returns a fresh idempotency key for a send. */
export function newClientMsgId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
