// Emitter is a minimal event emitter: browsers' EventTarget wraps every
// payload in an Event, and Node's EventEmitter is not in browsers.
export class Emitter {
  constructor() {
    this.listeners = new Map();
  }

  /** on adds fn for event name and returns a function that removes it. */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  /** emit calls every listener of name with arg; a throwing listener is logged, not fatal. */
  emit(name, arg) {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(arg);
      } catch (err) {
        console.error(`resonance: listener of ${name} failed`, err);
      }
    }
  }
}
