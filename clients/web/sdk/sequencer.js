// Sequencer puts the messages of each conversation in seq order, once, as
// docs/protocol.md ("Delivery") asks and client/sequencer.go does for the Go
// SDK: a message with the next seq is accepted, one already accepted is
// dropped, and one after a gap is held until the gap is filled. Seqs are
// BigInt.

export class Sequencer {
  /**
   * origin(convId, first) returns the position of a conversation seen for
   * the first time, whose first offered message has seq first (0n when
   * none is at hand).
   */
  constructor(origin) {
    this.origin = origin;
    this.convs = new Map(); // conv id -> {next: BigInt, held: Map<string, Message>}
  }

  state(convId, first) {
    let st = this.convs.get(convId);
    if (!st) {
      st = { next: this.origin(convId, first), held: new Map() };
      this.convs.set(convId, st);
    }
    return st;
  }

  /**
   * offer takes one message and returns {ready, gap}: the messages it makes
   * ready in seq order (none for a duplicate or after a gap), and whether
   * messages are held behind a missing seq.
   */
  offer(m) {
    const st = this.state(m.convId, m.seq);
    const key = String(m.seq);
    if (m.seq <= st.next || st.held.has(key)) return { ready: [], gap: st.held.size > 0 };
    if (m.seq > st.next + 1n) {
      st.held.set(key, m);
      return { ready: [], gap: true };
    }
    const ready = [m];
    st.next = m.seq;
    for (;;) {
      const h = st.held.get(String(st.next + 1n));
      if (!h) break;
      st.held.delete(String(h.seq));
      st.next = h.seq;
      ready.push(h);
    }
    return { ready, gap: st.held.size > 0 };
  }

  /** position is the highest seq accepted in convId, or its origin when not seen yet. */
  position(convId) {
    const st = this.convs.get(convId);
    return st ? st.next : this.origin(convId, 0n);
  }

  /** track sets the position of a conversation not seen yet; false when it is known. */
  track(convId, seq) {
    if (this.convs.has(convId)) return false;
    this.convs.set(convId, { next: seq, held: new Map() });
    return true;
  }

  /** caughtUp reports whether convId has every seq up to target and none held. */
  caughtUp(convId, target) {
    const st = this.convs.get(convId);
    return target > 0n && !!st && st.next >= target && st.held.size === 0;
  }

  /** gaps lists the conversations holding messages behind a gap. */
  gaps() {
    return [...this.convs].filter(([, st]) => st.held.size > 0).map(([id]) => id);
  }
}
