// Position stores keep what a Session handed to its application, the
// SYNC_CONVS cursor, the device's tokens and, for startAtLatest, where the
// device started, so that a reload resumes without repeating or skipping
// messages and without asking for the password. Seqs and times are BigInt.

/** MemoryPositions lives as long as the page. */
export class MemoryPositions {
  constructor() {
    this.seqs = new Map();
    this.cur = '';
    this.tk = null;
    this.startMs = undefined;
  }

  position(convId) { return this.seqs.get(convId); }

  setPosition(convId, seq) {
    const old = this.seqs.get(convId);
    if (old === undefined || seq > old) this.seqs.set(convId, seq);
  }

  conversations() { return [...this.seqs.keys()]; }
  cursor() { return this.cur; }
  setCursor(c) { this.cur = c; }
  tokens() { return this.tk; }
  setTokens(t) { this.tk = t; }

  /**
   * start returns where the device started, for a Session's startAtLatest:
   * the server's time at the first login of the first session on this
   * store, Unix ms; undefined before one recorded it. A store without it
   * starts the device at each session's login.
   */
  start() { return this.startMs; }
  setStart(ms) { this.startMs = ms; }
}

/**
 * StoragePositions keeps the same in a Web Storage (sessionStorage or
 * localStorage) under prefix. Writes of positions are batched into one
 * storage write per task, since a catch-up hands over many messages at once.
 */
export class StoragePositions extends MemoryPositions {
  constructor(storage, prefix = 'resonance') {
    super();
    this.storage = storage;
    this.prefix = prefix;
    this.flushQueued = false;
    const raw = this.read('positions') || {};
    for (const [conv, seq] of Object.entries(raw)) this.seqs.set(conv, BigInt(seq));
    this.cur = this.read('cursor') || '';
    this.tk = this.read('tokens');
    const start = this.read('start');
    if (start) this.startMs = BigInt(start);
  }

  read(key) {
    try {
      return JSON.parse(this.storage.getItem(`${this.prefix}.${key}`));
    } catch {
      return null;
    }
  }

  write(key, value) {
    this.storage.setItem(`${this.prefix}.${key}`, JSON.stringify(value));
  }

  setPosition(convId, seq) {
    super.setPosition(convId, seq);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      const out = {};
      for (const [conv, s] of this.seqs) out[conv] = String(s);
      this.write('positions', out);
    });
  }

  setCursor(c) {
    super.setCursor(c);
    this.write('cursor', c);
  }

  setTokens(t) {
    super.setTokens(t);
    this.write('tokens', t);
  }

  // setStart is written at once: a session records it once, at its login.
  setStart(ms) {
    super.setStart(ms);
    this.write('start', String(ms));
  }

  /** clear forgets everything, for a sign-out. */
  clear() {
    for (const k of ['positions', 'cursor', 'tokens', 'start']) {
      this.storage.removeItem(`${this.prefix}.${k}`);
    }
    this.seqs.clear();
    this.cur = '';
    this.tk = null;
    this.startMs = undefined;
  }
}
