// Session is a logged-in presence of one device that survives connection
// loss, with the semantics of the Go SDK's client.Session (client/session*.go):
// every message of the user's conversations is handed to the application once
// and in seq order per conversation ('message' events), messages this device
// sends included (taken from their acks); a push after a gap is held while
// the gap is fetched; after each login it asks which conversations changed
// since the saved cursor (SYNC_CONVS) and fetches what it missed; it reports
// what it handed over with DELIVERED, batched; and it reconnects with
// exponential backoff and jitter, honouring the server's CLOSE.
//
// Sends go through an outbox: each message keeps its client_msg_id from the
// first attempt to the last, so the server stores it once however many times
// it is retried. An entry is 'pending' until acked ('sent'); one that cannot
// be sent within sendTimeoutMs, or is refused, becomes 'failed' and may be
// retried by the application with the same id.

import { Emitter } from './emitter.js';
import {
  ClosedError, Connection, OutcomeUnknownError, ResonanceError, TimeoutError, unanswered,
} from './connection.js';
import { download, encodeFileRef, upload } from './files.js';
import { DEFAULT_LIMITS, limitsOf } from './limits.js';
import { storedMentions } from './mentions.js';
import { MemoryPositions } from './positions.js';
import { Sequencer } from './sequencer.js';
import { CloseReason, ContentType, ErrorCode, Op } from './schema.js';

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
class UnconfirmedRefusedError extends Error {
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
class UnconfirmedSignedOutError extends Error {
  constructor(cause) {
    super('tokens revoked during a password change; the new password is next', { cause });
    this.name = 'UnconfirmedSignedOutError';
  }
}

// Reasons after which the device must not come back on its own.
const FATAL_CLOSES = new Set([CloseReason.KICKED, CloseReason.LOGIN_FAILED, CloseReason.SIGNED_OUT,
  CloseReason.ACCOUNT_DELETED, CloseReason.ACCOUNT_SUSPENDED]);
// A connection up this long resets the reconnect backoff.
const STABLE_MS = 60_000;
// FINAL_ACK_WAIT_MS bounds how long an ended session keeps its connection for
// the answer to its last DELIVERED, counted from the end: the opening and
// login of a connection that is to carry it included.
const FINAL_ACK_WAIT_MS = 1000;
const MAX_SEQ = (1n << 63n) - 1n;
// MAX_DELIVERED_POSITIONS is the server's bound on the positions of one
// DELIVERED (TOO_LARGE beyond it). At most 64 bytes of conversation id
// each, a full request stays well under the frame limit too.
const MAX_DELIVERED_POSITIONS = 500;
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
const monotonicMs = () => performance.now();

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
function refusedAsUnknown(err) {
  return err.code === ErrorCode.UNSUPPORTED ||
    (err.close?.reason === CloseReason.PROTOCOL_ERROR && !err.beside);
}

const utf8 = new TextEncoder();

// withoutUnsure returns saved tokens tk without the unsure mark of a
// refresh token (see Session.refreshFailed), for a new or dropped one.
function withoutUnsure(tk) {
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

export class Session extends Emitter {
  /**
   * opts: url (ws://host:port/, required); username and password, or a
   * token in opts.positions.tokens() from an earlier session; deviceId
   * (stable per installation; default "web"); platform ("web");
   * positions (a MemoryPositions or StoragePositions); startAtLatest (a
   * conversation this device has no position for starts at its newest
   * message from before the device's start, for an app that pages history
   * on demand; what is stored from the start on is handed over, by the
   * server's clock; the start is the first login of the first session on
   * positions, which keeps it, so a reload hands over a conversation begun
   * while the page was closed as one it knew; where a conversation starts
   * becomes the device's position, in positions and DELIVERED, so a later
   * session continues from it);
   * minBackoffMs (500)
   * and maxBackoffMs (30000); ackIntervalMs (1000); ackBatch (100);
   * syncPage (100); requestTimeoutMs (10000); sendTimeoutMs (30000);
   * resyncIntervalMs (60000).
   *
   * Events: 'state' ({state, retryInMs, error}), 'connected' (the
   * LoginResp), 'resumed', 'message' (a common.Message, once, in order;
   * one fetched with reactions has pageLastSeq, its page's lastSeq),
   * 'conv' (a ConvSummary from SYNC_CONVS), 'notify' (a Notify: typing,
   * presence, read, cleared: a clear on another device, already passed
   * over in the 'message' stream), 'outbox' (an outbox entry that
   * changed), 'ended' (a SessionEndedError).
   */
  constructor(opts) {
    super();
    this.opts = {
      deviceId: 'web', platform: 'web', startAtLatest: false, minBackoffMs: 500,
      maxBackoffMs: 30_000, ackIntervalMs: 1000, ackBatch: 100, syncPage: 100,
      requestTimeoutMs: 10_000, sendTimeoutMs: 30_000, resyncIntervalMs: 60_000, ...opts,
    };
    this.positions = this.opts.positions || new MemoryPositions();
    this.seq = new Sequencer((convId, first) => this.origin(convId, first));
    this.state = State.CONNECTING;
    this.conn = null;
    this.connSince = 0;
    this.userId = 0n;
    // limits are the server's as its last login reported them (limitsOf),
    // the defaults before one and from a server that reports none.
    this.limits = DEFAULT_LIMITS;
    // since is the server's time at the first login, Unix ms.
    this.since = 0n;
    // startMs is the device's start (see deviceStart), since or earlier:
    // with startAtLatest, messages stored from then on are handed over.
    this.startMs = 0n;
    this.username = this.opts.username || '';
    this.deviceId = this.opts.deviceId;
    this.backoff = this.opts.minBackoffMs;
    this.fills = new Set(); // conversations whose missing messages must be fetched
    this.fillChain = Promise.resolve();
    this.fillQueued = null;
    // listings counts the resumes reading SYNC_CONVS, which fetches wait
    // for (see drainFills); a count, since an old connection's resume may
    // still be failing when the next one's begins.
    this.listings = 0;
    this.dirty = new Map(); // conv id -> seq handed over, not yet sent in DELIVERED
    this.outbox = new Map(); // client msg id -> entry, in creation order
    // noDelivered remembers a refused DELIVERED for a while, noSyncConvs a
    // gateway closing the connection for SYNC_CONVS, noWatch a refused
    // WATCH_PRESENCE (see watchPresence).
    this.noDelivered = new LackedOp();
    this.noSyncConvs = new LackedOp();
    this.noWatch = new LackedOp();
    this.timers = new Set();
    this.ended = null;
    this.connecting = null; // the connection opening or logging in
    this.finalDeadline = 0; // monotonicMs() by which an ended session closes its connection
    this.finalWaitOver = false; // set when a connection was closed at finalDeadline
    this.signedOut = false;
    this.logoutTokens = null; // the saved login logout cleared, for signOutAway
    this.refreshTimer = null; // the refresh scheduled (scheduleRefresh)
    this.refreshing = null; // settles when the REFRESH in flight is answered or lost
    this.changingPassword = false; // a CHANGE_PASSWORD is in flight
    // unconfirmed is the new password of a change of unknown outcome, until
    // a login settles it (see changePassword); '' when there is none.
    this.unconfirmed = '';
  }

  // ---- lifecycle ----

  /**
   * start connects and logs in, then keeps the session up in the background
   * until close or a fatal error. It resolves with the LoginResp; an error
   * of the first attempt (wrong password, unreachable gateway) rejects, so
   * it is reported rather than retried forever.
   */
  async start() {
    this.setState(State.CONNECTING);
    let conn;
    let login;
    try {
      ({ conn, login } = await this.connect());
    } catch (err) {
      // Ended meanwhile: as a reconnect's attempt; a logout then signs out
      // with the saved login this one used.
      if (this.ended) this.failedAfterEnd(err);
      this.end(err instanceof SessionEndedError ? err
        : new SessionEndedError(err.message, { cause: err }));
      throw err;
    }
    if (this.ended) {
      // Closed while logging in: the session stays ended.
      this.lastAck(conn);
      throw this.ended;
    }
    this.since = login.serverTimeMs || BigInt(Date.now());
    this.startMs = this.deviceStart();
    this.serve(conn, login);
    return login;
  }

  // deviceStart returns where the device started: the start positions
  // recorded, else this session's first login, which it records there. Each
  // session starting anew would pass over, as history from before it, a
  // conversation that began while the page was closed.
  deviceStart() {
    if (!this.opts.startAtLatest) return this.since;
    const store = this.positions;
    // TODO: a store that keeps no start (no start() and setStart(), or a
    // MemoryPositions new to each page) starts the device at each
    // session's login, so a conversation begun while the page was closed
    // starts at its newest message, its messages passed over as history
    // (listed, unread, by SYNC_CONVS and there for history(), but never a
    // 'message'). The server keeps nothing that says when this device
    // began handing messages over: its first login would not do (a device
    // id another client used before would have all history since handed
    // over), nor would a guess from the listing's delivered positions (a
    // lost DELIVERED would have a whole history handed over).
    if (typeof store.start !== 'function' || typeof store.setStart !== 'function') {
      return this.since;
    }
    const recorded = store.start();
    if (recorded !== undefined) return recorded < this.since ? recorded : this.since;
    store.setStart(this.since);
    return this.since;
  }

  /**
   * close ends the session and its connection; idempotent. What was handed
   * over is reported with a last DELIVERED, for a second at most: on the
   * connection; on the next one when close comes while a reconnect opens
   * or logs in; and, when close finds the session offline with positions
   * the server has not acknowledged, on a connection it opens and logs in
   * for that alone, also when that reconnect fails. No event follows
   * 'ended', and every connection of the session is closed within that
   * second.
   */
  close() {
    const offline = this.state === State.OFFLINE && !this.ended;
    this.end(new SessionEndedError('session closed'));
    // Offline, waiting to reconnect, no connection is there nor coming to
    // carry the last DELIVERED (see end).
    if (offline) this.away();
  }

  /**
   * logout revokes this device's tokens (LOGOUT) and ends the session. A
   * reconnect logging in meanwhile is signed out too once its login ends,
   * and its tokens are not saved. Offline, waiting to reconnect, or when
   * that reconnect fails, it logs in once with the saved login, within a
   * second, to sign out on the server; with its tokens only, never the
   * password: tokens refused mean the device is signed out already (an
   * earlier LOGOUT landed, or they expired). On a session that has ended
   * already (closed, or ended by the server) it signs the saved login out
   * on a connection of its own, and rejects if the server could not be told.
   *
   * A LOGOUT that was sent and got no answer (its connection dropped, or
   * it timed out) rejects with OutcomeUnknownError: the device may be
   * signed out on the server or not. The saved tokens are cleared all the
   * same, and after a dropped connection or a timeout the session signs out
   * once more on a connection of its own, as when offline, within the
   * second the end allows; logout does not wait for it. A refusal rejects
   * with the ResonanceError.
   */
  async logout() {
    if (this.ended) return this.signOutEnded();
    this.signedOut = true;
    let silent = null; // the connection that let the LOGOUT time out
    try {
      const conn = this.conn;
      if (conn) {
        // What was handed over first: the gateway closes the connection
        // once it is signed out, and a later sign-in of this device starts
        // from the position it keeps.
        await this.flushAcks(conn);
        // A gateway older than DELIVERED closes conn for it. The session
        // is offline then, and signs out on a connection of its own
        // (away, below), without a DELIVERED: its refusal is remembered.
        if (!conn.closed) {
          await conn.requestOnce(Op.LOGOUT, {}).catch((err) => {
            if (err.cause instanceof TimeoutError) silent = conn;
            throw err;
          });
        }
      }
    } finally {
      // A connection still up that did not answer the LOGOUT in time is
      // no surer to carry a second one than a dropped one: both sign out
      // on a connection of their own. One that dropped since has the
      // session offline, or a reconnect under way that signs out itself.
      const retry = (this.state === State.OFFLINE || (silent && silent === this.conn)) &&
        !this.ended;
      // Taken before they are cleared: the connection signOutAway opens logs
      // in with them.
      if (!this.ended) this.logoutTokens = this.positions.tokens();
      this.positions.setTokens(null);
      this.end(new SessionEndedError('signed out'));
      if (retry) this.away();
    }
  }

  // away does for an ended session what its connection would have done at
  // the end, when none is there to: the last DELIVERED (ackAway), or the
  // LOGOUT (signOutAway). close and logout call it when they find the
  // session offline; a connection attempt that was under way at the end
  // calls it when it fails (attemptFailed), since it was to carry them.
  // Nothing once the final wait is over.
  away() {
    if (this.finalWaitOver || monotonicMs() >= this.finalDeadline) return;
    if (!this.signedOut) this.ackAway();
    else if (this.logoutTokens) this.signOutAway(this.logoutTokens);
  }

  // signOutEnded is logout on an ended session: the saved tokens are
  // forgotten here, and revoked on the server over one connection, logged
  // in with them and never with the password (tokens refused already are
  // revoked or expired: nothing is left to sign out). Without it a logout
  // after close forgot the tokens and left them valid on the server.
  async signOutEnded() {
    const tk = this.positions.tokens() || {};
    this.positions.setTokens(null);
    if (!tk.access && !tk.refresh) return;
    const conn = new Connection(this.opts.url, { requestTimeoutMs: this.opts.requestTimeoutMs });
    try {
      await conn.connect();
      const base = { deviceId: this.deviceId, platform: this.opts.platform };
      for (const token of [tk.access, tk.refresh]) {
        if (!token) continue;
        try {
          await conn.request(Op.LOGIN, { ...base, token });
        } catch (err) {
          if (err.code === ErrorCode.TOKEN_INVALID) continue;
          throw err;
        }
        await conn.requestOnce(Op.LOGOUT, {});
        return;
      }
    } finally {
      conn.close();
    }
  }

  // signOutAway is logout's LOGOUT for a session with no connection: one
  // connection, logged in with tokens (the saved login logout cleared)
  // within the final wait, carries the last DELIVERED and the LOGOUT
  // (lastAck). Without it the server keeps the device's tokens valid until
  // they expire. Never with the password, as signOutEnded: tokens refused
  // are revoked (a LOGOUT whose answer was lost landed) or expired, so the
  // device is signed out already, which is all logout wants; a password
  // login would sign it in again only to send a LOGOUT.
  signOutAway(tokens) {
    this.connect(tokens, { password: false }).then(({ conn }) => this.lastAck(conn), () => {});
  }

  end(err) {
    if (this.ended) return;
    this.ended = err;
    this.finalDeadline = monotonicMs() + FINAL_ACK_WAIT_MS;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const conn = this.conn;
    this.conn = null;
    if (conn) {
      // A gateway before this release drops the requests of a connection
      // that closes before it handled them: the connection stays until the
      // final DELIVERED is answered, for a second at most, so the server
      // keeps what this device was handed (a new device or a reload starts
      // from it). Its other requests fail now, as closing it did: nothing
      // they answer is handed over after the end.
      conn.abandon(new ClosedError(null, 'session ended'));
      this.closeByFinalDeadline(conn);
      this.lastAck(conn, false); // a logout signed it out before the end
    }
    // A reconnect opening or logging in carries the last DELIVERED once
    // logged in (reconnectAfter), or away does if it fails (attemptFailed):
    // the connection that had the hand-over is gone.
    if (this.connecting) this.closeByFinalDeadline(this.connecting);
    for (const e of this.outbox.values()) {
      if (e.state === 'pending') this.failEntry(e, err);
    }
    this.setState(State.ENDED, { error: err });
    this.emit('ended', err);
  }

  // closeByFinalDeadline closes conn of an ended session at finalDeadline
  // at the latest, answered or not. finalWaitOver tells away the wait is
  // over, which a timer may report a moment before monotonicMs() does.
  closeByFinalDeadline(conn) {
    const t = setTimeout(() => {
      this.finalWaitOver = true;
      conn.close();
    }, Math.max(this.finalDeadline - monotonicMs(), 0));
    conn.on('close', () => clearTimeout(t));
  }

  // ackAway is close's last DELIVERED for a session with no connection: one
  // connection, opened and logged in for it alone within the final wait
  // (connect bounds it), as a reconnect's would have carried it. Without it
  // the server keeps an older delivered position, from which the next start
  // at the latest hands the same messages over again. Nothing when the
  // server acknowledged every position handed over, nor while a refusal of
  // DELIVERED is remembered: unlike lastAck's on a connection there anyway,
  // this one would be opened for a request last seen refused.
  ackAway() {
    if (this.dirty.size === 0 || this.noDelivered.active()) return;
    this.connect().then(({ conn }) => this.lastAck(conn), () => {});
  }

  // lastAck sends what was handed over on conn of an ended session and
  // closes it once that DELIVERED is answered. With logout, the default
  // after a logout for a connection that logged in meanwhile, it waits for
  // a LOGOUT too: that login came after the one logout revoked.
  //
  // Its DELIVERED goes also while a refusal of it is remembered: the server
  // may have gained the op since (upgraded, and conn is to the new
  // release), and an ended session has no later to report at. Not with a
  // LOGOUT (see signOutOn).
  lastAck(conn, logout = this.signedOut) {
    const done = logout ? this.signOutOn(conn) : this.flushAcks(conn, true);
    if (done) done.finally(() => conn.close());
    else conn.close();
  }

  // signOutOn sends the last DELIVERED on conn of an ended session and,
  // once it is answered, the LOGOUT. A gateway older than DELIVERED closes
  // the connection for it, dropping what was sent after it: a LOGOUT sent
  // beside it was lost, and the device's tokens stayed valid. Such a close
  // is remembered as a refusal (noDelivered), so the LOGOUT goes on one
  // more connection (away), which sends no DELIVERED, so that it cannot
  // happen twice.
  async signOutOn(conn) {
    const acked = this.flushAcks(conn);
    await acked;
    if (!conn.closed) {
      await conn.request(Op.LOGOUT, {}).catch(() => {});
    } else if (acked && this.noDelivered.active()) {
      this.away();
    }
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit('state', { state, ...extra });
  }

  // later runs fn after ms unless the session has ended by then; an ended
  // session schedules nothing (end cleared what was scheduled before).
  later(ms, fn) {
    if (this.ended) return null;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  // ---- connecting ----

  // connect opens a connection and logs in. An end meanwhile does not cut
  // either short, only bounds them (see end): the connection is to carry
  // the last DELIVERED. An ended session's connection is bounded from the
  // start, the open included, which otherwise waits for the request timeout.
  async connect(tokens, loginOpts) {
    const conn = new Connection(this.opts.url, { requestTimeoutMs: this.opts.requestTimeoutMs });
    if (this.ended) this.closeByFinalDeadline(conn);
    this.connecting = conn;
    try {
      await conn.connect();
      const login = await this.login(conn, tokens, loginOpts);
      return { conn, login };
    } catch (err) {
      conn.close();
      throw err;
    } finally {
      if (this.connecting === conn) this.connecting = null;
    }
  }

  // login uses the access token, then the refresh token (LOGIN takes
  // either), so that a reconnect or a reload needs no password, and falls
  // back to the password when both are refused, unless password is false:
  // the unconfirmed one of a password change of unknown outcome first.
  // The tokens are the saved ones unless given.
  //
  // A token of a device signed out since (while the session was offline)
  // is refused, then the gateway closes the connection with SIGNED_OUT:
  // the request after the refusal rejects with that close, and the session
  // ends on it (retryDelay) without trying the password. An expired token
  // closes nothing and falls back as above. With a change of unknown
  // outcome held, the revocation may be the change's own: the tokens are
  // forgotten and the next attempt logs in with the new password.
  async login(conn, tokens = this.positions.tokens(), opts = {}) {
    const unconfirmed = this.unconfirmed;
    try {
      return await this.loginWith(conn, tokens, unconfirmed, opts);
    } catch (err) {
      if (unconfirmed && err.close?.reason === CloseReason.SIGNED_OUT) {
        this.positions.setTokens(null);
        throw new UnconfirmedSignedOutError(err);
      }
      throw err;
    }
  }

  // loginWith is login with the unconfirmed new password as read once.
  async loginWith(conn, tokens, unconfirmed, { password = true } = {}) {
    const tk = tokens || {};
    const base = { deviceId: this.deviceId, platform: this.opts.platform };
    for (const token of [tk.access, tk.refresh]) {
      if (!token) continue;
      let resp;
      try {
        resp = await conn.request(Op.LOGIN, { ...base, token });
      } catch (err) {
        if (err.code !== ErrorCode.TOKEN_INVALID) throw err;
        continue;
      }
      // A change would have revoked the token: it was not made.
      this.settlePassword(unconfirmed, this.opts.password);
      return this.loggedIn(conn, resp);
    }
    this.positions.setTokens(null);
    if (!password || !this.opts.password) {
      throw new SessionEndedError('the saved login was refused; sign in again',
        { cause: new ResonanceError(Op.LOGIN, ErrorCode.TOKEN_INVALID, 'token refused') });
    }
    if (unconfirmed) return this.loginUnconfirmed(conn, base, unconfirmed);
    const resp = await conn.request(Op.LOGIN,
      { ...base, username: this.opts.username, password: this.opts.password });
    return this.loggedIn(conn, resp);
  }

  // loginUnconfirmed logs in with the new password of a change of unknown
  // outcome. Refused, the change was not made: the old password is kept
  // and tried at the next attempt, on another connection, since the
  // gateway closes one at its third failed login (two tokens and this
  // password may have been); the UnconfirmedRefusedError it rejects with
  // is no refusal that ends the session (see refusal).
  async loginUnconfirmed(conn, base, unconfirmed) {
    let resp;
    try {
      resp = await conn.request(Op.LOGIN,
        { ...base, username: this.opts.username, password: unconfirmed });
    } catch (err) {
      if (err.code !== ErrorCode.INVALID_CREDENTIALS) throw err;
      this.settlePassword(unconfirmed, this.opts.password);
      throw new UnconfirmedRefusedError(err);
    }
    this.settlePassword(unconfirmed, unconfirmed);
    return this.loggedIn(conn, resp);
  }

  // settlePassword ends the doubt over unconfirmed, if the session still
  // has it, with password the one that logs in. A change answered since
  // settled it already, and may have left another password.
  settlePassword(unconfirmed, password) {
    if (!unconfirmed || this.unconfirmed !== unconfirmed) return;
    this.opts.password = password;
    this.unconfirmed = '';
  }

  loggedIn(conn, resp) {
    this.userId = resp.userId;
    this.username = resp.username;
    this.deviceId = resp.deviceId || this.deviceId;
    // A login that ends after logout must not sign the device back in here;
    // lastAck signs it out on the server.
    if (this.signedOut) return resp;
    const old = this.positions.tokens() || {};
    const tk = {
      access: resp.token,
      refresh: resp.refreshToken || old.refresh || '',
      accessExpiryMs: Number(resp.tokenExpiresMs),
      username: resp.username,
    };
    // A refresh token kept stays unsure: scheduleRefresh presents it at once.
    if (!resp.refreshToken && old.unsure) tk.unsure = true;
    this.positions.setTokens(tk);
    return resp;
  }

  // serve makes conn the session's connection: pushes flow into the
  // sequencer, the resume runs, pending sends go out.
  serve(conn, login) {
    this.conn = conn;
    this.limits = limitsOf(login);
    this.connSince = monotonicMs();
    // Only while conn is the session's: an ended session keeps it a moment
    // for its last DELIVERED (end) and hands nothing over meanwhile.
    conn.on('push', (m) => {
      if (conn === this.conn) this.offer(m);
    });
    conn.on('notify', (n) => {
      if (conn !== this.conn) return;
      // A clear on another of the user's devices: passed at once, as this
      // device's own clearConv does, before the app hears of it.
      if (n.cleared) this.passCleared(n.cleared.convId, n.cleared.clearedSeq);
      this.emit('notify', n);
    });
    conn.on('close', (info) => this.onConnClosed(conn, info));
    conn.startHeartbeat(login.heartbeatIntervalMs);
    this.scheduleRefresh(conn);
    this.setState(State.RESUMING);
    this.emit('connected', login);
    for (const e of this.outbox.values()) this.attemptSend(e);
    this.resume(conn).then(() => {
      if (conn !== this.conn) return;
      this.setState(State.ONLINE);
      this.emit('resumed');
      this.scheduleAcks(conn);
      this.scheduleResync(conn);
    }, (err) => this.catchUpFailed(conn, err));
  }

  // catchUpFailed ends conn after its catch-up failed with err: the session
  // reconnects, and the next resume starts over. A TOKEN_INVALID answer
  // means the device was signed out, or its account deleted, while its
  // close was lost: the session ends as at a CLOSE SIGNED_OUT. The gateway
  // sends that CLOSE behind the answer, but in a WebSocket message of its
  // own, which comes after this runs (an older gateway sends none); taken
  // for a broken connection, the refusal would reconnect and, the tokens
  // refused, sign the device in again with the password.
  catchUpFailed(conn, err) {
    if (conn !== this.conn) return;
    if (err?.code === ErrorCode.TOKEN_INVALID) {
      const close = { reason: CloseReason.SIGNED_OUT, message: 'signed out', reconnectAfterMs: -1 };
      this.end(new SessionEndedError('signed out', { close, cause: err }));
      return;
    }
    conn.fail(err);
  }

  onConnClosed(conn, info) {
    if (conn !== this.conn || this.ended) return;
    this.conn = null;
    if (monotonicMs() - this.connSince >= STABLE_MS) this.backoff = this.opts.minBackoffMs;
    const { delay, fatal } = this.retryDelay(info.close);
    if (fatal) {
      this.end(fatal);
      return;
    }
    this.reconnectAfter(delay, info.error || (info.close && new ClosedError(info.close)));
  }

  // retryDelay follows the server's CLOSE: its reconnect delay, or none for
  // a replaced or signed-out device. Without a CLOSE it backs off.
  retryDelay(close) {
    const backoff = this.backoff;
    this.backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
    if (!close) return { delay: jitter(backoff) };
    if (close.reason === CloseReason.ACCOUNT_DELETED) {
      // Deleted on another device: nothing saved logs in again.
      this.positions.setTokens(null);
      this.opts.password = '';
    }
    if (FATAL_CLOSES.has(close.reason)) {
      return { fatal: new SessionEndedError(close.message || 'closed by the server', { close }) };
    }
    if (close.reason === CloseReason.TOKEN_EXPIRED) {
      // The refresh token (or the password) logs in again.
      const tk = this.positions.tokens() || {};
      if (!tk.refresh && !this.opts.password) {
        return { fatal: new SessionEndedError('the login expired; sign in again', { close }) };
      }
      this.positions.setTokens({ ...tk, access: '' });
      return { delay: jitter(backoff) };
    }
    if (close.reconnectAfterMs < 0) {
      return { fatal: new SessionEndedError(close.message || 'closed by the server', { close }) };
    }
    // The server's delay carries its own jitter; ours on top spreads clients
    // even when it is zero.
    return { delay: close.reconnectAfterMs + jitter(backoff) - backoff };
  }

  reconnectAfter(delay, cause) {
    this.setState(State.OFFLINE, { retryInMs: delay, error: cause });
    this.later(delay, async () => {
      if (this.ended) return;
      this.setState(State.CONNECTING);
      try {
        const { conn, login } = await this.connect();
        if (this.ended) {
          // Nothing of it is handed over: it only reports what was.
          this.lastAck(conn);
          return;
        }
        this.serve(conn, login);
      } catch (err) {
        this.attemptFailed(err);
      }
    });
  }

  // attemptFailed handles a reconnect attempt that failed: the session ends
  // when the login was refused or the server's CLOSE says so, else the next
  // attempt is scheduled. Ended during the attempt, which was to carry the
  // last DELIVERED (or the LOGOUT) once logged in, the session has no
  // connection left, as the end finding it offline: away logs in once more
  // for them. Returning at once left the server with the older delivered
  // position, from which the next start at the latest hands the same
  // messages over again (or the device's tokens valid).
  attemptFailed(err) {
    if (this.ended) {
      this.failedAfterEnd(err);
      return;
    }
    const refused = this.refusal(err);
    const { delay, fatal } = refused ? { fatal: refused } : this.retryDelay(err.close);
    if (fatal) this.end(fatal);
    else this.reconnectAfter(delay, err);
  }

  // failedAfterEnd is attemptFailed for an attempt the session ended
  // during. A login refused, or closed by the server (whose CLOSE says when
  // to come back), is not tried again.
  failedAfterEnd(err) {
    if (!this.refusal(err) && !err.close) this.away();
  }

  // refusal returns the SessionEndedError a failed login attempt ends the
  // session with, or null when it may be tried again. A refused login ends
  // it, except RATE_LIMITED: a reconnect storm after a restart can meet the
  // login limits, and backing off is the cure. (The Go SDK ends on it too;
  // it could do the same.)
  refusal(err) {
    if (err instanceof SessionEndedError) return err;
    if (err instanceof UnconfirmedRefusedError) return null; // the old password is left
    if (err instanceof UnconfirmedSignedOutError) return null; // the new password is next
    const refused = err instanceof ResonanceError && !err.retryable &&
      err.code !== ErrorCode.RATE_LIMITED;
    return refused ? new SessionEndedError(err.message, { cause: err }) : null;
  }

  /**
   * reconnectNow skips the wait of an offline session, for a "retry now"
   * button or the browser's online event.
   */
  reconnectNow() {
    if (this.state !== State.OFFLINE) return;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.reconnectAfter(0, null);
  }

  // scheduleRefresh refreshes the tokens at four fifths of the access
  // token's remaining life, so the gateway never closes with TOKEN_EXPIRED;
  // at once when the refresh token is unsure (see refreshFailed): the
  // server takes it back only within 30 s of rotating it, and signs the
  // device out after.
  //
  // It replaces the refresh scheduled before: that one would present a
  // refresh token a password change has revoked since, which the server
  // may take for a stolen one and sign the device out for.
  scheduleRefresh(conn) {
    this.cancelRefresh();
    const tk = this.positions.tokens();
    if (!tk || !tk.refresh || !tk.accessExpiryMs) return;
    const wait = tk.unsure ? 0 : Math.max((tk.accessExpiryMs - Date.now()) * 4 / 5, 1000);
    this.refreshTimer = this.later(Math.min(wait, 2 ** 31 - 1), async () => {
      this.refreshTimer = null;
      if (conn !== this.conn || conn.closed) return; // the next connection's refreshes
      // changePassword restarts the schedule once it is answered.
      if (this.changingPassword) return;
      let r;
      const request = conn.requestOnce(Op.REFRESH, { refreshToken: tk.refresh });
      this.refreshing = request.catch(() => {});
      try {
        r = await request;
      } catch (err) {
        this.refreshFailed(conn, tk, err);
        return;
      } finally {
        this.refreshing = null;
      }
      this.positions.setTokens(withoutUnsure({ ...tk, access: r.token, refresh: r.refreshToken,
        accessExpiryMs: Number(r.tokenExpiresMs) }));
      this.scheduleRefresh(conn);
    });
  }

  // cancelRefresh drops the refresh scheduled, if one is.
  cancelRefresh() {
    if (!this.refreshTimer) return;
    clearTimeout(this.refreshTimer);
    this.timers.delete(this.refreshTimer);
    this.refreshTimer = null;
  }

  // refreshFailed handles a REFRESH of tk's refresh token that failed on
  // conn. Unanswered, the server may have rotated the token away: it is
  // marked unsure and presented again at once, on conn if it is up, else by
  // the next connection's scheduleRefresh, within the server's grace. An
  // unsure token refused was rotated twice (a retry whose answer was lost
  // too): it is dropped, and the access token holds until it expires. Any
  // other refusal keeps the token; TOKEN_INVALID of a sure one means the
  // device was revoked, and SIGNED_OUT follows.
  //
  // TODO: a reconnect that takes longer than the grace presents the unsure
  // token all the same, which signs the device out if it was rotated; a
  // session with a password could log in by it instead and drop the token.
  refreshFailed(conn, tk, err) {
    const now = this.positions.tokens();
    if (this.ended || !now || now.refresh !== tk.refresh) return; // replaced meanwhile
    if (err instanceof OutcomeUnknownError) {
      this.positions.setTokens({ ...now, unsure: true });
      if (conn === this.conn && !conn.closed) this.scheduleRefresh(conn);
      return;
    }
    if (err.code === ErrorCode.TOKEN_INVALID) {
      if (now.unsure) this.positions.setTokens(withoutUnsure({ ...now, refresh: '' }));
      return;
    }
    this.later(30_000, () => this.scheduleRefresh(conn));
  }

  // ---- sequencing and catch-up ----

  // origin is where a conversation first seen in a push or an ack starts:
  // the stored position, else its first message. A first message stored
  // before the first login may be a push redelivered late after a server
  // failure, of a conversation an earlier session of this device handed
  // over (the listing tells how far): the conversation then waits to be
  // placed (null; see noteSummary and fill). With startAtLatest so does any
  // conversation not begun after the login: the messages before the one at
  // hand may be from after the login too, pushes the login's race missed.
  // Without it, one whose first message at hand is later waits behind the
  // gap.
  origin(convId, first) {
    const seq = this.positions.position(convId);
    if (seq !== undefined) return seq;
    if (!first) return 0n;
    if (first.seq <= 1n) return first.sendTimeMs >= this.since ? 0n : null;
    return this.opts.startAtLatest ? null : 0n;
  }

  /** position returns the highest seq of convId handed to the application. */
  position(convId) {
    return this.seq.position(convId);
  }

  offer(m) {
    const { ready, gap } = this.seq.offer(m);
    this.handOver(ready);
    if (gap) this.want(m.convId);
  }

  // handOver emits messages the sequencer made ready and records their
  // positions for DELIVERED, each in the same step as it is emitted, so a
  // last DELIVERED taken meanwhile has every message the application got.
  // A listener may end the session (close): the rest is not handed over,
  // since that DELIVERED is taken and no event follows 'ended'. Nor is
  // anything once logout has begun: its last DELIVERED goes before the
  // LOGOUT, after which the gateway closes the connection, so what came
  // later would be handed over again at the device's next sign-in.
  handOver(ready) {
    for (const r of ready) {
      if (this.ended || this.signedOut) return;
      this.positions.setPosition(r.convId, r.seq);
      this.dirty.set(r.convId, r.seq);
      this.emit('message', r);
    }
    if (this.dirty.size >= this.opts.ackBatch && this.conn) this.flushAcks(this.conn);
  }

  want(convId) {
    this.fills.add(convId);
    return this.queueFill();
  }

  // queueFill runs the fetches one at a time, on whatever connection is
  // current when they start; a step not yet started takes every
  // conversation queued meanwhile. It resolves true when every fetch
  // succeeded.
  queueFill() {
    if (this.fillQueued) return this.fillQueued;
    const step = this.fillChain.then(() => {
      this.fillQueued = null;
      return this.drainFills();
    });
    this.fillQueued = step;
    this.fillChain = step;
    return step;
  }

  async drainFills() {
    const conn = this.conn;
    if (!conn || conn.closed) return false;
    while (this.fills.size) {
      // A listing being read may place a conversation this device has no
      // position for at its delivered_seq (noteSummary); a fetch now would
      // start it at its origin instead. The resume fetches what is left.
      if (this.listings > 0) return false;
      const convId = this.fills.values().next().value;
      this.fills.delete(convId);
      try {
        await this.fill(conn, convId);
      } catch (err) {
        this.fills.add(convId); // fetched again on the next connection
        if (conn === this.conn) conn.fail(err);
        return false;
      }
    }
    return true;
  }

  // fill fetches convId forward from the position up to the conversation's
  // last seq as the first page reports it, and on while messages are held
  // behind a gap; later messages come as pushes. Each page starts at the
  // current position, which pushes may have moved meanwhile. An unplaced
  // conversation is placed first: at its first message, or with
  // startAtLatest where findStart says.
  async fill(conn, convId) {
    if (this.seq.unplaced(convId)) {
      const start = this.opts.startAtLatest ? await this.findStart(conn, convId) : 0n;
      if (this.seq.unplaced(convId)) this.startAt(convId, start);
      this.handOver(this.seq.place(convId, start));
    }
    let target = 0n;
    for (;;) {
      const afterSeq = this.seq.position(convId);
      let resp;
      try {
        resp = await conn.request(Op.SYNC, { convId, afterSeq, limit: this.opts.syncPage });
      } catch (err) {
        if (err.code === ErrorCode.NOT_FOUND) return; // no message stored yet
        throw err;
      }
      const first = resp.messages[0];
      if (first && first.seq > afterSeq + 1n) {
        // The server returns every message this user may read after a
        // position: the seqs it passes over are not theirs (a group's
        // history from before they joined), and no fetch would fill them.
        this.handOver(this.seq.skip(convId, first.seq - 1n));
      }
      for (const m of resp.messages) {
        // Its reactions were summed before lastSeq was read: the events
        // up to there that follow it may be in the sum (pageLastSeq).
        if (m.reactions?.length) m.pageLastSeq = resp.lastSeq;
        this.offer(m);
      }
      if (target === 0n) target = resp.lastSeq;
      if (!resp.hasMore || resp.messages.length === 0 || this.seq.caughtUp(convId, target)) return;
      if (resp.messages[resp.messages.length - 1].seq <= afterSeq) {
        throw new Error(`sync of ${convId} after ${afterSeq} did not move forward`);
      }
    }
  }

  // findStart returns where an unplaced conversation starts: its newest
  // message stored before the device's start, found by paging back from the
  // newest. So a conversation begun or continued just after the login, whose
  // messages the listing reports before their pushes come (or the login's
  // race kept from being pushed), is handed over from there, and older
  // history is not.
  async findStart(conn, convId) {
    for (let beforeSeq = MAX_SEQ; ;) {
      let resp;
      try {
        resp = await conn.request(Op.SYNC, { convId, beforeSeq, limit: this.opts.syncPage });
      } catch (err) {
        if (err.code === ErrorCode.NOT_FOUND) return 0n; // no message stored yet
        throw err;
      }
      const msgs = resp.messages;
      if (msgs.length === 0) return 0n;
      const older = msgs.findLast((m) => m.sendTimeMs < this.startMs);
      if (older) return older.seq;
      // Every message this user may read is newer: the first of them may
      // follow a group's history from before they joined, which is not theirs.
      if (!resp.hasMore) return msgs[0].seq - 1n;
      if (msgs[0].seq >= beforeSeq) {
        throw new Error(`sync of ${convId} before ${beforeSeq} did not move back`);
      }
      beforeSeq = msgs[0].seq;
    }
  }

  // resume catches up after a login: the conversations changed since the
  // saved cursor whose last seq is beyond ours are fetched, as are those
  // holding messages behind a gap. The cursor is saved only once every
  // fetch succeeded, so a resume cut short is repeated in full. Unlike the
  // Go SDK's, it needs no wait for the hand-over: handOver emits each
  // message as the sequencer readies it, with no queue in between, so the
  // application had every message the cursor covers before it is saved
  // (and a StoragePositions wrote their positions, in a microtask queued
  // before this function resumed).
  async resume(conn) {
    this.listings++;
    const { cursor, supported } = await this.syncConvs(conn).finally(() => {
      this.listings--;
    });
    if (!supported) {
      // An older server: fetch every conversation this device knows. One
      // begun while away stays unknown until a push in it, or until a
      // later resume's listing (see syncConvs) once the server has it.
      for (const convId of this.positions.conversations()) this.fills.add(convId);
    }
    for (const convId of this.seq.gaps()) this.fills.add(convId);
    if (!(await this.queueFill())) throw new Error('catch-up failed');
    if (supported) this.positions.setCursor(cursor);
  }

  // syncConvs reads the conversations changed since the saved cursor
  // (noteSummary) and returns the new cursor; supported is false when the
  // server lacks SYNC_CONVS. Such a server is asked again at the next
  // resume, a request each: an older release met during a rolling upgrade
  // is soon replaced, and a session that stopped asking for good would, for
  // the rest of its life, miss every conversation begun while it was away
  // until a later push in it. A gateway that closes the connection for the
  // op costs a connection, so that is asked no sooner than noSyncConvs
  // says.
  async syncConvs(conn) {
    let cursor = this.positions.cursor();
    if (this.noSyncConvs.active()) return { cursor, supported: false };
    for (;;) {
      let resp;
      try {
        resp = await conn.request(Op.SYNC_CONVS, { cursor, limit: this.opts.syncPage });
      } catch (err) {
        if (err.code === ErrorCode.UNSUPPORTED) return { cursor, supported: false };
        // A close: reconnect, then resume without it for a while.
        if (refusedAsUnknown(err)) this.noSyncConvs.refused(this.opts.resyncIntervalMs);
        throw err;
      }
      this.noSyncConvs.answered();
      for (const sum of resp.convs) this.noteSummary(sum);
      cursor = resp.cursor;
      if (!resp.hasMore || resp.convs.length === 0) return { cursor, supported: true };
    }
  }

  // noteSummary places a conversation new to this device at the server's
  // delivered position for it, and queues a fetch when messages are
  // missing. With startAtLatest, one unchanged since the device's start
  // starts at its newest message; one changed since waits to be placed (see
  // findStart).
  noteSummary(sum) {
    // A listener of an earlier summary or message may have ended the
    // session: nothing is reported after 'ended'.
    if (this.ended) return;
    const { convId } = sum;
    if (this.positions.position(convId) === undefined) {
      if (sum.deliveredSeq > 0n) {
        // Where this device got to in an earlier session, even when a push
        // that came before the listing began the conversation: its origin
        // (0, or unplaced) would hand those messages over again, or skip
        // what came while the app was closed. Kept in the positions: a
        // reload lists only what changed since the cursor, so one with
        // nothing new is not listed again, and its next push would begin
        // it at its first message.
        this.positions.setPosition(convId, sum.deliveredSeq);
        this.handOver(this.seq.advance(convId, sum.deliveredSeq));
      } else if (!this.opts.startAtLatest) {
        this.handOver(this.seq.place(convId, 0n));
      } else if (this.changedSinceStart(sum)) {
        this.seq.hold(convId);
      } else if (this.seq.unplaced(convId) || this.seq.track(convId, sum.lastSeq)) {
        // Unchanged since the start, it starts at its newest message, also
        // when a late push of an older one came first.
        this.startAt(convId, sum.lastSeq);
        this.handOver(this.seq.place(convId, sum.lastSeq));
      }
    }
    this.passCleared(convId, sum.clearedSeq);
    if (sum.lastSeq > this.seq.position(convId) || this.seq.unplaced(convId)) {
      this.fills.add(convId);
    }
    this.emit('conv', sum);
  }

  // passCleared moves convId past the history the user cleared (clearConv,
  // here or on another device): the server returns none of it, so it is
  // passed over rather than fetched. Messages already handed over stay so.
  passCleared(convId, clearedSeq) {
    const pos = this.seq.position(convId);
    if (clearedSeq > 0n && pos !== null && clearedSeq > pos) {
      this.handOver(this.seq.skip(convId, clearedSeq));
    }
  }

  // startAt records where startAtLatest started convId, passing over the
  // history up to seq without handing it over: in the positions and, with
  // DELIVERED, on the server, as if handed over. Without it the device's
  // next session would know no position and start the conversation at its
  // newest message then, skipping what came in between. It runs before any
  // message of convId is handed over, so positions only grow.
  startAt(convId, seq) {
    if (seq <= 0n) return;
    this.positions.setPosition(convId, seq);
    const unsent = this.dirty.get(convId);
    if (unsent === undefined || unsent < seq) this.dirty.set(convId, seq);
  }

  // changedSinceStart reports whether the conversation's newest message was
  // stored after the device's start (see deviceStart), by the server's
  // clock.
  changedSinceStart(sum) {
    const at = sum.lastMessage ? sum.lastMessage.sendTimeMs : sum.updatedMs;
    return sum.lastSeq > 0n && at >= this.startMs;
  }

  scheduleAcks(conn) {
    this.later(this.opts.ackIntervalMs, () => {
      if (conn !== this.conn) return;
      this.flushAcks(conn);
      this.scheduleAcks(conn);
    });
  }

  // scheduleResync asks now and then which conversations changed, as after
  // a reconnect: a push lost with no later one in its conversation is
  // otherwise found only at the next reconnect.
  scheduleResync(conn) {
    this.later(this.opts.resyncIntervalMs, () => {
      if (conn !== this.conn) return;
      this.resume(conn).then(() => this.scheduleResync(conn),
        (err) => this.catchUpFailed(conn, err));
    });
  }

  // flushAcks sends the positions handed over since the last flush, and
  // returns a promise settled when that DELIVERED is answered, or null when
  // there was nothing to send. A server without DELIVERED is asked again
  // once noDelivered allows, with the positions gathered meanwhile: left
  // unreported, its position for the device stays behind, and the device's
  // next session on a store of its own hands the same messages over again.
  // final sends regardless of noDelivered (see lastAck).
  flushAcks(conn, final = false) {
    if (this.dirty.size === 0 || (this.noDelivered.active() && !final) || conn.closed) {
      return null;
    }
    const positions = [...this.dirty].map(([convId, seq]) => ({ convId, seq }));
    this.dirty.clear();
    return this.sendDelivered(conn, positions);
  }

  // sendDelivered sends positions in requests of at most
  // MAX_DELIVERED_POSITIONS, one after the other; from the first that
  // fails on, they are kept for a later flush. The positions gathered while
  // the server refused DELIVERED, one per conversation handed over, may be
  // many more than one request carries, which the server would refuse as
  // too large at every flush.
  async sendDelivered(conn, positions) {
    for (let i = 0; i < positions.length; i += MAX_DELIVERED_POSITIONS) {
      try {
        await conn.request(Op.DELIVERED,
          { positions: positions.slice(i, i + MAX_DELIVERED_POSITIONS) });
      } catch (err) {
        if (refusedAsUnknown(err)) this.noDelivered.refused(this.opts.resyncIntervalMs);
        this.keepDirty(positions.slice(i));
        return;
      }
      this.noDelivered.answered();
    }
  }

  // keepDirty puts positions not acknowledged back, to be sent with a later
  // flush; newer positions win.
  keepDirty(positions) {
    for (const p of positions) {
      const cur = this.dirty.get(p.convId);
      if (cur === undefined || cur < p.seq) this.dirty.set(p.convId, p.seq);
    }
  }

  // ---- sending ----

  /**
   * send queues one message to convId (any conversation) or toUserId (1:1)
   * and returns its outbox entry: {clientMsgId, convId, toUserId, text,
   * contentType, content, replyTo, mentions, mentionAll, state ('pending',
   * 'sent', 'failed'), error, ack, result}. result is a promise of the
   * SendResp. The message enters the 'message' stream from its ack, in its
   * conversation's order. replyTo quotes the message at that seq of the same
   * conversation; mentions are user ids of group members (parseMentions
   * finds them in a text) and mentionAll mentions everyone, which only the
   * group's owner and admins may.
   */
  send({
    convId = '', toUserId, text, content, contentType, clientMsgId = newClientMsgId(),
    replyTo, mentions, mentionAll = false,
  }) {
    const bytes = content instanceof Uint8Array ? content : utf8.encode(String(text ?? ''));
    const entry = {
      clientMsgId, convId, toUserId, text: text ?? '', content: bytes,
      contentType: contentType || (text !== undefined ? ContentType.TEXT : ContentType.BINARY),
      replyTo: replyTo ? BigInt(replyTo) : 0n,
      mentions: (mentions || []).map((id) => BigInt(id)), mentionAll: !!mentionAll,
      state: 'pending', error: null, ack: null, startMono: monotonicMs(), inflight: false,
    };
    entry.result = new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    entry.result.catch(() => {}); // failures are reported through 'outbox' too
    this.outbox.set(clientMsgId, entry);
    this.emit('outbox', entry);
    if (this.ended) {
      // An ended session sends nothing: the entry fails at once, for the
      // reason the session ended, and arms no deadline.
      this.failEntry(entry, this.ended);
      return entry;
    }
    this.armDeadline(entry);
    this.attemptSend(entry);
    return entry;
  }

  /** retry sends a failed entry again with the same client_msg_id. */
  retry(clientMsgId) {
    const e = this.outbox.get(clientMsgId);
    if (!e || e.state !== 'failed' || this.ended) return false;
    e.state = 'pending';
    e.error = null;
    e.backoff = 0;
    e.startMono = monotonicMs();
    this.emit('outbox', e);
    this.armDeadline(e);
    this.attemptSend(e, true);
    return true;
  }

  /** discard drops a failed entry from the outbox. */
  discard(clientMsgId) {
    const e = this.outbox.get(clientMsgId);
    if (!e || e.state !== 'failed') return;
    this.outbox.delete(clientMsgId);
    e.state = 'discarded';
    this.emit('outbox', e);
  }

  /** pending lists the outbox entries not yet acked, oldest first. */
  pending(convId) {
    return [...this.outbox.values()].filter((e) => !convId || e.convId === convId);
  }

  // armDeadline fails the entry if it is not acked in time, even with a
  // request in flight: a request lost on a silent network would otherwise
  // hold it for the request timeout. A late ack still turns it to 'sent'.
  armDeadline(e) {
    clearTimeout(e.deadline);
    e.deadline = setTimeout(() => {
      if (e.state === 'pending') {
        this.failEntry(e, new TimeoutError(`timed out after ${this.opts.sendTimeoutMs} ms`));
      }
    }, this.opts.sendTimeoutMs);
  }

  // attemptSend sends e on the current connection, unless an attempt is in
  // flight (force: a user's retry, which must not wait out a lost one).
  // Every attempt carries the same client_msg_id, so at most one is stored;
  // the first ack wins and later ones are ignored.
  attemptSend(e, force = false) {
    const conn = this.conn;
    if (e.state !== 'pending' || (e.inflight && !force) || !conn || conn.closed) return;
    const attempt = (e.attempts = (e.attempts || 0) + 1);
    e.inflight = true;
    const body = { clientMsgId: e.clientMsgId, contentType: e.contentType, content: e.content };
    if (e.replyTo) body.replyToSeq = e.replyTo;
    if (e.mentions.length) body.mentions = e.mentions;
    if (e.mentionAll) body.mentionAll = true;
    if (e.convId) body.convId = e.convId;
    else body.toUserId = e.toUserId;
    conn.request(Op.SEND, body).then((ack) => {
      if (e.state === 'sent' || e.state === 'discarded') return;
      e.inflight = false;
      clearTimeout(e.deadline);
      e.state = 'sent';
      e.error = null;
      e.ack = ack;
      e.convId = ack.convId;
      this.outbox.delete(e.clientMsgId);
      this.emit('outbox', e);
      e.resolve(ack);
      this.offer(this.ownMessage(e, ack));
    }, (err) => {
      if (attempt !== e.attempts) return; // a newer attempt owns the entry
      e.inflight = false;
      if (e.state !== 'pending') return;
      if (!this.sendAgain(conn, err) || monotonicMs() - e.startMono >= this.opts.sendTimeoutMs) {
        this.failEntry(e, err);
        return;
      }
      if (!conn.closed) {
        // BUSY, UNAVAILABLE or a timeout on a live connection: again later.
        e.backoff = Math.min((e.backoff || this.opts.minBackoffMs) * 2, this.opts.maxBackoffMs);
        this.later(jitter(e.backoff), () => this.attemptSend(e));
      } // else: serve() sends it on the next connection
    });
  }

  // sendAgain reports whether a failed send may succeed if repeated.
  sendAgain(conn, err) {
    if (err instanceof ResonanceError) return err.retryable;
    return conn.closed || err instanceof TimeoutError || err instanceof ClosedError;
  }

  failEntry(e, err) {
    clearTimeout(e.deadline);
    e.state = 'failed';
    e.error = err;
    this.emit('outbox', e);
    e.reject(err);
  }

  // ownMessage rebuilds the stored message from the ack of its send.
  ownMessage(e, ack) {
    return {
      msgId: ack.msgId, convId: ack.convId, seq: ack.seq, senderId: this.userId,
      clientMsgId: e.clientMsgId, contentType: e.contentType, content: e.content,
      sendTimeMs: ack.sendTimeMs, senderDevice: this.deviceId, recalled: false, editedMs: 0n,
      replyToSeq: e.replyTo, mentions: storedMentions(this.userId, e.mentions),
      mentionAll: e.mentionAll,
    };
  }

  // ---- requests ----

  /**
   * connection waits up to timeoutMs for a live connection and returns it,
   * for requests the Session does not wrap.
   */
  connection(timeoutMs = this.opts.requestTimeoutMs) {
    if (this.ended) return Promise.reject(this.ended);
    if (this.conn && !this.conn.closed) return Promise.resolve(this.conn);
    return new Promise((resolve, reject) => {
      const offs = [];
      const done = (fn, v) => {
        clearTimeout(timer);
        offs.forEach((off) => off());
        fn(v);
      };
      const timer = setTimeout(() => done(reject, new TimeoutError('offline')), timeoutMs);
      offs.push(this.on('connected', () => done(resolve, this.conn)));
      offs.push(this.on('ended', (err) => done(reject, err)));
    });
  }

  /** request sends one request on the current connection (waiting for one). */
  async request(op, body) {
    const conn = await this.connection();
    return conn.request(op, body);
  }

  // idempotent retries a request keyed by a client_msg_id after retryable
  // errors and lost connections, for a few attempts. A retry under the same
  // id settles an attempt whose answer was lost: the server answers it with
  // what that attempt did, or refuses it. Giving up with none settled, it
  // rejects with OutcomeUnknownError, the lost attempt's error as cause.
  async idempotent(op, body) {
    let backoff = this.opts.minBackoffMs;
    let lost = null; // the error of the latest attempt sent and not answered
    for (let attempt = 1; ; attempt++) {
      let conn;
      try {
        conn = await this.connection();
        return await conn.request(op, body);
      } catch (err) {
        if (conn && unanswered(err)) lost = err;
        const again = conn ? this.sendAgain(conn, err) : err instanceof TimeoutError;
        if (!again || attempt >= 5 || this.ended) throw stillUnknown(op, err, lost);
      }
      await new Promise((r) => setTimeout(r, jitter(backoff)));
      backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
    }
  }

  /**
   * conversations lists every conversation of the user (SYNC_CONVS from the
   * start), except those the user deleted (clearConv with hide) that have
   * nothing newer.
   */
  async conversations() {
    const out = [];
    let cursor = '';
    for (;;) {
      const resp = await this.request(Op.SYNC_CONVS, { cursor, limit: 200 });
      out.push(...resp.convs.filter((c) => !c.hidden));
      cursor = resp.cursor;
      if (!resp.hasMore || resp.convs.length === 0) return out;
    }
  }

  /**
   * history returns a page of convId older than beforeSeq (the latest page
   * when beforeSeq is 0n), oldest first: {messages, hasMore, lastSeq}.
   * Pages do not enter the 'message' stream.
   */
  history(convId, beforeSeq = 0n, limit = 30) {
    return this.request(Op.SYNC, { convId, beforeSeq: beforeSeq > 0n ? beforeSeq : MAX_SEQ, limit });
  }

  /** markRead moves the user's read position of convId to seq; resolves with {readSeq}. */
  markRead(convId, seq) {
    return this.request(Op.MARK_READ, { convId, seq });
  }

  /**
   * clearConv clears convId's history for the user on all devices: history
   * and the 'message' stream no longer bring messages up to upToSeq (0n:
   * the newest now), and the read position moves up to it. With hide the
   * chat also leaves the list ('notify' cleared with hidden on the user's
   * other connected devices, 'conv' with hidden at their next listing)
   * until a newer message comes. Others keep theirs. Resolves
   * with {clearedSeq}, which only grows.
   */
  async clearConv(convId, { upToSeq = 0n, hide = false } = {}) {
    const resp = await this.request(Op.CLEAR_CONV, { convId, upToSeq, hide });
    this.passCleared(convId, resp.clearedSeq);
    return resp;
  }

  /** getUser looks a user up by username, or by userId when username is empty. */
  getUser({ username = '', userId = 0n }) {
    return this.request(Op.GET_USER, { username, userId });
  }

  searchUsers(query, limit = 10) {
    return this.request(Op.SEARCH_USERS, { query, limit });
  }

  /**
   * createGroup creates a group of the user and memberIds; resolves with the
   * GroupChangeResp. The CREATE event enters the 'message' stream. It is
   * sent again under one client_msg_id after retryable errors and lost
   * answers, a few times; when it gives up with an attempt unanswered and
   * no answer since, it rejects with OutcomeUnknownError: the group may
   * exist (it then comes in the 'message' stream and conversations()), and
   * calling again would create a second one.
   */
  async createGroup(name, memberIds) {
    const ack = await this.idempotent(Op.CREATE_GROUP,
      { clientMsgId: newClientMsgId(), name, memberIds });
    this.want(ack.convId);
    return ack;
  }

  /**
   * manageGroup changes a group ({convId, action, userIds, name, role}; see
   * GroupAction), retried as createGroup is. OutcomeUnknownError means the
   * change may have been made: getGroup or the group's messages tell; a
   * second call is a new change (made twice, or refused, as a LEAVE).
   */
  async manageGroup({ convId, action, userIds = [], name = '', role = 0 }) {
    const ack = await this.idempotent(Op.MANAGE_GROUP,
      { clientMsgId: newClientMsgId(), convId, action, userIds, name, role });
    this.want(ack.convId || convId);
    return ack;
  }

  /**
   * react adds the user's emoji reaction to the message at seq of convId,
   * or with remove takes it back; resolves with the SendResp of the
   * REACTION event, which then enters the 'message' stream (apply it with
   * applyReaction). A reaction the user has, or a removal of one they lack,
   * changes nothing: duplicate is set and seq is 0n, and no event comes.
   * Retried as createGroup is; calling again after OutcomeUnknownError is
   * safe, for the reason just given.
   */
  async react(convId, seq, emoji, { remove = false } = {}) {
    const ack = await this.idempotent(Op.REACT,
      { clientMsgId: newClientMsgId(), convId, seq, emoji, remove });
    if (ack.seq > 0n) this.want(convId);
    return ack;
  }

  /**
   * recall withdraws the user's own message at seq of convId (RECALL); the
   * server takes it within its recall window (2 minutes by default) and
   * refuses it FORBIDDEN after, or for a message not the user's. Resolves
   * with the SendResp of the RECALL event, which then enters the 'message'
   * stream. Retried as createGroup is, under one client_msg_id; after
   * OutcomeUnknownError the message may be recalled, and a second call is
   * then refused FORBIDDEN.
   */
  async recall(convId, seq) {
    const ack = await this.idempotent(Op.RECALL, { clientMsgId: newClientMsgId(), convId, seq });
    this.want(convId);
    return ack;
  }

  /**
   * edit replaces the text of the user's own message at seq of convId
   * (EDIT) within the server's edit window (24 hours by default; FORBIDDEN
   * after). Resolves with the SendResp of the EDIT event, which then enters
   * the 'message' stream. Retried as recall is; calling again after
   * OutcomeUnknownError stores the same text again at worst.
   */
  async edit(convId, seq, text) {
    const ack = await this.idempotent(Op.EDIT, { clientMsgId: newClientMsgId(), convId, seq,
      contentType: ContentType.TEXT, content: utf8.encode(text) });
    this.want(convId);
    return ack;
  }

  /**
   * upload uploads a Blob or File in chunks and resolves with the FileRef
   * to send with sendFile; it resumes across reconnects. opts: name, mime,
   * width, height, caption, onProgress(sentBytes, size), signal (an
   * AbortSignal to cancel it). See files.js upload.
   */
  upload(blob, opts) {
    return upload(this, blob, opts);
  }

  /**
   * sendFile sends ref (from upload, or a FILE message the user can read:
   * a forward) as a FILE message, with caption when given, to {convId} or
   * {toUserId}; it is send with the FileRef as content, an outbox entry
   * (its file set to the ref sent).
   */
  sendFile({ convId = '', toUserId, replyTo }, ref, caption) {
    const file = caption ? { ...ref, caption } : ref;
    const e = this.send({ convId, toUserId, replyTo, contentType: ContentType.FILE,
      content: encodeFileRef(file) });
    e.file = file;
    return e;
  }

  /**
   * download fetches the file a FileRef names and resolves with a Blob of
   * its type, checked against its SHA-256; it goes on across reconnects.
   * NOT_FOUND: the user may not read it (any more). See files.js download.
   */
  download(ref, opts) {
    return download(this, ref, opts);
  }

  /**
   * listDevices lists the user's devices (LIST_DEVICES): {deviceId,
   * platform, lastLoginMs, online, current}, current marking this one. The
   * server records a token login again only ten minutes after the last.
   */
  async listDevices() {
    const resp = await this.request(Op.LIST_DEVICES, {});
    return resp.devices;
  }

  /**
   * signOutDevice signs one of the user's devices out (SIGN_OUT_DEVICE):
   * its tokens are revoked and its connections closed. This session's own
   * device is signed out with logout instead, which also clears the saved
   * tokens and ends the session. Safe to call again after a lost answer:
   * the server answers a second sign-out as the first.
   */
  signOutDevice(deviceId) {
    if (deviceId === this.deviceId) return this.logout();
    return this.request(Op.SIGN_OUT_DEVICE, { deviceId }).then(() => undefined);
  }

  /** getGroup returns a group's GroupInfo (members, owner, name). */
  getGroup(convId) {
    return this.request(Op.GET_GROUP, { convId });
  }

  /** typing tells the conversation's other members that this user is (or stopped) typing. */
  typing(convId, typing) {
    return this.request(Op.TYPING, { convId, typing });
  }

  /**
   * getPresence returns {presences} of userIds, at most MAX_PRESENCE_USERS
   * of them: more reject at once, unsent, with a ResonanceError TOO_LARGE,
   * as the server would refuse them.
   */
  async getPresence(userIds) {
    checkPresenceIds(Op.GET_PRESENCE, userIds);
    return this.request(Op.GET_PRESENCE, { userIds });
  }

  /**
   * watchPresence replaces the users whose presence changes come as
   * 'notify', and resolves with {presences} of them now. A server older
   * than WATCH_PRESENCE refuses it (UNSUPPORTED, or a gateway closing the
   * connection for it); the refusal is remembered as the SDK's own ops' are
   * (LackedOp), and meanwhile watchPresence rejects at once with
   * UNSUPPORTED, asking nothing. An app sends its set again on each
   * connection, which such a server would refuse every time, or close.
   * More than MAX_PRESENCE_USERS ids reject at once, unsent, with a
   * ResonanceError TOO_LARGE, as the server would refuse them.
   */
  async watchPresence(userIds) {
    checkPresenceIds(Op.WATCH_PRESENCE, userIds);
    if (this.noWatch.active()) {
      throw new ResonanceError(Op.WATCH_PRESENCE, ErrorCode.UNSUPPORTED,
        'refused by the server a while ago; asked again later');
    }
    const conn = await this.connection();
    try {
      const resp = await conn.request(Op.WATCH_PRESENCE, { userIds });
      this.noWatch.answered();
      return resp;
    } catch (err) {
      if (refusedAsUnknown(err)) this.noWatch.refused(this.opts.resyncIntervalMs);
      throw err;
    }
  }

  /**
   * changePassword changes the user's password (CHANGE_PASSWORD) on the
   * session's connection, waiting for one as request does, and resolves
   * with the ChangePasswordResp. The server checks oldPassword, refuses a
   * weak newPassword (8 to 128 bytes, not the username, not one character
   * repeated) with BAD_REQUEST, revokes the tokens of every device of the
   * user and signs the others out (CLOSE SIGNED_OUT); this device gets a
   * new pair in the answer, which the session saves in its positions as a
   * refresh's, so that its reconnects and a reload log in by it, and its
   * refresh schedule starts over from it. A session given a password
   * keeps newPassword for its password logins from then on.
   *
   * A refusal (INVALID_CREDENTIALS for a wrong oldPassword, BAD_REQUEST,
   * RATE_LIMITED) rejects with the ResonanceError and changes nothing. A
   * CHANGE_PASSWORD that was sent and got no answer (its connection
   * dropped, or it timed out) rejects with OutcomeUnknownError and is not
   * sent again: the password may have changed, and every token of the user
   * with it, or not. The session keeps its tokens and its password, and a
   * session given a password holds newPassword as unconfirmed
   * (passwordUnconfirmed) until a login settles it: if the change was made,
   * its tokens are refused at the next login and it logs in with
   * newPassword, which it keeps; if that is refused too, the change was not
   * made, and it drops newPassword and logs in with the old one at the next
   * attempt, on a new connection (a wrong password is a failed login to the
   * server, and the gateway closes a connection at its third). A login by
   * the old tokens likewise shows the change was not made and drops
   * newPassword. A session given no password has none to try: once its
   * tokens are refused it ends; log in with newPassword to find out
   * (refused: with oldPassword) and start a new Session with the one that
   * worked.
   */
  async changePassword(oldPassword, newPassword) {
    const conn = await this.connection();
    // One token change at a time: a REFRESH answered after the change
    // would save a pair the change revoked over the change's.
    this.changingPassword = true;
    let resp;
    try {
      await this.refreshing;
      resp = await conn.requestOnce(Op.CHANGE_PASSWORD, { oldPassword, newPassword });
    } catch (err) {
      // A refresh that fell due meanwhile was skipped: due again now.
      if (!this.refreshTimer && conn === this.conn && !conn.closed) this.scheduleRefresh(conn);
      // Made or not, the next login finds out (see login).
      if (err instanceof OutcomeUnknownError && this.opts.password) {
        this.unconfirmed = newPassword;
      }
      throw err;
    } finally {
      this.changingPassword = false;
    }
    this.passwordChanged(conn, resp, newPassword);
    return resp;
  }

  /**
   * passwordUnconfirmed is true from a changePassword whose outcome is
   * unknown until a login settles it: the session has not found out yet
   * whether the new password or the old one is the user's.
   */
  get passwordUnconfirmed() {
    return this.unconfirmed !== '';
  }

  // passwordChanged saves the pair of an answered CHANGE_PASSWORD as a
  // refresh's, every part of it: the refresh token kept before is revoked.
  // Not after logout, which cleared the saved login for good.
  passwordChanged(conn, resp, newPassword) {
    if (this.opts.password) {
      this.opts.password = newPassword;
      this.unconfirmed = '';
    }
    if (this.signedOut) return;
    const now = this.positions.tokens() || {};
    this.positions.setTokens(withoutUnsure({ ...now, access: resp.token,
      refresh: resp.refreshToken, accessExpiryMs: Number(resp.tokenExpiresMs) }));
    if (conn === this.conn && !conn.closed) this.scheduleRefresh(conn);
  }

  /**
   * deleteAccount deletes the user's account for good (DELETE_ACCOUNT) on
   * the session's connection, waiting for one as request does; password is
   * the account's, asked again. The server leaves the user's groups
   * (handing owned ones over), signs every device out and closes the
   * user's other connections with CLOSE ACCOUNT_DELETED, this one after the
   * answer. Once answered, the session forgets its saved tokens and
   * password and ends with a SessionEndedError whose accountDeleted is
   * true. A wrong password rejects with the ResonanceError
   * INVALID_CREDENTIALS (tries are rate-limited as password logins are),
   * and the session goes on. A DELETE_ACCOUNT that was sent and got no
   * answer rejects with OutcomeUnknownError: the account may be gone or
   * not; if it is, the session ends at its next login.
   */
  async deleteAccount(password) {
    const conn = await this.connection();
    try {
      await conn.requestOnce(Op.DELETE_ACCOUNT, { password });
    } catch (err) {
      // Only a deleted account's connection is closed so: its answer was
      // overtaken, but the account is gone.
      if (err?.close?.reason !== CloseReason.ACCOUNT_DELETED) throw err;
    }
    this.signedOut = true;
    this.opts.password = '';
    this.positions.setTokens(null);
    this.end(new SessionEndedError('account deleted', { accountDeleted: true }));
  }

  /**
   * searchMessages asks for one page of the messages the user may read
   * whose text contains query, ignoring case (a FILE by its name or
   * caption), in convId alone or, when it is empty, in all of the user's
   * conversations: {messages, nextCursor}, messages newest first, without
   * reactions. nextCursor is 0n when the search reached the oldest message
   * the user may read; else pass it as cursor for older matches. The server
   * reads a bounded part of the history per page, so a page may hold fewer
   * than limit matches, even none, with a nextCursor to go on. limit 0
   * means 20, over 50 means 50. A query empty after trimming or over 64
   * characters is refused BAD_REQUEST, and searches spend a per-user budget
   * (RATE_LIMITED). Pages do not enter the 'message' stream.
   */
  async searchMessages({ query, convId = '', cursor = 0n, limit = 0 }) {
    const resp = await this.request(Op.SEARCH_MESSAGES, { query, convId, cursor, limit });
    return { messages: resp.messages, nextCursor: resp.nextCursor };
  }

  /** readCounts returns how many members read up to each of seqs. */
  readCounts(convId, seqs) {
    return this.request(Op.READ_COUNTS, { convId, seqs });
  }
}

// checkPresenceIds throws, for a presence request over more users than the
// server takes, the refusal the server would answer, so that a request sure
// to be refused as a whole is not sent.
function checkPresenceIds(op, userIds) {
  if (userIds.length <= MAX_PRESENCE_USERS) return;
  throw new ResonanceError(op, ErrorCode.TOO_LARGE,
    `${userIds.length} user ids, over the ${MAX_PRESENCE_USERS} the server takes (not sent)`);
}

// stillUnknown is what idempotent rejects with when it gives up after err:
// err itself when no attempt went unanswered (lost is null) or a refusal
// that is final settled them, else an OutcomeUnknownError. A retryable
// refusal (BUSY, UNAVAILABLE) or RATE_LIMITED settles nothing: the server
// shed that attempt unacted and may have acted on the lost one. The Go
// SDK's stillUnknown decides alike.
function stillUnknown(op, err, lost) {
  const settles = err instanceof ResonanceError && !err.retryable &&
    err.code !== ErrorCode.RATE_LIMITED;
  if (!lost || settles) return err;
  return new OutcomeUnknownError(op, lost);
}

/**
 * register creates an account over a short-lived connection to url and
 * resolves with {userId}. A REGISTER that was sent and got no answer (its
 * connection dropped, or it timed out) rejects with OutcomeUnknownError:
 * the account may have been created or not; log in to find out before
 * registering again, which would be refused as taken if it was. A refusal
 * rejects with the ResonanceError, and a gateway never reached with the
 * ClosedError or TimeoutError.
 */
export async function register(url, username, password) {
  const conn = await Connection.open(url);
  try {
    return await conn.requestOnce(Op.REGISTER, { username, password });
  } finally {
    conn.close();
  }
}
