// FILE messages in the chat view: an image as an inline thumbnail loaded
// through the SDK when it scrolls into view, any other file (and an image
// that does not decode) as a card with its name, size and a Download
// button, and a viewer that opens an image full size. Downloaded bytes are
// kept in a small cache so that a message rebuilt (a reaction, a read
// receipt) does not fetch its image again; each <img> gets an object URL
// of its own, revoked once the image has left the DOM (sweep).

import { fileErrorText, showsInline, sizeText } from './attach.js';
import { el, userEl } from './view.js';
import { safeText } from './text.js';

// CACHE_BYTES bounds the downloaded files kept for thumbnails.
const CACHE_BYTES = 32 << 20;

// THUMB_PX is the largest side of a thumbnail, in CSS pixels (app.css too).
const THUMB_PX = 240;

// SAVE_URL_MS is how long the object URL of a file saved to disk lives:
// the browser reads it when the download starts, a moment after the click.
const SAVE_URL_MS = 30_000;

/**
 * FileView renders FILE messages. session() is the current Session (or
 * null); root is the scrolling element thumbnails load in view of.
 */
export class FileView {
  constructor({ session, root }) {
    this.session = session;
    this.cache = new Map(); // file id -> {blob: Promise<Blob>, size}, oldest first
    this.urls = new Map(); // <img> -> its object URL
    this.waiting = new Map(); // thumbnail not yet in view -> its load()
    this.observer = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => this.inView(entries), { root, rootMargin: '300px' })
      : null;
  }

  /** render is the element of a FILE message's ref: a thumbnail or a card, and its caption. */
  render(ref) {
    const box = el('div', 'file');
    box.dataset.fileId = ref.fileId;
    const status = el('div', 'file-status');
    status.setAttribute('role', 'status');
    box.append(showsInline(ref) ? this.thumbnail(ref, status) : this.card(ref, status), status);
    if (ref.caption) box.append(userEl('div', 'body caption', ref.caption, { multiline: true }));
    return box;
  }

  // thumbnail is a button holding the image, loaded when it comes near the
  // view; a click opens it full size. The sender's width and height
  // reserve its box, so that loading does not move the messages.
  thumbnail(ref, status) {
    const btn = el('button', 'thumb');
    btn.type = 'button';
    btn.setAttribute('aria-label', `Open image ${safeText(ref.name)} full size`);
    const img = document.createElement('img');
    img.alt = safeText(ref.name);
    if (ref.width > 0 && ref.height > 0) {
      const scale = Math.min(1, THUMB_PX / ref.width, THUMB_PX / ref.height);
      img.style.width = `${Math.max(1, Math.round(ref.width * scale))}px`;
      img.style.aspectRatio = `${ref.width} / ${ref.height}`;
    }
    btn.append(img);
    btn.addEventListener('click', () => this.openViewer(ref, status));
    // Typed as an image but not one (or not one this browser decodes):
    // the file card, whose Download still gives the bytes, rather than a
    // broken image with no way to them. Only once loading began: an <img>
    // without a src fires no error.
    img.addEventListener('error', () => {
      if (img.getAttribute('src') && btn.isConnected) btn.replaceWith(this.card(ref, status));
    });
    const load = () => this.load(ref).then((blob) => {
      this.show(img, blob);
    }, (err) => {
      btn.classList.add('failed');
      status.textContent = fileErrorText('open', err);
    });
    if (this.observer) {
      this.waiting.set(btn, load);
      this.observer.observe(btn);
    } else {
      load();
    }
    return btn;
  }

  // card is a file's name, and under it its size and Download button, so
  // that the name has the bubble's width even at 400 px.
  card(ref, status) {
    const card = el('div', 'file-card');
    const icon = el('span', 'file-icon', '📄');
    icon.setAttribute('aria-hidden', 'true');
    const name = userEl('span', 'file-name', ref.name);
    const size = el('span', 'file-size', sizeText(ref.size));
    const save = el('button', 'secondary file-save', 'Download');
    save.type = 'button';
    save.setAttribute('aria-label', `Download ${safeText(ref.name)}, ${sizeText(ref.size)}`);
    save.addEventListener('click', () => this.save(ref, save, status));
    const line = el('div', 'file-line');
    line.append(size, save);
    card.append(icon, name, line);
    return card;
  }

  inView(entries) {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      const load = this.waiting.get(e.target);
      this.waiting.delete(e.target);
      this.observer.unobserve(e.target);
      load?.();
    }
  }

  // show gives img an object URL of blob of its own.
  show(img, blob) {
    if (!img.isConnected) return; // left while loading
    const url = URL.createObjectURL(blob);
    this.urls.set(img, url);
    img.src = url;
  }

  /**
   * load resolves with the file's Blob, from the cache or downloaded once
   * for every caller; a failed download is not kept.
   */
  load(ref, onProgress) {
    const hit = this.cache.get(ref.fileId);
    if (hit) {
      this.cache.delete(ref.fileId); // most recently used last
      this.cache.set(ref.fileId, hit);
      return hit.blob;
    }
    const s = this.session();
    if (!s) return Promise.reject(new Error('signed out'));
    const blob = s.download(ref, { onProgress });
    const entry = { blob, size: Number(ref.size) };
    this.cache.set(ref.fileId, entry);
    blob.catch(() => this.cache.get(ref.fileId) === entry && this.cache.delete(ref.fileId));
    this.trim();
    return blob;
  }

  trim() {
    let total = 0;
    for (const e of this.cache.values()) total += e.size;
    for (const [id, e] of this.cache) {
      if (total <= CACHE_BYTES || this.cache.size === 1) break;
      this.cache.delete(id);
      total -= e.size;
    }
  }

  /**
   * sweep revokes the object URLs of images no longer in the DOM and stops
   * watching thumbnails that left before coming into view; the app calls
   * it after each render of the messages.
   */
  sweep() {
    for (const [img, url] of this.urls) {
      if (img.isConnected) continue;
      URL.revokeObjectURL(url);
      this.urls.delete(img);
    }
    for (const btn of this.waiting.keys()) {
      if (btn.isConnected) continue;
      this.observer.unobserve(btn);
      this.waiting.delete(btn);
    }
  }

  // save downloads the file (with its progress in status) and hands it to
  // the browser under its name.
  async save(ref, button, status) {
    button.disabled = true;
    status.textContent = 'Downloading…';
    try {
      const blob = await this.session().download(ref, {
        onProgress: (got, size) => {
          status.textContent = `Downloading… ${Math.floor((100 * got) / Math.max(size, 1))}%`;
        },
      });
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = safeText(ref.name);
      a.hidden = true;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), SAVE_URL_MS);
      status.textContent = '';
    } catch (err) {
      status.textContent = fileErrorText('open', err);
    } finally {
      button.disabled = false;
    }
  }

  // openViewer shows the image full size in the viewer dialog; its object
  // URL is revoked when the dialog closes.
  async openViewer(ref, status) {
    let blob;
    try {
      blob = await this.load(ref);
    } catch (err) {
      status.textContent = fileErrorText('open', err);
      return;
    }
    const dialog = document.getElementById('image-dialog');
    const img = document.getElementById('viewer-img');
    const url = URL.createObjectURL(blob);
    img.src = url;
    img.alt = safeText(ref.name);
    const save = document.getElementById('viewer-save');
    save.href = url;
    save.download = safeText(ref.name);
    document.getElementById('viewer-name').textContent = safeText(ref.name);
    dialog.addEventListener('close', () => {
      img.removeAttribute('src');
      save.removeAttribute('href');
      URL.revokeObjectURL(url);
    }, { once: true });
    dialog.showModal();
  }
}
