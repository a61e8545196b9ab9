// Sequencer puts the messages of each conversation in seq order, once, as
// docs/protocol.md ("Delivery") asks and client/sequencer.go does for the Go
// SDK: a message with the next seq is accepted, one already accepted is
// dropped, and one after a gap is held until the gap is filled. A
// conversation whose start is not known yet (unplaced) holds every message
// until place sets its start. Seqs are BigInt.

export class Sequencer {
  /**
   * origin(convId, first) returns the position of a conversation seen for
   * the first time, whose first offered message is first (null when none
   * is at hand), or null when its start must be looked up first: the
   * conversation is then unplaced.
   */
  constructor(origin) {
    this.origin = origin;
    // conv id -> {next: BigInt, held: Map<string, Message>, unplaced: boolean,
    // floor?: BigInt (the highest seq skipped while unplaced)}
    this.convs = new Map();
  }

  state(m) {
    let st = this.convs.get(m.convId);
    if (!st) {
      const next = this.origin(m.convId, m);
      st = { next: next ?? 0n, held: new Map(), unplaced: next === null };
      this.convs.set(m.convId, st);
    }
    return st;
  }

  /**
   * offer takes one message and returns {ready, gap}: the messages it makes
   * ready in seq order (none for a duplicate, after a gap or while the
   * conversation is unplaced), and whether messages are held.
   */
  offer(m) {
    const st = this.state(m);
    const key = String(m.seq);
    if (st.unplaced) {
      st.held.set(key, m);
      return { ready: [], gap: true };
    }
    if (m.seq <= st.next || st.held.has(key)) return { ready: [], gap: st.held.size > 0 };
    if (m.seq > st.next + 1n) {
      st.held.set(key, m);
      return { ready: [], gap: true };
    }
    st.next = m.seq;
    const ready = release(st, [m]);
    return { ready, gap: st.held.size > 0 };
  }

  /** position is the highest seq accepted in convId, or its origin when not seen yet. */
  position(convId) {
    const st = this.convs.get(convId);
    return st ? st.next : this.origin(convId, null);
  }

  /** track sets the position of a conversation not seen yet; false when it is known. */
  track(convId, seq) {
    if (this.convs.has(convId)) return false;
    this.convs.set(convId, { next: seq, held: new Map(), unplaced: false });
    return true;
  }

  /**
   * hold tracks a conversation not seen yet as unplaced: its messages are
   * held until place. False, and nothing changed, when it is known.
   */
  hold(convId) {
    if (this.convs.has(convId)) return false;
    this.convs.set(convId, { next: 0n, held: new Map(), unplaced: true });
    return true;
  }

  /** unplaced reports whether convId waits for place. */
  unplaced(convId) {
    return !!this.convs.get(convId)?.unplaced;
  }

  /**
   * place sets where an unplaced conversation starts, drops what it held up
   * to there and returns the held messages that follow, in order. A
   * conversation not seen yet is tracked at start; a placed one is left.
   */
  place(convId, start) {
    const st = this.convs.get(convId);
    if (!st) {
      this.track(convId, start);
      return [];
    }
    if (!st.unplaced) return [];
    st.unplaced = false;
    const floor = st.floor ?? 0n;
    return moveTo(st, start > floor ? start : floor);
  }

  /**
   * skip moves a placed conversation past the seqs up to to, which are not
   * to be handed over, drops what it held up to there and returns the held
   * messages that follow, in order. A conversation not seen yet is tracked
   * at to. An unplaced one drops what it held up to to and keeps to as the
   * lowest start place may set (floor), so a clear before the listing
   * placed it stays passed over.
   */
  skip(convId, to) {
    const st = this.convs.get(convId);
    if (!st) {
      this.track(convId, to);
      return [];
    }
    if (st.unplaced) {
      if (to > (st.floor ?? 0n)) st.floor = to;
      dropHeld(st, to);
      return [];
    }
    if (st.next >= to) return [];
    return moveTo(st, to);
  }

  /**
   * advance moves convId to at least seq, placing it there when unplaced,
   * and returns the held messages that follow, in order. A conversation not
   * seen yet is tracked at seq.
   */
  advance(convId, seq) {
    return this.unplaced(convId) ? this.place(convId, seq) : this.skip(convId, seq);
  }

  /** caughtUp reports whether convId has every seq up to target and none held. */
  caughtUp(convId, target) {
    const st = this.convs.get(convId);
    return target > 0n && !!st && st.next >= target && st.held.size === 0;
  }

  /** gaps lists the conversations holding messages behind a gap or waiting to be placed. */
  gaps() {
    return [...this.convs].filter(([, st]) => st.held.size > 0 || st.unplaced).map(([id]) => id);
  }
}

// moveTo moves st's position to seq, drops the held messages up to there
// and returns those that follow, in order.
function moveTo(st, seq) {
  st.next = seq;
  dropHeld(st, seq);
  return release(st, []);
}

// dropHeld forgets the held messages up to seq.
function dropHeld(st, seq) {
  for (const [key, m] of st.held) {
    if (m.seq <= seq) st.held.delete(key);
  }
}

// release appends to ready the held messages that follow st.next, in order.
function release(st, ready) {
  for (;;) {
    const h = st.held.get(String(st.next + 1n));
    if (!h) return ready;
    st.held.delete(String(h.seq));
    st.next = h.seq;
    ready.push(h);
  }
}
