// A fake gateway for the Session's unit tests in Node: a stand-in for the
// browser's WebSocket class that talks to an in-memory server speaking the
// frame protocol, with controls to push, close with a CLOSE frame, or lose
// replies. It stores one user's messages per conversation; it is no model
// of the real server beyond what the tests need.

import { decodeMessage, encodeFrame, FLAG_ERROR } from '../sdk/frame.js';
import { decodeStruct, encodeStruct } from '../sdk/thrift.js';
import { ErrorCode, Op, requestBodies, schemas } from '../sdk/schema.js';

export class FakeGateway {
  constructor() {
    this.convs = new Map(); // conv id -> [Message]
    this.conns = [];
    this.logins = []; // LoginReq bodies, in order
    this.delivered = new Map(); // conv id -> highest DELIVERED seq
    this.sends = new Map(); // client msg id -> SendResp
    this.loseSendAcks = 0; // SEND acks to drop (the message is stored)
    this.userId = 1n;
    this.version = 0;
    const gw = this;
    // WebSocket is the class the SDK constructs; each instance is one
    // connection to this gateway.
    this.WebSocket = class {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.binaryType = 'blob';
        gw.conns.push(this);
        setTimeout(() => {
          if (this.readyState !== 0) return;
          this.readyState = 1;
          this.onopen?.();
        }, 0);
      }

      send(data) {
        if (this.readyState !== 1) return;
        const { header, body } = decodeMessage(data, 1 << 20);
        queueMicrotask(() => gw.handle(this, header, body));
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
    list.push(m);
    return m;
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

  /** closeWith sends CLOSE and closes, as the gateway does. */
  closeWith(ws, reason, reconnectAfterMs) {
    this.frame(ws, Op.CLOSE, 0, schemas.CloseMsg, { reason, message: 'test', reconnectAfterMs });
    ws.close(1000);
  }

  handle(ws, header, body) {
    if (ws.readyState !== 1) return;
    const [reqSchema, respSchema] = requestBodies.get(header.op);
    const req = decodeStruct(reqSchema, body);
    const reply = (resp) => this.frame(ws, header.op + 1, header.requestId, respSchema, resp);
    const fail = (code) => this.frame(ws, header.op + 1, header.requestId, schemas.ErrorResp,
      { code, message: 'test' }, FLAG_ERROR);
    switch (header.op) {
      case Op.HEARTBEAT: return reply({});
      case Op.LOGIN:
        this.logins.push(req);
        if (req.token && req.token !== 'access-1') return fail(ErrorCode.TOKEN_INVALID);
        return reply({ userId: this.userId, username: 'me', token: 'access-1',
          tokenExpiresMs: BigInt(Date.now() + 3_600_000), heartbeatIntervalMs: 30_000,
          refreshToken: req.token ? '' : 'refresh-1', deviceId: req.deviceId || 'default' });
      case Op.SYNC_CONVS:
        return reply({ cursor: String(this.version), hasMore: false,
          convs: [...this.convs].map(([convId, list]) => ({ convId, type: 1,
            lastSeq: BigInt(list.length), deliveredSeq: this.delivered.get(convId) || 0n })) });
      case Op.SYNC: {
        const list = this.convs.get(req.convId);
        if (!list) return fail(ErrorCode.NOT_FOUND);
        const page = list.filter((m) => m.seq > req.afterSeq).slice(0, req.limit || 50);
        return reply({ messages: page, hasMore: page.length > 0 && page.at(-1).seq < list.length,
          lastSeq: BigInt(list.length) });
      }
      case Op.SEND: {
        let ack = this.sends.get(req.clientMsgId);
        if (ack) {
          ack = { ...ack, duplicate: true };
        } else {
          const m = this.add(req.convId, new TextDecoder().decode(req.content));
          m.senderId = this.userId;
          m.clientMsgId = req.clientMsgId;
          ack = { msgId: m.msgId, convId: m.convId, seq: m.seq, sendTimeMs: m.sendTimeMs };
          this.sends.set(req.clientMsgId, ack);
        }
        if (this.loseSendAcks > 0) {
          this.loseSendAcks--;
          return undefined;
        }
        return reply(ack);
      }
      case Op.DELIVERED:
        for (const p of req.positions) {
          if (p.seq > (this.delivered.get(p.convId) || 0n)) this.delivered.set(p.convId, p.seq);
        }
        return reply({});
      default:
        return fail(ErrorCode.UNSUPPORTED);
    }
  }
}
