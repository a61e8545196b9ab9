// Session's sending (mixed into Session, session.js): the outbox, whose
// entries keep their client_msg_id across every attempt, so that the server
// stores each message once, and enter the message stream from their acks.

import { ClosedError, ResonanceError, TimeoutError } from './connection.js';
import { storedMentions } from './mentions.js';
import { ContentType, Op } from './schema.js';
import { jitter, monotonicMs, newClientMsgId, utf8 } from './sessiondefs.js';

export const sendingMethods = {
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
  },

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
  },

  /** discard drops a failed entry from the outbox. */
  discard(clientMsgId) {
    const e = this.outbox.get(clientMsgId);
    if (!e || e.state !== 'failed') return;
    this.outbox.delete(clientMsgId);
    e.state = 'discarded';
    this.emit('outbox', e);
  },

  /** pending lists the outbox entries not yet acked, oldest first. */
  pending(convId) {
    return [...this.outbox.values()].filter((e) => !convId || e.convId === convId);
  },

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
  },

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
  },

  // sendAgain reports whether a failed send may succeed if repeated.
  sendAgain(conn, err) {
    if (err instanceof ResonanceError) return err.retryable;
    return conn.closed || err instanceof TimeoutError || err instanceof ClosedError;
  },

  failEntry(e, err) {
    clearTimeout(e.deadline);
    e.state = 'failed';
    e.error = err;
    this.emit('outbox', e);
    e.reject(err);
  },

  // ownMessage rebuilds the stored message from the ack of its send.
  ownMessage(e, ack) {
    return {
      msgId: ack.msgId, convId: ack.convId, seq: ack.seq, senderId: this.userId,
      clientMsgId: e.clientMsgId, contentType: e.contentType, content: e.content,
      sendTimeMs: ack.sendTimeMs, senderDevice: this.deviceId, recalled: false, editedMs: 0n,
      replyToSeq: e.replyTo, mentions: storedMentions(this.userId, e.mentions),
      mentionAll: e.mentionAll,
    };
  },
};
