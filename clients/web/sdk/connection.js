// Connection is one WebSocket to a gateway speaking the frame protocol of
// docs/protocol.md: request ids and replies, heartbeats, PUSH, NOTIFY and
// CLOSE. It does not reconnect; Session does that on top of it.

import { Emitter } from './emitter.js';
import { DEFAULT_MAX_BODY, FLAG_ERROR, FrameError, decodeMessage, encodeFrame } from './frame.js';
import { decodeStruct, encodeStruct } from './thrift.js';
import { ErrorCode, Op, nameOf, requestBodies, schemas } from './schema.js';

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
// DEFAULT_READ_LIMIT bounds server frame bodies: far above the 64 KiB the
// server takes from clients, since a SYNC_ACK of 200 messages of 16 KiB is
// about 3.3 MB.
const DEFAULT_READ_LIMIT = 4 << 20;

/**
 * ResonanceError is an error reply (header flag bit 0): code is a
 * common.thrift ErrorCode; retryable is true for the 2xxx codes, which may be
 * retried after a backoff with the same client ids.
 */
export class ResonanceError extends Error {
  constructor(op, code, message) {
    super(`${nameOf(Op, op)}: ${nameOf(ErrorCode, code)} (${code}): ${message}`);
    this.name = 'ResonanceError';
    this.code = code;
    this.serverMessage = message;
    this.retryable = code >= 2000 && code < 3000;
  }
}

/**
 * ClosedError rejects the requests pending when a connection ends. close is
 * the server's CloseMsg when one came, else null.
 */
export class ClosedError extends Error {
  constructor(close, detail) {
    super(close ? `closed by the server: ${close.message || `reason ${close.reason}`}`
      : `connection closed${detail ? `: ${detail}` : ''}`);
    this.name = 'ClosedError';
    this.close = close;
    // beside is set when the close was surely for another frame: the
    // request was never sent, or the server had answered its op on the
    // connection before (see Connection.finish).
    this.beside = false;
    // unsent is set when the request was never written: the connection
    // had closed before. Otherwise the server may have acted on it.
    this.unsent = false;
  }
}

/** TimeoutError means no reply came within the request timeout. */
export class TimeoutError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/**
 * OutcomeUnknownError rejects a request not safe to repeat blindly (see
 * Connection.requestOnce) that was sent and got no answer: the server may
 * have acted on it or not. op is the request's opcode; cause is the
 * ClosedError or TimeoutError that ended the wait, close the server's
 * CloseMsg if one came. A refusal is a ResonanceError instead, and a
 * request never written a ClosedError: neither was acted on.
 */
export class OutcomeUnknownError extends Error {
  constructor(op, cause) {
    super(`${nameOf(Op, op)}: outcome unknown: sent, but ${cause.message}`);
    this.name = 'OutcomeUnknownError';
    this.op = op;
    this.cause = cause;
    this.close = cause.close || null;
  }
}

/**
 * unanswered reports whether err says a request was sent and no answer
 * came (the connection closed, or the request timed out): the server may
 * or may not have acted on it. A refusal (ResonanceError), or a request
 * never written, is known not to have done what it asked.
 */
export function unanswered(err) {
  return err instanceof TimeoutError || (err instanceof ClosedError && !err.unsent);
}

/**
 * Connection events: 'push' (a common.Message), 'notify' (a Notify),
 * 'close' ({close, code, error}: close is the server's CloseMsg or null,
 * code the WebSocket close code). After 'close' every request rejects.
 */
export class Connection extends Emitter {
  /**
   * open connects to url (ws:// or wss://) and resolves once the WebSocket
   * is open. opts.requestTimeoutMs bounds each request (default 10 s);
   * opts.maxBody bounds server bodies (default 4 MiB); opts.sendLimit is
   * the server's limit on client bodies (default 64 KiB).
   */
  static open(url, opts = {}) {
    const c = new Connection(url, opts);
    return c.connect().then(() => c);
  }

