// A fake gateway for the Session's unit tests in Node: a stand-in for the
// browser's WebSocket class that talks to an in-memory server speaking the
// frame protocol, with controls to push (or push a stored message again),
// close with a CLOSE frame, lose replies, fail LOGINs, answer SYNC_CONVS
// late, refuse ops as an older server does, look at each request before it
// is answered (onRequest), or be unreachable. It rotates refresh tokens as
// the server does (a lost answer's retry taken once within a grace), and
// changes the password as it does (the old one checked, a weak new one
// refused, every token revoked and the other connections signed out). It
// stores one user's messages per conversation; it is no model of the real
// server beyond what the tests need.

import { decodeMessage, encodeFrame, FLAG_ERROR } from '../sdk/frame.js';
import { decodeStruct, encodeStruct } from '../sdk/thrift.js';
import { CloseReason, ErrorCode, Op, requestBodies, schemas } from '../sdk/schema.js';

// MAX_DELIVERED_POSITIONS is the most positions the server takes in one
// DELIVERED; it answers TOO_LARGE beyond.
const MAX_DELIVERED_POSITIONS = 500;

export class FakeGateway {
  constructor() {
    this.convs = new Map(); // conv id -> [Message]
    this.conns = [];
    this.logins = []; // LoginReq bodies, in order
    this.logouts = 0;
    this.delivered = new Map(); // conv id -> highest DELIVERED seq
    this.sends = new Map(); // client msg id -> SendResp
    this.pins = new Map(); // conv id -> pinned seqs, most recently pinned first
    this.loseSendAcks = 0; // SEND acks to drop (the message is stored)
    this.busySends = 0; // SENDs to refuse BUSY (nothing stored), as an overloaded server does
    // failLogins is how many of the next LOGINs fail with UNAVAILABLE, as a
    // server whose account store is briefly down answers: a reconnect
    // attempt that fails and is tried again.
    this.failLogins = 0;
    // limits, when set, is the LoginResp.limits every LOGIN reports; unset,
    // none are, as a server older than the field answers.
    this.limits = undefined;
    // suspended refuses every LOGIN with ACCOUNT_SUSPENDED, recorded in
    // logins, as the server answers for an account its operator suspended.
    this.suspended = false;
    this.joinedAt = new Map(); // conv id -> first seq the user may read
    // cleared maps conv id -> {clearedSeq, hiddenSeq}, the user's
    // CLEAR_CONV state: SYNC returns nothing up to clearedSeq; hiddenSeq,
    // when not 0n, is a delete that holds until a newer message.
    this.cleared = new Map();
    this.convsGate = null; // while set, a promise SYNC_CONVS waits for
    // unsupported holds the ops answered UNSUPPORTED, as a server older
    // than them answers; delete one to upgrade the server.
    this.unsupported = new Set();
    // refused maps ops to the code every request of them is refused with,
    // unhandled, as a loaded server (BUSY) or a spent budget (RATE_LIMITED).
    this.refused = new Map();
    // unknown holds the ops closed on with PROTOCOL_ERROR, as a gateway
    // older than them does (with no reconnect delay here, for speed).
    this.unknown = new Set();
    this.changed = new Map(); // conv id -> version of its last change, for SYNC_CONVS cursors
    // signedOut, once set (signOutLost), answers every request of a
    // logged-in connection TOKEN_INVALID, REFRESH included, as the server
    // answers a device signed out while its close was lost; with
    // signedOutCloses the CLOSE SIGNED_OUT the gateway sends behind the
    // answer follows, in a WebSocket message of its own.
    this.signedOut = false;
    this.signedOutCloses = true;
    // onRequest(ws, op, req), when set, sees each request first; true
    // leaves it unanswered (the test may close ws), a promise delays the
    // answer until it resolves.
    this.onRequest = null;
    // onLogin(ws, req), when set, sees each LOGIN as it is answered, with
    // the connection it came on.
    this.onLogin = null;
    // unreachable, while set, leaves new connections opening until the
    // client gives up, as an address that drops every packet does.
    this.unreachable = false;
    // devices is what LIST_DEVICES answers, less signedOutDevices, the
    // device ids SIGN_OUT_DEVICE named, in order.
    this.devices = [];
    this.signedOutDevices = [];
    this.userId = 1n;
    this.version = 0;
    // searchScan is the most messages a SEARCH_MESSAGES page reads, as the
    // server's bound; a page may then hold no match and a cursor.
    this.searchScan = Infinity;
    // refuseErrorOnly is how many of the next connections fail with an
    // 'error' event alone, as Node 20's WebSocket fails a refused one.
    this.refuseErrorOnly = 0;
    // The device's refresh token, rotated at each REFRESH as the server
    // rotates it: refreshPrev, rotated away at refreshRotatedMs, is taken
    // back once within refreshGraceMs (a retry of a REFRESH whose answer was
    // lost); any other return of it is reuse, which signs the device out.
    this.refreshToken = 'refresh-1';
    this.refreshPrev = '';
    this.refreshRotatedMs = 0;
    this.refreshGraceMs = 30_000;
    this.issued = 1; // token pairs handed out
    this.accessTokens = new Set(['access-1']); // the access tokens LOGIN takes
    // revoked holds the tokens of the device a sign-out, a password change
    // or a refresh token's reuse revoked (revokeTokens): a LOGIN with one is
    // refused TOKEN_INVALID, and the gateway's CLOSE SIGNED_OUT follows in a
    // WebSocket message of its own. Tokens dropped from accessTokens alone
    // read as expired: refused, and the connection stays open.
    this.revoked = new Set();
    this.refreshes = []; // the refresh tokens REFRESH was given, in order
    this.reused = 0; // rotated-away refresh tokens presented out of their grace
    this.tokenLifeMs = 3_600_000; // access token life of the pairs REFRESH and CHANGE_PASSWORD give
    // The user's name and password: a password LOGIN or CHANGE_PASSWORD
    // with another password is refused INVALID_CREDENTIALS.
    this.username = 'me';
    this.password = 'secret-pw';
    this.passwordChanges = []; // the ChangePasswordReq bodies, answered or not
    // files holds the uploads by file id (see upload); uploads lists every
    // UploadReq, answered or not. closeAfterChunks, when above 0, counts
    // down the chunks stored; the one that reaches 0 is stored and its
    // connection closed unanswered, as a network lost under an upload
    // does. maxFileSize is the server's file size limit; unreadable holds
    // the file ids DOWNLOAD refuses NOT_FOUND, as for a recalled message's
    // file. corrupt, when set, makes DOWNLOAD answer a wrong sha256.
    this.files = new Map();
    this.uploads = [];
    this.closeAfterChunks = 0;
    this.maxFileSize = 25 << 20;
    this.unreadable = new Set();
    this.corrupt = false;
    this.downloads = 0; // DOWNLOAD requests answered
    const gw = this;
    // WebSocket is the class the SDK constructs; each instance is one
    // connection to this gateway.
    this.WebSocket = class {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.binaryType = 'blob';
        gw.conns.push(this);
        if (gw.unreachable) return;
        if (gw.refuseErrorOnly > 0) {
          // Refused as Node 20's WebSocket reports it: 'error', and no
          // 'close' after it, not even when close() is called.
          gw.refuseErrorOnly--;
          this.close = () => { this.readyState = 2; };
          setTimeout(() => this.onerror?.({}), 0);
          return;
        }
        setTimeout(() => {
          if (this.readyState !== 0) return;
          this.readyState = 1;
          this.onopen?.();
        }, 0);
      }

      send(data) {
        if (this.readyState !== 1) return;
        const { header, body } = decodeMessage(data, 1 << 20);
        // In a later task, as a WebSocket message comes: a client that
        // loops on requests must not starve the tests' timers.
        setTimeout(() => gw.handle(this, header, body), 0);
      }

      close(code = 1000) {
        if (this.readyState >= 2) return;
        this.readyState = 3;
        setTimeout(() => this.onclose?.({ code }), 0);
      }
    };
  }

  /** add stores a message from user 2 in convId and returns it. */
  add(convId, text) {
    const list = this.convs.get(convId) || [];
    this.convs.set(convId, list);
    const m = {
      msgId: BigInt(1000 + this.version), convId, seq: BigInt(list.length + 1), senderId: 2n,
      clientMsgId: `srv-${this.version}`, contentType: 1, content: new TextEncoder().encode(text),
      sendTimeMs: BigInt(Date.now()), senderDevice: 'd', recalled: false, editedMs: 0n,
    };
    this.version++;
    this.changed.set(convId, this.version);
    list.push(m);
    return m;
  }

  /**
   * change serves a RECALL or an EDIT of the user's own message as the
   * server does for what the tests look at: FORBIDDEN for another's or a
   * recalled one, the event stored (RecallEvent or EditEvent), the target
   * changed, a retry of one client_msg_id answered with its first ack. No
   * windows.
   */
  change(op, req) {
    const list = this.convs.get(req.convId);
    const target = list && list[Number(req.seq) - 1];
    if (!target) return ErrorCode.NOT_FOUND;
    const first = this.sends.get(req.clientMsgId);
    if (first) return { ...first, duplicate: true };
    if (target.senderId !== this.userId || target.recalled) return ErrorCode.FORBIDDEN;
    const m = this.add(req.convId, '');
    m.senderId = this.userId;
    m.clientMsgId = req.clientMsgId;
    if (op === Op.RECALL) {
      Object.assign(target, { recalled: true, content: new Uint8Array(0) });
      m.contentType = 4;
      m.content = encodeStruct(schemas.RecallEvent, { seq: req.seq, msgId: target.msgId });
    } else {
      Object.assign(target, { content: req.content, editedMs: m.sendTimeMs });
      m.contentType = 5;
      m.content = encodeStruct(schemas.EditEvent, { seq: req.seq, msgId: target.msgId,
        contentType: req.contentType, content: req.content });
    }
    const ack = { msgId: m.msgId, convId: m.convId, seq: m.seq, sendTimeMs: m.sendTimeMs };
    this.sends.set(req.clientMsgId, ack);
    return ack;
  }

  /**
   * react serves a REACT of the user's as the server does for what the
   * tests look at: a REACTION event stored, the target's reactions
   * updated, a reaction that changes nothing answered duplicate with seq
   * 0n, a retry of one client_msg_id with its first ack. No limits.
   */
  react(req) {
    const list = this.convs.get(req.convId);
    const target = list && list[Number(req.seq) - 1];
    if (!target) return ErrorCode.NOT_FOUND;
    if (target.contentType !== 1 && target.contentType !== 2) return ErrorCode.BAD_REQUEST;
    const first = this.sends.get(req.clientMsgId);
    if (first) return { ...first, duplicate: true };
    const reactions = target.reactions || [];
    const r = reactions.find((x) => x.emoji === req.emoji);
    const has = !!r && r.userIds.includes(this.userId);
    if (has !== req.remove) {
      return { msgId: 0n, convId: req.convId, seq: 0n, sendTimeMs: BigInt(Date.now()),
        duplicate: true };
    }
    if (req.remove) {
      r.count -= 1;
      r.userIds = r.userIds.filter((id) => id !== this.userId);
      target.reactions = reactions.filter((x) => x.count > 0);
    } else if (r) {
      r.count += 1;
      r.userIds.push(this.userId);
    } else {
      target.reactions = [...reactions, { emoji: req.emoji, count: 1, userIds: [this.userId] }];
    }
    const m = this.add(req.convId, '');
    Object.assign(m, { senderId: this.userId, clientMsgId: req.clientMsgId, contentType: 6,
      content: encodeStruct(schemas.ReactionEvent,
        { seq: req.seq, msgId: target.msgId, emoji: req.emoji, removed: req.remove }) });
    const ack = { msgId: m.msgId, convId: m.convId, seq: m.seq, sendTimeMs: m.sendTimeMs };
    this.sends.set(req.clientMsgId, ack);
    return ack;
  }

  /**
   * pin serves a PIN of the user's as the server does for what the tests
   * look at: a PIN event stored, the conversation's pins updated, a pin
   * that changes nothing answered duplicate with seq 0n, a retry of one
   * client_msg_id with its first ack. No limits, no roles.
   */
  pin(req) {
    const list = this.convs.get(req.convId);
    const target = list && list[Number(req.seq) - 1];
    if (!target) return ErrorCode.NOT_FOUND;
    if (![1, 2, 7].includes(target.contentType)) return ErrorCode.BAD_REQUEST;
    const first = this.sends.get(req.clientMsgId);
    if (first) return { ...first, duplicate: true };
    const pinned = this.pins.get(req.convId) || [];
    if (pinned.includes(req.seq) !== req.unpin) {
      return { msgId: 0n, convId: req.convId, seq: 0n, sendTimeMs: BigInt(Date.now()),
        duplicate: true };
    }
    const rest = pinned.filter((seq) => seq !== req.seq);
    this.pins.set(req.convId, req.unpin ? rest : [req.seq, ...rest]);
    const m = this.add(req.convId, '');
    Object.assign(m, { senderId: this.userId, clientMsgId: req.clientMsgId, contentType: 8,
      content: encodeStruct(schemas.PinEvent,
        { seq: req.seq, msgId: target.msgId, unpinned: req.unpin }) });
    const ack = { msgId: m.msgId, convId: m.convId, seq: m.seq, sendTimeMs: m.sendTimeMs };
    this.sends.set(req.clientMsgId, ack);
    return ack;
  }

  /**
   * join makes the user a member of convId from its next message on, as
   * the ADD event of a member added later: SYNC returns nothing older.
   */
  join(convId) {
    this.joinedAt.set(convId, BigInt((this.convs.get(convId) || []).length + 1));
    this.changed.set(convId, ++this.version);
  }

  /**
   * holdSyncConvs leaves SYNC_CONVS unanswered until release is called; the
   * listing then reports the conversations as they are at release, as a
   * loaded server answering late does.
   */
  holdSyncConvs() {
    let release;
    this.convsGate = new Promise((resolve) => { release = resolve; });
    return () => {
      this.convsGate = null;
      release();
    };
  }

  /**
   * repush pushes the stored message seq of convId again to every live
   * connection, as a push redelivered after a server failure comes: late,
   * and to connections that logged in after the message was stored.
   */
  repush(convId, seq) {
    const m = this.convs.get(convId)[Number(seq) - 1];
    for (const ws of this.live) this.push(ws, m);
  }

  // readable is what the user may read of convId: since they joined, and
  // after what they cleared.
  readable(convId) {
    const from = this.joinedAt.get(convId) || 1n;
    const cleared = this.cleared.get(convId)?.clearedSeq || 0n;
    return this.convs.get(convId).filter((m) => m.seq >= from && m.seq > cleared);
  }

  /**
   * clear clears convId's history up to upToSeq (0n: the newest) for the
   * user, as CLEAR_CONV does, from this tab or another device: only
   * forward, and a change for SYNC_CONVS. Returns the cleared seq.
   */
  clear(convId, upToSeq = 0n, hide = false) {
    const last = BigInt((this.convs.get(convId) || []).length);
    const target = upToSeq > 0n && upToSeq < last ? upToSeq : last;
    const st = this.cleared.get(convId) || { clearedSeq: 0n, hiddenSeq: 0n };
    if (target > st.clearedSeq) st.clearedSeq = target;
    st.hiddenSeq = hide ? st.clearedSeq : 0n;
    this.cleared.set(convId, st);
    this.changed.set(convId, ++this.version);
    return st.clearedSeq;
  }

  // hidden reports whether the user deleted convId and nothing newer came.
  hidden(convId) {
    const st = this.cleared.get(convId);
    return !!st && st.hiddenSeq > 0n && BigInt(this.convs.get(convId).length) <= st.hiddenSeq;
  }

  // syncPage answers a SYNC: forward after afterSeq, or backward the newest
  // before beforeSeq; both oldest first.
  syncPage(req) {
    const list = this.readable(req.convId);
    const limit = req.limit || 50;
    if (req.beforeSeq > 0n) {
      const older = list.filter((m) => m.seq < req.beforeSeq);
      const page = older.slice(-limit);
      return { messages: page, hasMore: older.length > page.length };
    }
    const newer = list.filter((m) => m.seq > req.afterSeq);
    const page = newer.slice(0, limit);
    return { messages: page, hasMore: newer.length > page.length };
  }

  // listing answers SYNC_CONVS: the conversations changed since the
  // cursor (a version; empty: all), oldest change first, limit a page.
  listing(req) {
    const since = req.cursor === '' ? 0 : Number(req.cursor);
    const all = [...this.convs].filter(([id]) => this.changed.get(id) > since)
      .filter(([id]) => since > 0 || !this.hidden(id)) // a new device lists no deleted chat
      .sort(([a], [b]) => this.changed.get(a) - this.changed.get(b));
    const page = all.slice(0, req.limit || 50);
    const hasMore = all.length > page.length;
    return { cursor: String(hasMore ? this.changed.get(page.at(-1)[0]) : this.version), hasMore,
      convs: page.map(([convId, list]) => {
        const clearedSeq = this.cleared.get(convId)?.clearedSeq || 0n;
        const last = list.at(-1);
        return { convId, type: 1, lastSeq: BigInt(list.length),
          lastMessage: last && last.seq > clearedSeq ? last : null,
          deliveredSeq: this.delivered.get(convId) || 0n, clearedSeq,
          hidden: this.hidden(convId),
          pinnedSeqs: (this.pins.get(convId) || []).filter((seq) => seq > clearedSeq) };
      }) };
  }

  get live() {
    return this.conns.filter((c) => c.readyState === 1);
  }

  frame(ws, op, requestId, schema, body, flags = 0) {
    ws.onmessage?.({ data: encodeFrame(op, flags, requestId, encodeStruct(schema, body)).buffer });
  }

  push(ws, m) {
    this.frame(ws, Op.PUSH, 0, schemas.PushMsg, { message: m });
  }

  /**
   * signOutLost signs the device out as another device would, its tokens
   * revoked, while the close of its connections is lost: they stay open,
   * and their requests are refused (signedOut).
   */
  signOutLost() {
    this.revokeTokens();
    this.refreshToken = null;
    this.refreshPrev = null;
    this.signedOut = true;
  }

  /**
   * revokeTokens revokes every token of the device, access and refresh, as
   * a sign-out from another device does; connections are left as they are.
   */
  revokeTokens() {
    for (const t of [...this.accessTokens, this.refreshToken, this.refreshPrev]) {
      if (t) this.revoked.add(t);
    }
    this.accessTokens.clear();
  }

  /** closeWith sends CLOSE and closes, as the gateway does. */
  closeWith(ws, reason, reconnectAfterMs) {
    this.frame(ws, Op.CLOSE, 0, schemas.CloseMsg, { reason, message: 'test', reconnectAfterMs });
    ws.close(1000);
  }

  /**
   * rotate exchanges a refresh token for a new pair, as the server does,
   * and returns the RefreshResp; 'reuse' when the token was rotated away
   * and may not come back (the device is to be signed out), null when it is
   * unknown. A test calls it to have the server act on a REFRESH whose
   * answer it then loses.
   */
  rotate(token) {
    const now = Date.now();
    if (token === this.refreshToken) {
      this.refreshPrev = token;
      this.refreshRotatedMs = now;
    } else if (token === this.refreshPrev && this.refreshRotatedMs > 0 &&
        now - this.refreshRotatedMs < this.refreshGraceMs) {
      // A retry of a rotation whose answer was lost, once: the token that
      // answer carried is rotated away in its place, with no retry.
      this.refreshPrev = this.refreshToken;
      this.refreshRotatedMs = 0;
    } else if (token === this.refreshPrev) {
      return 'reuse';
    } else {
      return null;
    }
    return this.issue();
  }

  // issue makes a new pair the device's and returns it as the IDL's
  // RefreshResp and ChangePasswordResp carry it.
  issue() {
    this.issued++;
    this.refreshToken = `refresh-${this.issued}`;
    const access = `access-${this.issued}`;
    this.accessTokens.add(access);
    const expires = BigInt(Date.now() + this.tokenLifeMs);
    return { token: access, tokenExpiresMs: expires, refreshToken: this.refreshToken,
      refreshExpiresMs: expires * 2n };
  }

  /**
   * changePassword acts on a ChangePasswordReq from ws as the server does
   * and returns the ChangePasswordResp, or the ErrorCode it is refused
   * with: a weak new password (the server's rules: 8 to 128 bytes, not
   * the username, not one repeated character) before the old one is
   * checked. It revokes every token of the user and closes the user's
   * other connections with SIGNED_OUT. A test calls it to have the server
   * act on a CHANGE_PASSWORD whose answer it then loses.
   */
  changePassword(ws, req) {
    const bytes = new TextEncoder().encode(req.newPassword).length;
    const weak = bytes < 8 || bytes > 128 ||
      req.newPassword.toLowerCase() === this.username.toLowerCase() ||
      [...req.newPassword].every((c) => c === req.newPassword[0]);
    if (weak) return ErrorCode.BAD_REQUEST;
    if (req.oldPassword !== this.password) return ErrorCode.INVALID_CREDENTIALS;
    this.password = req.newPassword;
    this.revokeTokens();
    this.refreshPrev = '';
    this.refreshRotatedMs = 0;
    for (const other of this.live) {
      if (other !== ws) this.closeWith(other, CloseReason.SIGNED_OUT, -1);
    }
    return this.issue();
  }

  /**
   * upload serves an UPLOAD as the server does for what the tests look at
   * (docs/protocol.md, Files): a start with size, sha256, mime and name
   * and maybe the first chunk, chunks at next_offset stored and earlier
   * ones ignored, a chunk past it BAD_REQUEST, the bytes hashed once all
   * are in; it resolves with the UploadResp or the ErrorCode.
   */
  async upload(ws, req) {
    if (req.data.length > 32768) return ErrorCode.TOO_LARGE;
    let f = this.files.get(req.fileId);
    if (!req.fileId) {
      if (req.size > BigInt(this.maxFileSize)) return ErrorCode.TOO_LARGE;
      if (req.size <= 0n || req.sha256.length !== 32 || !req.name || !req.mime) {
        return ErrorCode.BAD_REQUEST;
      }
      f = { fileId: (this.files.size + 1).toString(16).padStart(32, '0'), size: Number(req.size),
        sha256: req.sha256, mime: req.mime, name: req.name, bytes: new Uint8Array(0),
        complete: false };
      this.files.set(f.fileId, f);
    } else if (!f) {
      return ErrorCode.NOT_FOUND;
    }
    const at = Number(req.offset);
    if (req.data.length > 0 && !f.complete) {
      if (at > f.bytes.length || at + req.data.length > f.size) return ErrorCode.BAD_REQUEST;
      if (at === f.bytes.length) {
        const joined = new Uint8Array(at + req.data.length);
        joined.set(f.bytes);
        joined.set(req.data, at);
        f.bytes = joined;
        if (this.closeAfterChunks > 0 && --this.closeAfterChunks === 0) {
          ws.close(1006);
          return null;
        }
      }
    }
    if (!f.complete && f.bytes.length === f.size) {
      const sum = new Uint8Array(await crypto.subtle.digest('SHA-256', f.bytes));
      if (sum.some((b, i) => b !== f.sha256[i])) {
        this.files.delete(f.fileId);
        return ErrorCode.BAD_REQUEST;
      }
      f.complete = true;
    }
    return { fileId: f.fileId, nextOffset: BigInt(f.bytes.length), complete: f.complete };
  }

  // download serves a DOWNLOAD: a chunk of a complete file, NOT_FOUND for
  // an unknown, unfinished or unreadable one.
  download(req) {
    const f = this.files.get(req.fileId);
    if (!f || !f.complete || this.unreadable.has(req.fileId)) return ErrorCode.NOT_FOUND;
    const at = Number(req.offset);
    if (at > f.size) return ErrorCode.BAD_REQUEST;
    const max = req.maxBytes <= 0 || req.maxBytes > 32768 ? 32768 : req.maxBytes;
    this.downloads++;
    return { data: f.bytes.slice(at, at + max), offset: req.offset, size: BigInt(f.size),
      mime: f.mime, name: f.name, sha256: this.corrupt ? new Uint8Array(32) : f.sha256 };
  }

  /**
   * search serves a SEARCH_MESSAGES as the server does for what the tests
   * look at: TEXT messages the user may read, not recalled, containing the
   * trimmed query ignoring case, newest first by msg id, and at most
   * searchScan messages read per page (so a page may be empty with a
   * cursor), the cursor being the msg id the next page reads below.
   */
  search(req) {
    const query = req.query.trim().toLowerCase();
    if (query === '' || [...query].length > 64 || req.cursor < 0n) return ErrorCode.BAD_REQUEST;
    const convs = req.convId ? [req.convId] : [...this.convs.keys()];
    const all = convs.filter((c) => this.convs.has(c)).flatMap((c) => this.readable(c))
      .filter((m) => req.cursor === 0n || m.msgId < req.cursor)
      .sort((a, b) => (a.msgId > b.msgId ? -1 : 1));
    const limit = req.limit <= 0 ? 20 : Math.min(req.limit, 50);
    const messages = [];
    let read = 0;
    for (const m of all) {
      if (messages.length === limit || read === this.searchScan) break;
      read++;
      const text = new TextDecoder().decode(m.content).toLowerCase();
      if (m.contentType === 1 && !m.recalled && text.includes(query)) messages.push(m);
    }
    const nextCursor = read < all.length ? all[read - 1]?.msgId ?? 0n : 0n;
    return { messages, nextCursor };
  }

  handle(ws, header, body) {
    if (ws.readyState !== 1) return undefined;
    const req = decodeStruct(requestBodies.get(header.op)[0], body);
    if (header.op === Op.REFRESH) this.refreshes.push(req.refreshToken); // answered or not
    if (header.op === Op.CHANGE_PASSWORD) this.passwordChanges.push(req);
    if (header.op === Op.UPLOAD) this.uploads.push(req);
    const look = this.onRequest?.(ws, header.op, req);
    if (look === true) return undefined;
    if (look) return look.then(() => this.answer(ws, header, req));
    return this.answer(ws, header, req);
  }

  // answer replies to one request, unless ws has closed meanwhile.
  answer(ws, header, req) {
    if (ws.readyState !== 1) return undefined;
    const respSchema = requestBodies.get(header.op)[1];
    const reply = (resp) => this.frame(ws, header.op + 1, header.requestId, respSchema, resp);
    const fail = (code) => this.frame(ws, header.op + 1, header.requestId, schemas.ErrorResp,
      { code, message: 'test' }, FLAG_ERROR);
    if (this.signedOut && ![Op.LOGIN, Op.REGISTER].includes(header.op)) {
      fail(ErrorCode.TOKEN_INVALID);
      if (this.signedOutCloses) {
        setTimeout(() => ws.readyState === 1 && this.closeWith(ws, CloseReason.SIGNED_OUT, -1), 0);
      }
      return undefined;
    }
    if (this.unsupported.has(header.op)) return fail(ErrorCode.UNSUPPORTED);
    if (this.refused.has(header.op)) return fail(this.refused.get(header.op));
    if (this.unknown.has(header.op)) return this.closeWith(ws, CloseReason.PROTOCOL_ERROR, 0);
    switch (header.op) {
      case Op.HEARTBEAT: return reply({});
      case Op.LOGOUT:
        // As the gateway does, the signed-out connection is closed after
        // the answer.
        this.logouts++;
        reply({});
        return this.closeWith(ws, CloseReason.SIGNED_OUT, 0);
      case Op.LOGIN:
        this.logins.push(req);
        this.onLogin?.(ws, req);
        if (this.suspended) return fail(ErrorCode.ACCOUNT_SUSPENDED);
        if (this.failLogins > 0) {
          this.failLogins--;
          return fail(ErrorCode.UNAVAILABLE);
        }
        if (req.token && this.revoked.has(req.token)) {
          fail(ErrorCode.TOKEN_INVALID);
          const close = () => this.closeWith(ws, CloseReason.SIGNED_OUT, -1);
          setTimeout(() => ws.readyState === 1 && close(), 0);
          return undefined;
        }
        if (req.token && !this.accessTokens.has(req.token)) return fail(ErrorCode.TOKEN_INVALID);
        if (!req.token && req.password !== this.password) {
          return fail(ErrorCode.INVALID_CREDENTIALS);
        }
        // A password login after a revocation gets a pair of its own, as
        // the server's; before one, the first pair, which the tests name.
        if (!req.token && this.revoked.size > 0) {
          const pair = this.issue();
          return reply({ userId: this.userId, username: this.username, token: pair.token,
            tokenExpiresMs: pair.tokenExpiresMs, heartbeatIntervalMs: 30_000,
            serverTimeMs: BigInt(Date.now()), refreshToken: pair.refreshToken,
            deviceId: req.deviceId || 'default', limits: this.limits });
        }
        return reply({ userId: this.userId, username: this.username, token: req.token || 'access-1',
          tokenExpiresMs: BigInt(Date.now() + 3_600_000), heartbeatIntervalMs: 30_000,
          serverTimeMs: BigInt(Date.now()),
          refreshToken: req.token ? '' : this.refreshToken, deviceId: req.deviceId || 'default',
          limits: this.limits });
      case Op.REFRESH: {
        const resp = this.rotate(req.refreshToken);
        if (resp === 'reuse') {
          // Two parties hold the token: the device is revoked and closed.
          this.reused++;
          this.revokeTokens();
          fail(ErrorCode.TOKEN_INVALID);
          return this.closeWith(ws, CloseReason.SIGNED_OUT, -1);
        }
        return resp ? reply(resp) : fail(ErrorCode.TOKEN_INVALID);
      }
      case Op.CHANGE_PASSWORD: {
        const resp = this.changePassword(ws, req);
        return typeof resp === 'number' ? fail(resp) : reply(resp);
      }
      case Op.DELETE_ACCOUNT:
        // As the server: the password again, then every token revoked and
        // every connection closed, this one after the answer.
        if (req.password !== this.password) return fail(ErrorCode.INVALID_CREDENTIALS);
        this.deleted = true;
        this.password = '';
        this.revokeTokens();
        this.refreshToken = '';
        for (const other of this.live) {
          if (other !== ws) this.closeWith(other, CloseReason.ACCOUNT_DELETED, -1);
        }
        reply({});
        return this.closeWith(ws, CloseReason.ACCOUNT_DELETED, -1);
      case Op.SYNC_CONVS:
        if (this.convsGate) return this.convsGate.then(() => reply(this.listing(req)));
        return reply(this.listing(req));
      case Op.SYNC: {
        const list = this.convs.get(req.convId);
        if (!list) return fail(ErrorCode.NOT_FOUND);
        return reply({ ...this.syncPage(req), lastSeq: BigInt(list.length) });
      }
      case Op.SEND: {
        if (this.busySends > 0) {
          this.busySends--;
          return fail(ErrorCode.BUSY);
        }
        let ack = this.sends.get(req.clientMsgId);
        if (ack) {
          ack = { ...ack, duplicate: true };
        } else {
          const m = this.add(req.convId, new TextDecoder().decode(req.content));
          m.senderId = this.userId;
          m.clientMsgId = req.clientMsgId;
          m.contentType = req.contentType;
          m.content = req.content;
          m.replyToSeq = req.replyToSeq;
          m.mentions = req.mentions;
          m.mentionAll = req.mentionAll;
          ack = { msgId: m.msgId, convId: m.convId, seq: m.seq, sendTimeMs: m.sendTimeMs };
          this.sends.set(req.clientMsgId, ack);
        }
        if (this.loseSendAcks > 0) {
          this.loseSendAcks--;
          return undefined;
        }
        return reply(ack);
      }
      case Op.REACT: {
        const ack = this.react(req);
        return typeof ack === 'number' ? fail(ack) : reply(ack);
      }
      case Op.PIN: {
        const ack = this.pin(req);
        return typeof ack === 'number' ? fail(ack) : reply(ack);
      }
      case Op.RECALL:
      case Op.EDIT: {
        const ack = this.change(header.op, req);
        return typeof ack === 'number' ? fail(ack) : reply(ack);
      }
      case Op.UPLOAD:
        return this.upload(ws, req).then((resp) => {
          if (resp === null || ws.readyState !== 1) return undefined; // closed unanswered
          return typeof resp === 'number' ? fail(resp) : reply(resp);
        });
      case Op.DOWNLOAD: {
        const resp = this.download(req);
        return typeof resp === 'number' ? fail(resp) : reply(resp);
      }
      case Op.SEARCH_MESSAGES: {
        const resp = this.search(req);
        return typeof resp === 'number' ? fail(resp) : reply(resp);
      }
      case Op.LIST_DEVICES: // as the server, leaving signed-out devices out
        return reply({
          devices: this.devices.filter((d) => !this.signedOutDevices.includes(d.deviceId)),
        });
      case Op.SIGN_OUT_DEVICE:
        if (!this.devices.some((d) => d.deviceId === req.deviceId)) {
          return fail(ErrorCode.NOT_FOUND);
        }
        this.signedOutDevices.push(req.deviceId);
        return reply({});
      case Op.CLEAR_CONV:
        if (!this.convs.has(req.convId)) return reply({ clearedSeq: 0n });
        return reply({ clearedSeq: this.clear(req.convId, req.upToSeq, req.hide) });
      case Op.DELIVERED:
        // The server's bound on one request (logic's maxDeliveredPositions).
        if (req.positions.length > MAX_DELIVERED_POSITIONS) return fail(ErrorCode.TOO_LARGE);
        for (const p of req.positions) {
          if (p.seq > (this.delivered.get(p.convId) || 0n)) this.delivered.set(p.convId, p.seq);
        }
        return reply({});
      default:
        return fail(ErrorCode.UNSUPPORTED);
    }
  }
}
