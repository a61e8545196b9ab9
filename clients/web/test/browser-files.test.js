// End-to-end test in headless Chromium of files and images: one user
// attaches a file and an image, the other sees the image as a thumbnail
// (and full size), downloads the file and gets the same bytes, and both
// are there again from history after a reload; screenshots in light and
// dark and at 400 px. Recalled, the file is gone for the reader.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { deflateSync } from 'node:zlib';

import {
  launch, openPage, send, shot, signUp, startChat, uname, waitMessage, waitOnline,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// png is a w × h RGB gradient as a PNG file.
function png(w, h) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const at = y * (w * 3 + 1) + 1 + x * 3;
      raw[at] = (x * 255) / w;
      raw[at + 1] = (y * 255) / h;
      raw[at + 2] = 180;
    }
  }
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// thumbLoaded waits until the open conversation shows a loaded thumbnail
// of width natural pixels.
// On a timeout it says what the page showed instead.
async function thumbLoaded(page, width) {
  try {
    await page.waitForFunction((w) => [...document.querySelectorAll('#messages .thumb img')]
      .some((img) => img.complete && img.naturalWidth === w), width, { timeout: 15_000 });
  } catch (err) {
    const seen = await page.evaluate(() => ({
      messages: [...document.querySelectorAll('#messages .msg')].map((m) => m.outerHTML),
      uploads: document.getElementById('uploads').textContent,
      error: document.getElementById('conv-error').textContent,
    }));
    throw new Error(`no thumbnail ${width} px wide: ${JSON.stringify(seen, null, 1)}; ` +
      `console: ${page.consoleLines.join(' | ')}`, { cause: err });
  }
}

// watchConsole collects page's console warnings and errors in page.consoleLines.
function watchConsole(page) {
  page.consoleLines = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') page.consoleLines.push(m.text());
  });
  return page;
}