  constructor(url, { requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
    maxBody = DEFAULT_READ_LIMIT, sendLimit = DEFAULT_MAX_BODY } = {}) {
    super();
    this.url = url;
    this.requestTimeoutMs = requestTimeoutMs;
    this.maxBody = maxBody;
    this.sendLimit = sendLimit;
    this.nextId = 0;
    this.pending = new Map(); // request id -> {op, reply, resolve, reject, timer}
    this.answered = new Set(); // the ops the server replied to on this connection
    this.closeMsg = null;
    this.closed = false;
    this.heartbeatTimer = null;
    this.ws = null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      // No subprotocol: the gateway negotiates none, and asking for one
      // would fail the handshake on the browser's side.
      const ws = new WebSocket(this.url);
      ws.binaryType = 'arraybuffer';
      let opened = false;
      // notOpened ends an attempt that did not open. It does not wait for
      // 'close': Node 20's WebSocket fails a refused connection with
      // 'error' alone and never sends 'close', not even after close().
      const notOpened = (code) => {
        clearTimeout(timer);
        reject(new ClosedError(null, `cannot connect to ${this.url}`));
        this.finish(code, null);
      };
      const timer = setTimeout(() => {
        if (opened) return;
        ws.close();
        notOpened(1006);
      }, this.requestTimeoutMs);
      ws.onopen = () => {
        opened = true;
        clearTimeout(timer);
        resolve();
      };
      ws.onmessage = (ev) => this.onMessage(ev.data);
      ws.onclose = (ev) => {
        if (!opened) notOpened(ev.code);
        else this.finish(ev.code, null);
      };
      // Once open, onclose follows an error and says the rest.
      ws.onerror = () => {
        if (!opened) notOpened(1006);
      };
      this.ws = ws;
    });
  }

  onMessage(data) {
    if (typeof data === 'string') {
      this.fail(new FrameError('frame: text WebSocket message from the server'));
      return;
    }
    let f;
    try {
      f = decodeMessage(data, this.maxBody);
      this.onFrame(f);
    } catch (err) {
      this.fail(err);
    }
  }

  onFrame({ header, body }) {
    switch (header.op) {
      case Op.PUSH:
        this.emit('push', decodeStruct(schemas.PushMsg, body).message);
        return;
      case Op.NOTIFY:
        this.emit('notify', decodeStruct(schemas.Notify, body));
        return;
      case Op.CLOSE:
        this.closeMsg = decodeStruct(schemas.CloseMsg, body);
        return;
    }
    const p = this.pending.get(header.requestId);
    if (!p) return; // a reply after its timeout, or an opcode this SDK does not know
    this.pending.delete(header.requestId);
    clearTimeout(p.timer);
    if (header.op !== p.op + 1) {
      const err = new FrameError(`reply op 0x${header.op.toString(16)} to ${nameOf(Op, p.op)}`);
      p.reject(err);
      throw err;
    }
    this.answered.add(p.op);
    if (header.flags & FLAG_ERROR) {
      const e = decodeStruct(schemas.ErrorResp, body);
      p.reject(new ResonanceError(p.op, e.code, e.message));
      return;
    }
    p.resolve(decodeStruct(p.reply, body));
  }

  /**
   * request sends one request and resolves with its decoded reply, or
   * rejects with ResonanceError, TimeoutError or ClosedError.
   */
  request(op, body, { timeoutMs = this.requestTimeoutMs } = {}) {
    const bodies = requestBodies.get(op);
    if (!bodies) return Promise.reject(new Error(`not a request opcode: ${op}`));
    if (this.closed) {
      const err = new ClosedError(this.closeMsg);
      err.beside = true; // never sent
      err.unsent = true;
      return Promise.reject(err);
    }
    const encoded = encodeStruct(bodies[0], body);
    if (encoded.length > this.sendLimit) {
      // The server would close the connection with PROTOCOL_ERROR.
      return Promise.reject(new ResonanceError(op, ErrorCode.TOO_LARGE,
        `body of ${encoded.length} bytes over the ${this.sendLimit}-byte limit (not sent)`));
    }
    const id = this.newRequestId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(`${nameOf(Op, op)}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { op, reply: bodies[1], resolve, reject, timer });
      this.ws.send(encodeFrame(op, 0, id, encoded));
    });
  }

  /**
   * requestOnce is request for an op the caller must not repeat blindly
   * (LOGOUT, REFRESH): when it was sent and no answer came, it rejects with
   * OutcomeUnknownError rather than the ClosedError or TimeoutError.
   */
  requestOnce(op, body, opts) {
    return this.request(op, body, opts).catch((err) => {
      throw unanswered(err) ? new OutcomeUnknownError(op, err) : err;
    });
  }

  // newRequestId counts up from 1, skipping 0 (the id of server frames).
  newRequestId() {
    this.nextId = (this.nextId + 1) >>> 0;
    if (this.nextId === 0) this.nextId = 1;
    return this.nextId;
  }

  /**
   * startHeartbeat sends HEARTBEAT every half interval, so one late timer
   * cannot pass the server's deadline. A heartbeat without a reply within
   * the request timeout means a dead server or network: the connection is
   * closed, and Session reconnects.
   */
  startHeartbeat(intervalMs) {
    this.stopHeartbeat();
    const every = Math.max(Math.floor((intervalMs || 30_000) / 2), 100);
    this.heartbeatTimer = setInterval(() => {
      this.request(Op.HEARTBEAT, {}).catch((err) => {
        if (err instanceof TimeoutError) this.fail(err);
      });
    }, every);
  }

  stopHeartbeat() {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  // fail ends a connection that can no longer be trusted.
  fail(err) {
    this.finish(0, err);
    this.ws.close();
  }

  finish(code, err) {
    if (this.closed) return;
    this.closed = true;
    this.stopHeartbeat();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      // A CLOSE PROTOCOL_ERROR does not say which frame it was for; not
      // one whose op the server answered here before, which it knows.
      const closedErr = new ClosedError(this.closeMsg, err && err.message);
      closedErr.beside = this.answered.has(p.op);
      p.reject(closedErr);
    }
    this.pending.clear();
    this.emit('close', { close: this.closeMsg, code, error: err });
  }

  /**
   * abandon rejects the requests pending now with err, as a close would,
   * and keeps the connection for those sent after.
   */
  abandon(err) {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  /** close ends the connection from the client side; idempotent. */
  close() {
    this.stopHeartbeat();
    if (this.ws && this.ws.readyState <= 1) this.ws.close(1000);
    this.finish(1000, null);
  }
}
