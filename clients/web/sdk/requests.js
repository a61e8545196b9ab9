// Session's requests (mixed into Session, session.js): what the
// application asks of the server beyond sending, each over the live
// connection, waited for up to requestTimeoutMs.

import { OutcomeUnknownError, ResonanceError, TimeoutError, unanswered } from './connection.js';
import { download, encodeFileRef, upload } from './files.js';
import { CloseReason, ContentType, ErrorCode, Op } from './schema.js';
import {
  jitter, MAX_PRESENCE_USERS, MAX_SEQ, newClientMsgId, refusedAsUnknown, SessionEndedError, utf8,
  withoutUnsure,
} from './sessiondefs.js';

export const requestMethods = {
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
  },

  /** request sends one request on the current connection (waiting for one). */
  async request(op, body) {
    const conn = await this.connection();
    return conn.request(op, body);
  },

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
  },

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
  },

  /**
   * history returns a page of convId older than beforeSeq (the latest page
   * when beforeSeq is 0n), oldest first: {messages, hasMore, lastSeq}.
   * Pages do not enter the 'message' stream.
   */
  history(convId, beforeSeq = 0n, limit = 30) {
    return this.request(Op.SYNC,
      { convId, beforeSeq: beforeSeq > 0n ? beforeSeq : MAX_SEQ, limit });
  },

  /** markRead moves the user's read position of convId to seq; resolves with {readSeq}. */
  markRead(convId, seq) {
    return this.request(Op.MARK_READ, { convId, seq });
  },

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
  },

  /** getUser looks a user up by username, or by userId when username is empty. */
  getUser({ username = '', userId = 0n }) {
    return this.request(Op.GET_USER, { username, userId });
  },

  searchUsers(query, limit = 10) {
    return this.request(Op.SEARCH_USERS, { query, limit });
  },

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
  },

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
  },

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
  },

  /**
   * pin pins the message at seq of convId for every member (PIN), or with
   * unpin unpins it; in a group only its owner and admins may (FORBIDDEN
   * otherwise), and a conversation holds at most limits.maxPins (TOO_LARGE).
   * Resolves with the SendResp of the PIN event, which then enters the
   * 'message' stream (apply it with applyPin). Pinning a pinned message, or
   * unpinning one that is not, changes nothing: duplicate is set and seq is
   * 0n, and no event comes. Retried as react is.
   */
  async pin(convId, seq, { unpin = false } = {}) {
    const ack = await this.idempotent(Op.PIN,
      { clientMsgId: newClientMsgId(), convId, seq, unpin });
    if (ack.seq > 0n) this.want(convId);
    return ack;
  },

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
  },

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
  },

  /**
   * upload uploads a Blob or File in chunks and resolves with the FileRef
   * to send with sendFile; it resumes across reconnects. opts: name, mime,
   * width, height, caption, onProgress(sentBytes, size), signal (an
   * AbortSignal to cancel it). See files.js upload.
   */
  upload(blob, opts) {
    return upload(this, blob, opts);
  },

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
  },

  /**
   * download fetches the file a FileRef names and resolves with a Blob of
   * its type, checked against its SHA-256; it goes on across reconnects.
   * NOT_FOUND: the user may not read it (any more). See files.js download.
   */
  download(ref, opts) {
    return download(this, ref, opts);
  },

  /**
   * listDevices lists the user's devices (LIST_DEVICES): {deviceId,
   * platform, lastLoginMs, online, current}, current marking this one. The
   * server records a token login again only ten minutes after the last.
   */
  async listDevices() {
    const resp = await this.request(Op.LIST_DEVICES, {});
    return resp.devices;
  },

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
  },

  /** getGroup returns a group's GroupInfo (members, owner, name). */
  getGroup(convId) {
    return this.request(Op.GET_GROUP, { convId });
  },

  /** typing tells the conversation's other members that this user is (or stopped) typing. */
  typing(convId, typing) {
    return this.request(Op.TYPING, { convId, typing });
  },

  /**
   * getPresence returns {presences} of userIds, at most MAX_PRESENCE_USERS
   * of them: more reject at once, unsent, with a ResonanceError TOO_LARGE,
   * as the server would refuse them.
   */
  async getPresence(userIds) {
    checkPresenceIds(Op.GET_PRESENCE, userIds);
    return this.request(Op.GET_PRESENCE, { userIds });
  },

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
  },

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
  },

  /**
   * passwordUnconfirmed is true from a changePassword whose outcome is
   * unknown until a login settles it: the session has not found out yet
   * whether the new password or the old one is the user's.
   */
  get passwordUnconfirmed() {
    return this.unconfirmed !== '';
  },

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
  },

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
  },

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
  },

  /** readCounts returns how many members read up to each of seqs. */
  readCounts(convId, seqs) {
    return this.request(Op.READ_COUNTS, { convId, seqs });
  },
};

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