describe('files and images', () => {
  test('an image and a file sent, seen, downloaded, and kept in history', async () => {
    const ann = watchConsole(await openPage(browser));
    const bob = watchConsole(await openPage(browser));
    const [a, b] = [uname('fann'), uname('fbob')];
    const image = png(320, 200);
    // Three chunks, bytes that differ along the file.
    const doc = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31 + (i >> 9)) & 0xff));
    try {
      await signUp(ann, a);
      await signUp(bob, b);
      await startChat(ann, b);
      await send(ann, 'two files coming');

      await ann.setInputFiles('#file-input', { name: 'quarterly report.pdf',
        mimeType: 'application/pdf', buffer: doc });
      await ann.waitForSelector('#messages .msg[data-state=sent] .file-card');
      await ann.setInputFiles('#file-input', { name: 'sunset.png', mimeType: 'image/png',
        buffer: image });
      await thumbLoaded(ann, 320);
      assert.equal(await ann.locator('#uploads li').count(), 0, 'the uploads list emptied');
      assert.equal(await ann.textContent('.conv-item .conv-last'), 'You: Photo');

      // Bob: the list says "Photo", as the server's previews do; the image
      // loads inline and opens full size; the file downloads whole.
      const item = bob.locator('.conv-item', { hasText: a });
      await item.waitFor();
      await bob.waitForFunction(() =>
        document.querySelector('.conv-item .conv-last')?.textContent === 'Photo');
      await item.click();
      await waitMessage(bob, 'two files coming');
      await thumbLoaded(bob, 320);
      const card = bob.locator('#messages .file-card');
      assert.equal(await card.locator('.file-name').textContent(), 'quarterly report.pdf');
      assert.equal(await card.locator('.file-size').textContent(), '68.4 KiB');
      const [download] = await Promise.all([
        bob.waitForEvent('download'),
        card.locator('.file-save').click(),
      ]);
      assert.equal(download.suggestedFilename(), 'quarterly report.pdf');
      assert.ok((await readFile(await download.path())).equals(doc), 'the same bytes');

      await shot(bob, 'files-light');
      await bob.locator('#messages .thumb').click();
      await bob.waitForFunction(() => {
        const img = document.getElementById('viewer-img');
        return document.getElementById('image-dialog').open && img.complete &&
          img.naturalWidth === 320;
      });
      await shot(bob, 'files-viewer');
      await bob.click('#viewer-close');

      // A reload brings both back from history, the image loaded again.
      await bob.reload();
      await waitOnline(bob);
      await waitMessage(bob, 'two files coming');
      await thumbLoaded(bob, 320);
      await bob.locator('#messages .file-card').waitFor();

      await bob.emulateMedia({ colorScheme: 'dark' });
      await shot(bob, 'files-dark');
      await bob.setViewportSize({ width: 400, height: 700 });
      await thumbLoaded(bob, 320);
      const box = await bob.locator('#messages .thumb').boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 400, `thumbnail at ${box.x}+${box.width}`);
      const attach = await bob.locator('#attach').boundingBox();
      assert.ok(attach.x >= 0 && attach.x + attach.width <= 400, 'the Attach button on screen');
      await shot(bob, 'files-400');

      // Recalled, the file is gone for bob: the bubble says so, and the
      // server answers a download of it NOT_FOUND (1006).
      const fileId = await bob.locator('#messages .file:has(.file-card)')
        .getAttribute('data-file-id');
      ann.on('dialog', (d) => d.accept());
      await ann.locator('#messages .msg', { has: ann.locator('.file-card') })
        .locator('button.recall').click();
      await waitMessage(bob, '(message recalled)');
      assert.equal(await bob.locator('#messages .file-card').count(), 0);
      assert.equal(await bob.evaluate((id) => window.resonance.app.session.download({ fileId: id })
        .then(() => 'downloaded', (err) => err.code), fileId), 1006);
      assert.deepEqual([...ann.errors, ...bob.errors], []);
    } finally {
      await ann.context().close();
      await bob.context().close();
    }
  });

  test('a small image fills its box, and one that does not decode is a file card', async () => {
    const ann = watchConsole(await openPage(browser));
    const bob = await openPage(browser);
    const [a, b] = [uname('iann'), uname('ibob')];
    const junk = Buffer.from('not an image at all, whatever the name says\n');
    try {
      await signUp(ann, a);
      await signUp(bob, b);
      await startChat(ann, b);

      // A 120 × 80 image: the box is as wide as the image, no grey strip.
      await ann.setInputFiles('#file-input', { name: 'small.png', mimeType: 'image/png',
        buffer: png(120, 80) });
      await thumbLoaded(ann, 120);
      const sizes = await ann.evaluate(() => {
        const btn = document.querySelector('#messages .thumb');
        const img = btn.querySelector('img').getBoundingClientRect();
        const box = btn.getBoundingClientRect();
        return { box: [box.width, box.height], img: [img.width, img.height] };
      });
      assert.deepEqual(sizes.box, sizes.img, 'the thumbnail box against its image');

      // Named .png, typed image/png, but not an image: the file card, and
      // its Download gives the bytes.
      await ann.setInputFiles('#file-input', { name: 'fake.png', mimeType: 'image/png',
        buffer: junk });
      const card = ann.locator('#messages .file-card', { hasText: 'fake.png' });
      try {
        await card.waitFor({ timeout: 15_000 });
      } catch (err) {
        const seen = await ann.evaluate(() => [...document.querySelectorAll('#messages .msg')]
          .map((m) => m.outerHTML).at(-1));
        throw new Error(`no file card for fake.png: ${seen}`, { cause: err });
      }
      assert.equal(await ann.locator('#messages .thumb').count(), 1,
        'only the small image a thumbnail');
      const [download] = await Promise.all([
        ann.waitForEvent('download'),
        card.locator('.file-save').click(),
      ]);
      assert.equal(download.suggestedFilename(), 'fake.png');
      assert.ok((await readFile(await download.path())).equals(junk), 'the same bytes');
      assert.deepEqual(ann.errors, []);
    } finally {
      await ann.context().close();
      await bob.context().close();
    }
  });
});
