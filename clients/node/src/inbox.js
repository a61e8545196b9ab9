'use strict';
// Inbox applies the delivery rules of docs/protocol.md ("Delivery") to one
// client's pushes: per conversation, messages come out in seq order with no
// gaps and no duplicates; a gap is filled with SYNC before anything after it.

const { EventEmitter } = require('node:events');

const SYNC_PAGE = 200;

/**
 * Inbox emits 'message' (a common.Message) in order per conversation, and
 * 'error' when a gap could not be filled (the messages stay pending until the
 * next push or resume of that conversation).
 */
class Inbox extends EventEmitter {
  /** lastSeq maps conversation ids to the last seq shown (BigInt); it may start from storage. */
  constructor(client, lastSeq = new Map()) {
    super();
    this.client = client;
    this.lastSeq = lastSeq;
    this.chains = new Map(); // conv id -> promise: one conversation's work runs in order
    client.on('push', (m) => this.enqueue(m.convId, () => this.onPush(m)));
  }

  /** resume catches up one conversation with SYNC from the last seq shown. */
  resume(convId) {
    return this.enqueue(convId, () => this.catchUp(convId));
  }

  enqueue(convId, work) {
    const prev = this.chains.get(convId) || Promise.resolve();
    const next = prev.then(work).catch((err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    this.chains.set(convId, next);
    return next;
  }

  async onPush(m) {
    const last = this.lastSeq.get(m.convId) || 0n;
    if (m.seq <= last) return; // a duplicate: already shown
    if (m.seq === last + 1n) {
      this.show(m);
      return;
    }
    await this.catchUp(m.convId); // a gap: fetch everything after last, m included
  }

  async catchUp(convId) {
    for (;;) {
      const afterSeq = this.lastSeq.get(convId) || 0n;
      const page = await this.client.sync({ convId, afterSeq, limit: SYNC_PAGE });
      // SYNC returns every message this user may read after afterSeq: the
      // seqs a page passes over are not theirs (a group's history from
      // before they were added), so the page is shown even when it starts
      // above afterSeq + 1; holding it for those seqs would hold it forever.
      for (const m of page.messages) {
        if (m.seq > (this.lastSeq.get(convId) || 0n)) this.show(m);
      }
      if (!page.hasMore || page.messages.length === 0) return;
    }
  }

  show(m) {
    this.lastSeq.set(m.convId, m.seq);
    this.emit('message', m);
  }
}

module.exports = { Inbox };
