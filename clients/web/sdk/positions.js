// Position stores keep what a Session handed to its application, the
// SYNC_CONVS cursor and the device's tokens, so that a reload resumes
// without repeating or skipping messages and without asking for the
// password. Seqs are BigInt.

/** MemoryPositions lives as long as the page. */
export class MemoryPositions {
  constructor() {
    this.seqs = new Map();
    this.cur = '';
    this.tk = null;
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

  /** clear forgets everything, for a sign-out. */
  clear() {
    for (const k of ['positions', 'cursor', 'tokens']) this.storage.removeItem(`${this.prefix}.${k}`);
    this.seqs.clear();
    this.cur = '';
    this.tk = null;
  }
}
