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
//
// The class is in four files, as the Go SDK's is: its life and connections
// here, and mixed in (mixin) its catch-up (catchup.js), its sending
// (sending.js) and its requests (requests.js).

import {
  ClosedError, Connection, OutcomeUnknownError, ResonanceError, TimeoutError,
} from './connection.js';
import { DEFAULT_LIMITS, limitsOf } from './limits.js';
import { MemoryPositions } from './positions.js';
import { Sequencer } from './sequencer.js';
import { CloseReason, ErrorCode, Op } from './schema.js';
import { Emitter } from './emitter.js';
import {
  FATAL_CLOSES, FINAL_ACK_WAIT_MS, jitter, LackedOp, monotonicMs, SessionEndedError, STABLE_MS,
  State, UnconfirmedRefusedError, UnconfirmedSignedOutError, withoutUnsure,
} from './sessiondefs.js';
import { catchUpMethods } from './catchup.js';
import { sendingMethods } from './sending.js';
import { requestMethods } from './requests.js';

export {
  State, SessionEndedError, MAX_PRESENCE_USERS, LackedOp, jitter, newClientMsgId,
} from './sessiondefs.js';

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
}

// mixin adds methods' properties to cls's prototype as a class body would
// define them: getters as getters, none enumerable.
function mixin(cls, ...methods) {
  for (const m of methods) {
    const props = Object.getOwnPropertyDescriptors(m);
    for (const p of Object.values(props)) p.enumerable = false;
    Object.defineProperties(cls.prototype, props);
  }
}

mixin(Session, catchUpMethods, sendingMethods, requestMethods);

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
