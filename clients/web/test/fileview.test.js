// Unit tests of the app's FileView (app/fileview.js) in Node, on a small
// stand-in for the DOM: what becomes of a thumbnail whose image does not
// decode. The browser tests (browser-files.test.js) show the same in
// Chromium.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

// FakeNode is the little of a DOM element FileView and view.js's el use.
class FakeNode {
  constructor(tag) {
    this.tag = tag;
    this.children = [];
    this.parent = null;
    this.attrs = new Map();
    this.listeners = new Map();
    this.style = {};
    this.dataset = {};
    this.className = '';
    this.textContent = '';
    this.connected = false; // the root of a connected tree
    this.classList = { add: (c) => { this.className = `${this.className} ${c}`.trim(); } };
  }

  get isConnected() {
    return this.connected || !!this.parent?.isConnected;
  }

  append(...nodes) {
    for (const n of nodes) {
      if (n instanceof FakeNode) n.parent = this;
      this.children.push(n);
    }
  }

  replaceWith(n) {
    const at = this.parent.children.indexOf(this);
    this.parent.children[at] = n;
    n.parent = this.parent;
    this.parent = null;
  }

  setAttribute(k, v) { this.attrs.set(k, String(v)); }

  getAttribute(k) { return this.attrs.get(k) ?? null; }

  removeAttribute(k) { this.attrs.delete(k); }

  // src is an <img>'s attribute too, as in the DOM.
  set src(v) { this.setAttribute('src', v); }

  get src() { return this.getAttribute('src') ?? ''; }

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }

  dispatch(type) {
    for (const fn of this.listeners.get(type) || []) fn({ type, target: this });
  }

  // find is the first node below this one (depth first) with class cls.
  find(cls) {
    for (const c of this.children) {
      if (!(c instanceof FakeNode)) continue;
      if (c.className.split(' ').includes(cls)) return c;
      const deeper = c.find(cls);
      if (deeper) return deeper;
    }
    return null;
  }
}

let FileView;
before(async () => {
  globalThis.document = {
    createElement: (tag) => new FakeNode(tag),
    createTextNode: (text) => text,
  };
  ({ FileView } = await import('../app/fileview.js'));
});
after(() => { delete globalThis.document; });

// A file named and typed as a PNG whose bytes are not one showed as a
// broken image with no way to download it: on the image's error the
// thumbnail becomes the file card with its Download.
test('a thumbnail whose image does not decode becomes the file card', async () => {
  const bytes = new Blob(['not an image at all']);
  const view = new FileView({ session: () => ({ download: async () => bytes }), root: null });
  const ref = { fileId: 'f1', name: 'fake.png', mime: 'image/png', size: 19n,
    width: 0, height: 0 };
  const root = new FakeNode('ol');
  root.connected = true;
  const box = view.render(ref);
  root.append(box);
  const thumb = box.find('thumb');
  assert.ok(thumb, 'an image/png file starts as a thumbnail');
  const img = thumb.children[0];
  img.dispatch('error'); // before loading: an <img> without a src
  assert.equal(box.find('thumb'), thumb, 'replaced before its image was even set');

  await new Promise((r) => setTimeout(r, 0)); // the download resolves, src is set
  assert.match(img.src, /^blob:/);
  img.dispatch('error');
  assert.equal(box.find('thumb'), null, 'the broken image stayed');
  const card = box.find('file-card');
  assert.ok(card, 'no file card in its place');
  assert.equal(card.find('file-save')?.textContent, 'Download');
  view.sweep();
});
