'use strict';
// A small Resonance client written from docs/protocol.md: TCP or WebSocket
// transport, request ids and acks, heartbeats, pushes and close frames.

const { EventEmitter } = require('node:events');
const net = require('node:net');
const crypto = require('node:crypto');
const WebSocket = require('ws');

const frame = require('./frame');
const { encodeStruct, decodeStruct } = require('./thrift');
const { schemas, Op, requestBodies, ErrorCode, ContentType } = require('./schema');

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
// DEFAULT_READ_LIMIT bounds server frame bodies. It is far above the 64 KiB
// the server accepts from clients: a SYNC_ACK of 200 messages of 16 KiB is
// about 3.3 MB.
const DEFAULT_READ_LIMIT = 4 << 20;

/**
 * ResonanceError is an error reply (header flag bit 0). code is a
 * common.thrift ErrorCode; retryable is true for the 2xxx codes, which may be
 * retried with backoff and the same client ids.
 */
class ResonanceError extends Error {
  constructor(op, code, message) {
    super(`${opName(op)}: error ${codeName(code)} (${code}): ${message}`);
    this.code = code;
    this.serverMessage = message;
    this.retryable = code >= 2000 && code < 3000;
  }
}

/**
 * ClosedError rejects requests pending when the connection ends. close is the
 * server's CloseMsg, if one came.
 */
class ClosedError extends Error {
  constructor(close, cause) {
    super(close ? `connection closed by server: reason ${close.reason}: ${close.message}`
      : `connection closed${cause ? `: ${cause.message}` : ''}`);
    this.close = close;
  }
}

/** TimeoutError means no reply arrived within the request timeout. */
class TimeoutError extends Error {}

function opName(op) {
  return Object.keys(Op).find((k) => Op[k] === op) || `op 0x${op.toString(16)}`;
}

function codeName(code) {
  return Object.keys(ErrorCode).find((k) => ErrorCode[k] === code) || 'UNKNOWN';
}

function splitAddr(addr) {
  const i = addr.lastIndexOf(':');
  if (i < 0) throw new Error(`address ${addr} has no port`);
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
}

/**
 * Client is one connection to a gateway. Build it with Client.connect.
 *
 * Events: 'push' (a common.Message, decoded), 'close' ({close, error}: close
 * is the server's CloseMsg when it sent one, else null), 'error' (a frame the
 * client could not decode; the connection is then closed).
 */
class Client extends EventEmitter {
  /**
   * connect opens a connection. opts.addr is "host:port"; opts.transport is
   * "tcp" (default) or "ws"; for ws, opts.path (default "/") and opts.origin
   * (no Origin header when unset) shape the upgrade request. opts.maxBody
   * bounds server frame bodies (default 4 MiB); opts.sendLimit is the
   * server's limit on client bodies (default 64 KiB); opts.requestTimeoutMs
   * bounds each request (default 10 s).
   */
  static async connect(opts) {
    const c = new Client(opts);
    await c.open();
    return c;
  }

  constructor({ addr, transport = 'tcp', path = '/', origin, maxBody = DEFAULT_READ_LIMIT,
    sendLimit = frame.DEFAULT_MAX_BODY, requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS } = {}) {
    super();
    this.addr = addr;
    this.transport = transport;
    this.path = path;
    this.origin = origin;
    this.maxBody = maxBody;
    this.sendLimit = sendLimit;
    this.requestTimeoutMs = requestTimeoutMs;
    this.nextId = 0;
    this.pending = new Map(); // request id -> {op, reply schema, resolve, reject, timer}
    this.closeMsg = null;
    this.closed = false;
    this.heartbeatTimer = null;
    this.session = null; // the LoginResp once logged in
    this.socket = null; // the net.Socket or ws WebSocket, for tests and diagnostics
    this.wsClose = null; // {code, reason} of the WebSocket close, over ws
  }

  open() {
    return this.transport === 'ws' ? this.openWebSocket() : this.openTcp();
  }

