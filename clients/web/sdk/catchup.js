// Session's sequencing and catch-up (mixed into Session, session.js): every
// message handed over once and in seq order per conversation, gaps fetched
// with SYNC, what changed while away listed with SYNC_CONVS, and what was
// handed over reported with DELIVERED.

import { ErrorCode, Op } from './schema.js';
import { MAX_DELIVERED_POSITIONS, MAX_SEQ, refusedAsUnknown } from './sessiondefs.js';

export const catchUpMethods = {
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
  },

  /** position returns the highest seq of convId handed to the application. */
  position(convId) {
    return this.seq.position(convId);
  },

  offer(m) {
    const { ready, gap } = this.seq.offer(m);
    this.handOver(ready);
    if (gap) this.want(m.convId);
  },

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
  },

  want(convId) {
    this.fills.add(convId);
    return this.queueFill();
  },

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
  },

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
  },

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
  },

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
  },

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
  },

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
  },

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
  },

  // passCleared moves convId past the history the user cleared (clearConv,
  // here or on another device): the server returns none of it, so it is
  // passed over rather than fetched. Messages already handed over stay so.
  passCleared(convId, clearedSeq) {
    const pos = this.seq.position(convId);
    if (clearedSeq > 0n && pos !== null && clearedSeq > pos) {
      this.handOver(this.seq.skip(convId, clearedSeq));
    }
  },

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
  },

  // changedSinceStart reports whether the conversation's newest message was
  // stored after the device's start (see deviceStart), by the server's
  // clock.
  changedSinceStart(sum) {
    const at = sum.lastMessage ? sum.lastMessage.sendTimeMs : sum.updatedMs;
    return sum.lastSeq > 0n && at >= this.startMs;
  },

  scheduleAcks(conn) {
    this.later(this.opts.ackIntervalMs, () => {
      if (conn !== this.conn) return;
      this.flushAcks(conn);
      this.scheduleAcks(conn);
    });
  },

  // scheduleResync asks now and then which conversations changed, as after
  // a reconnect: a push lost with no later one in its conversation is
  // otherwise found only at the next reconnect.
  scheduleResync(conn) {
    this.later(this.opts.resyncIntervalMs, () => {
      if (conn !== this.conn) return;
      this.resume(conn).then(() => this.scheduleResync(conn),
        (err) => this.catchUpFailed(conn, err));
    });
  },

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
  },

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
  },

  // keepDirty puts positions not acknowledged back, to be sent with a later
  // flush; newer positions win.
  keepDirty(positions) {
    for (const p of positions) {
      const cur = this.dirty.get(p.convId);
      if (cur === undefined || cur < p.seq) this.dirty.set(p.convId, p.seq);
    }
  },
};