  openTcp() {
    const { host, port } = splitAddr(this.addr);
    const decoder = new frame.StreamDecoder(this.maxBody);
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port, noDelay: true });
      sock.once('connect', () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.finish(err));
        resolve();
      });
      sock.once('error', reject);
      sock.on('data', (chunk) => {
        let frames;
        try {
          frames = decoder.push(chunk);
        } catch (err) {
          this.fail(err);
          return;
        }
        for (const f of frames) this.onFrame(f);
      });
      sock.on('close', () => this.finish(null));
      this.socket = sock;
      this.write = (buf) => sock.write(buf);
      this.destroy = () => sock.destroy();
    });
  }

  openWebSocket() {
    const url = `ws://${this.addr}${this.path}`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        origin: this.origin, perMessageDeflate: false, maxPayload: frame.HEADER_SIZE + this.maxBody,
        handshakeTimeout: this.requestTimeoutMs,
      });
      ws.binaryType = 'nodebuffer';
      ws.once('open', () => {
        ws.off('error', reject);
        ws.on('error', (err) => this.finish(err));
        resolve();
      });
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => {
        reject(new Error(`websocket upgrade to ${url} refused: HTTP ${res.statusCode}`));
        req.destroy();
      });
      ws.on('message', (data, isBinary) => {
        if (!isBinary) {
          this.fail(new frame.FrameError('frame: text WebSocket message from the server'));
          return;
        }
        let f;
        try {
          f = frame.decodeMessage(data, this.maxBody);
        } catch (err) {
          this.fail(err);
          return;
        }
        this.onFrame(f);
      });
      ws.on('close', (code, reason) => {
        this.wsClose = { code, reason: reason.toString() };
        this.finish(null);
      });
      this.socket = ws;
      this.write = (buf) => ws.send(buf, { binary: true });
      this.destroy = () => ws.terminate();
    });
  }

  /** request sends one request and resolves with its decoded reply body. */
  request(op, body, { timeoutMs = this.requestTimeoutMs } = {}) {
    const bodies = requestBodies.get(op);
    if (!bodies) throw new Error(`not a request opcode: ${op}`);
    if (this.closed) return Promise.reject(new ClosedError(this.closeMsg));
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
        reject(new TimeoutError(`${opName(op)} request ${id}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { op, reply: bodies[1], resolve, reject, timer });
      this.write(frame.encodeFrame(op, 0, id, encoded));
    });
  }

  // newRequestId counts up from 1, skipping 0 (the id of server-initiated frames).
  newRequestId() {
    this.nextId = (this.nextId + 1) >>> 0;
    if (this.nextId === 0) this.nextId = 1;
    return this.nextId;
  }

  onFrame({ header, body }) {
    try {
      if (header.op === Op.PUSH) {
        this.emit('push', decodeStruct(schemas.PushMsg, body).message);
      } else if (header.op === Op.CLOSE) {
        this.closeMsg = decodeStruct(schemas.CloseMsg, body);
      } else {
        this.onReply(header, body);
      }
    } catch (err) {
      this.fail(err);
    }
  }

  onReply(header, body) {
    const p = this.pending.get(header.requestId);
    if (!p) return; // a reply after its timeout
    this.pending.delete(header.requestId);
    clearTimeout(p.timer);
    if (header.op !== p.op + 1) {
      p.reject(new frame.FrameError(`reply op 0x${header.op.toString(16)} to ${opName(p.op)}`));
      return;
    }
    if (header.flags & frame.FLAG_ERROR) {
      const e = decodeStruct(schemas.ErrorResp, body);
      p.reject(new ResonanceError(p.op, e.code, e.message));
      return;
    }
    p.resolve(decodeStruct(p.reply, body));
  }

  // fail ends a connection whose stream can no longer be trusted.
  fail(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.finish(err);
    this.destroy();
  }

  finish(err) {
    if (this.closed) return;
    this.closed = true;
    this.stopHeartbeat();
    const closedErr = new ClosedError(this.closeMsg, err);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(closedErr);
    }
    this.pending.clear();
    this.emit('close', { close: this.closeMsg, error: err });
  }

  /** close ends the connection from the client side. */
  close() {
    this.stopHeartbeat();
    if (!this.closed) this.destroy();
  }

  // ---- the requests ----

  register(username, password) {
    return this.request(Op.REGISTER, { username, password });
  }

  /**
   * login authenticates with {username, password} or {token}, for deviceId,
   * and starts heartbeats at the interval the server asks for.
   */
  async login({ username, password, token, deviceId, platform = 'node' }) {
    const resp = await this.request(Op.LOGIN, { username, password, token, deviceId, platform });
    this.session = resp;
    this.startHeartbeat(resp.heartbeatIntervalMs);
    return resp;
  }

  heartbeat() {
    return this.request(Op.HEARTBEAT, {});
  }

  /**
   * send sends a message to toUserId or convId and resolves with the ack.
   * clientMsgId defaults to a fresh UUID; pass the same one to retry.
   */
  send({ toUserId, convId, content, contentType, clientMsgId = crypto.randomUUID() }) {
    const buf = Buffer.isBuffer(content) ? content : Buffer.from(String(content), 'utf8');
    const type = contentType || (Buffer.isBuffer(content) ? ContentType.BINARY : ContentType.TEXT);
    return this.request(Op.SEND,
      { clientMsgId, toUserId, convId, contentType: type, content: buf });
  }

  /** sync pages a conversation: forward from afterSeq, or backward before beforeSeq. */
  sync({ convId, afterSeq = 0n, limit, beforeSeq }) {
    return this.request(Op.SYNC, { convId, afterSeq, limit, beforeSeq });
  }

  getUser({ username, userId }) {
    return this.request(Op.GET_USER, { username, userId });
  }

  /** delivered reports positions [{convId, seq}] this device has handed to its application. */
  delivered(positions) {
    return this.request(Op.DELIVERED, { positions });
  }

  syncConvs({ cursor = '', limit } = {}) {
    return this.request(Op.SYNC_CONVS, { cursor, limit });
  }

  /**
   * searchMessages finds text in the messages this user may read, newest
   * first, in convId or (empty) in all conversations; pass the reply's
   * nextCursor as cursor for the next page (0n: the search is done).
   */
  searchMessages({ query, convId = '', cursor = 0n, limit }) {
    return this.request(Op.SEARCH_MESSAGES, { query, convId, cursor, limit });
  }

  markRead({ convId, seq }) {
    return this.request(Op.MARK_READ, { convId, seq });
  }

  /**
   * createGroup creates a group of this user and memberIds and resolves with
   * the ack of its CREATE event. clientMsgId defaults to a fresh UUID; pass
   * the same one to retry.
   */
  createGroup({ name, memberIds = [], clientMsgId = crypto.randomUUID() }) {
    return this.request(Op.CREATE_GROUP, { clientMsgId, name, memberIds });
  }

  /**
   * manageGroup changes a group (action is a GroupAction; see
   * ManageGroupReq in idl/protocol.thrift) and resolves with the ack of the
   * event it stored.
   */
  manageGroup({ convId, action, userIds = [], name, role, clientMsgId = crypto.randomUUID() }) {
    return this.request(Op.MANAGE_GROUP, { clientMsgId, convId, action, userIds, name, role });
  }

  // ---- heartbeats ----

  // startHeartbeat sends HEARTBEAT every interval/2 so one late timer or one
  // slow reply cannot push the connection past the server's deadline.
  startHeartbeat(intervalMs) {
    this.stopHeartbeat();
    const every = Math.max(Math.floor((intervalMs || 30_000) / 2), 100);
    this.heartbeatTimer = setInterval(() => {
      this.heartbeat().catch(() => {}); // a lost heartbeat shows up as a close
    }, every);
    this.heartbeatTimer.unref();
  }

  stopHeartbeat() {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }
}

module.exports = { Client, ResonanceError, ClosedError, TimeoutError };
