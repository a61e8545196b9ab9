// End-to-end tests in headless Chromium of what a new user's trial found
// missing or wrong in the web app: a long text sent whole and an
// over-long one refused with a note; a peer's bidi override and control
// characters shown inert; editing and recalling one's own messages (and a
// refusal shown); the sign-in form saying the username rule; signing
// another device out and changing the password; the new-chat placeholder
// whole at desktop widths, and the header at 400 px.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { FLAG_ERROR, encodeFrame } from '../sdk/frame.js';
import { encodeStruct } from '../sdk/thrift.js';
import { ErrorCode, Op, schemas } from '../sdk/schema.js';
import {
  bodies, launch, openPage, send, shot, signIn, signUp, startChat, uname, waitMessage,
  waitOnline,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// refuseFirst is a WebSocket route that answers the page's first request
// of op itself, refused with code and message as the server would, and
// relays everything else.
function refuseFirst(op, code, message) {
  let refused = false;
  return (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      if (!refused && typeof m !== 'string' && m[3] === op) {
        refused = true;
        ws.send(Buffer.from(encodeFrame(op + 1, FLAG_ERROR, m.readUInt32BE(6),
          encodeStruct(schemas.ErrorResp, { code, message }))));
        return;
      }
      server.send(m);
    });
  };
}

// SIGNED_OUT is what the sign-in form says to a tab signed out from elsewhere.
const SIGNED_OUT = 'This device was signed out from another device or by a password ' +
  'change. Sign in again.';

// bubble is the locator of the open conversation's message whose body is text.
function bubble(page, text) {
  return page.locator('#messages .msg', {
    has: page.locator('.body', { hasText: new RegExp(`^${text}$`) }),
  });
}

describe('web app after the trial', () => {
  test('long text, inert controls, edit and recall', async () => {
    const ann = await openPage(browser, { route: refuseFirst(Op.RECALL, ErrorCode.FORBIDDEN,
      'forbidden: the recall window of 2m0s has passed') });
    const bob = await openPage(browser);
    const [a, b] = [uname('tann'), uname('tbob')];
    try {
      await signUp(ann, a);
      await signUp(bob, b);
      await startChat(ann, b);

      // 5,000 characters went out cut to 4,000 (maxlength); now whole.
      const long = `${'x'.repeat(4990)}END-OF-IT`;
      await send(ann, long);
      await bob.locator('.conv-item', { hasText: a }).click();
      await waitMessage(bob, long);

      // 4,097 emoji are 16,388 bytes of UTF-8: refused, said, and kept.
      const huge = '😀'.repeat(4097);
      await ann.fill('#text', huge);
      await ann.press('#text', 'Enter');
      await ann.waitForSelector('#length-note:not([hidden])');
      assert.match(await ann.textContent('#length-note'), /16,388 bytes, 4 bytes over/);
      assert.equal(await ann.inputValue('#text'), huge, 'the text left the box');
      assert.equal(await ann.locator('.msg[data-state=pending]').count(), 0);
      await shot(ann, 'too-long');
      await ann.fill('#text', '');
      await ann.waitForSelector('#length-note', { state: 'hidden' });

      // A bidi override and control characters show inert, isolated.
      await send(ann, 'a\u202Eevil');
      await send(ann, 'ding\u0007\u001b[2J');
      await waitMessage(bob, 'a\uFFFDevil');
      await waitMessage(bob, 'ding\u2407\u241b[2J');
      const iso = await bob.evaluate(() => {
        const body = [...document.querySelectorAll('#messages .body')].at(-1);
        const last = document.querySelector('.conv-item .conv-last bdi');
        return { dir: body.dir, bidi: getComputedStyle(body).unicodeBidi,
          preview: last?.textContent, previewBidi: last && getComputedStyle(last).unicodeBidi,
          raw: document.body.textContent.includes('\u202E') };
      });
      assert.deepEqual(iso, { dir: 'auto', bidi: 'isolate', preview: 'ding\u2407\u241b[2J',
        previewBidi: 'isolate', raw: false });
      // Reversed, "a\u202Eevil" drew "live" right to left: its "e" right of its "l".
      const order = await bob.evaluate(() => {
        const body = [...document.querySelectorAll('#messages .body')].at(-2);
        const node = body.firstChild;
        const x = (i) => {
          const r = document.createRange();
          r.setStart(node, i);
          r.setEnd(node, i + 1);
          return r.getBoundingClientRect().left;
        };
        return { e: x(2), l: x(5) };
      });
      assert.ok(order.e < order.l, `the text drew reversed: ${JSON.stringify(order)}`);
      await shot(bob, 'inert-text');

      // Edit: the text goes into the composer, Save sends the EDIT.
      await send(ann, 'see you at 5');
      // Edit comes once the message is stored (a pending one has none).
      const edit = bubble(ann, 'see you at 5').locator('button.edit');
      await edit.waitFor();
      await ann.fill('#text', 'a draft of mine'); // kept aside while editing
      await edit.focus();
      assert.equal(await edit.evaluate((e) => getComputedStyle(e).opacity), '1',
        'Edit hidden while focused');
      await edit.press('Enter');
      assert.equal(await ann.inputValue('#text'), 'see you at 5');
      assert.equal(await ann.textContent('#send'), 'Save');
      await ann.fill('#text', 'see you at 6');
      await shot(ann, 'editing');
      await ann.press('#text', 'Enter');
      await waitMessage(bob, 'see you at 6');
      await bubble(bob, 'see you at 6').locator('.meta', { hasText: 'edited' }).waitFor();
      assert.equal(await ann.textContent('#send'), 'Send');
      assert.equal(await ann.inputValue('#text'), 'a draft of mine', 'the draft is lost');

      // Recall: the first is refused (the relay answers as the server does
      // after the window), and the refusal is shown; the second goes.
      ann.on('dialog', (d) => d.accept());
      const recall = bubble(ann, 'see you at 6').locator('button.recall');
      await recall.click();
      await ann.waitForFunction(() => document.querySelector('#conv-error').textContent !== '');
      assert.match(await ann.textContent('#conv-error'),
        /^Not recalled: the server refused \(forbidden: the recall window of 2m0s has passed\)/);
      await recall.click();
      await waitMessage(bob, '(message recalled)');
      await waitMessage(ann, '(message recalled)');
      // The refusal stays until dismissed (or a few seconds pass), not
      // wiped by the next action.
      assert.match(await ann.textContent('#conv-error'), /^Not recalled: /);
      await ann.click('#conv-error-dismiss');
      assert.equal(await ann.textContent('#conv-error'), '');
      assert.equal(await ann.isVisible('#conv-error-dismiss'), false);
      assert.equal(await bob.locator('#messages button.edit').count(), 0,
        'Edit on the peer’s messages');
      assert.deepEqual((await bodies(bob)).slice(-1), ['(message recalled)']);
      assert.deepEqual([...ann.errors, ...bob.errors], []);
    } finally {
      await ann.context().close();
      await bob.context().close();
    }
  });

  test('Recall leaves one’s own message when the recall window closes', async () => {
    // recallWindowMs stands in for the server's 2 minutes; a refusal past
    // it is the server's to give, in words, as above.
    const ann = await openPage(browser, { query: { recallWindowMs: 3000 } });
    const bob = await openPage(browser);
    const [a, b] = [uname('wann'), uname('wbob')];
    try {
      await signUp(ann, a);
      await signUp(bob, b);
      await startChat(ann, b);
      await send(ann, 'gone in a moment');
      const own = bubble(ann, 'gone in a moment');
      await own.locator('button.recall').waitFor();
      await own.locator('button.recall').waitFor({ state: 'detached', timeout: 10_000 });
      assert.equal(await own.locator('button.edit').count(), 1, 'Edit left with Recall');
      assert.deepEqual([...ann.errors, ...bob.errors], []);
    } finally {
      await ann.context().close();
      await bob.context().close();
    }
  });

  test('the username rule, other devices signed out, the password changed', async () => {
    const laptop = await openPage(browser);
    const phone = await openPage(browser);
    const c = uname('tcara');
    try {
      // The sign-in form says the rule, not "Please match the requested format."
      for (const bad of ['john smith', 'zoé😀']) {
        await laptop.fill('#login-user', bad);
        await laptop.fill('#login-pass', 'whatever-pw');
        await laptop.click('button[value=register]');
        await laptop.waitForFunction(() =>
          document.querySelector('#login-error').textContent !== '');
        assert.match(await laptop.textContent('#login-error'),
          /^A username is 3–32 characters: ASCII letters, digits, _ \. or -; not /);
      }
      await shot(laptop, 'login-rule');

      await signUp(laptop, c);
      await signIn(phone, c);

      // The laptop lists both devices, itself first, and signs the phone out.
      await laptop.click('#devices-btn');
      await laptop.locator('#device-list .device').nth(1).waitFor();
      assert.equal(await laptop.locator('#device-list .device').first().getAttribute('class'),
        'device current');
      assert.match(await laptop.locator('.device.current .sub').textContent(),
        /^web · online now · last sign-in \d{4}-\d\d-\d\d \d\d:\d\d$/);
      await shot(laptop, 'devices');
      await laptop.setViewportSize({ width: 400, height: 700 });
      await shot(laptop, 'devices-400');
      const wide = await laptop.evaluate(() => [...document.querySelectorAll('#devices-dialog *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth).length);
      assert.equal(wide, 0, 'the devices dialog past the right edge at 400 px');
      await laptop.setViewportSize({ width: 1100, height: 700 });
      await laptop.click('.device:not(.current) button');
      await phone.waitForSelector('#login-view:not([hidden])', { timeout: 15_000 });
      assert.equal(await phone.textContent('#login-error'), SIGNED_OUT);
      // The signed-out phone leaves the list: only the live laptop stays.
      await laptop.waitForFunction(() =>
        document.querySelectorAll('#device-list .device').length === 1);
      assert.equal(await laptop.locator('#device-list .device').getAttribute('class'),
        'device current');
      await laptop.click('#devices-close');
      await waitOnline(laptop);

      // The phone signs in again; the laptop changes the password, which
      // signs the phone out and keeps the laptop in.
      await signIn(phone, c);
      await laptop.click('#password-btn');
      await laptop.fill('#pw-old', `pw-${c}`);
      await laptop.fill('#pw-new', 'a-new-secret');
      await laptop.fill('#pw-again', 'a-new-secreT');
      await laptop.click('#password-submit');
      assert.equal(await laptop.textContent('#password-error'), 'The two new passwords differ.');
      await laptop.fill('#pw-again', 'a-new-secret');
      await laptop.click('#password-submit');
      await laptop.waitForFunction(() =>
        document.querySelector('#password-done').textContent !== '');
      await shot(laptop, 'password');
      await phone.waitForSelector('#login-view:not([hidden])', { timeout: 15_000 });
      assert.equal(await phone.textContent('#login-error'), SIGNED_OUT);
      await laptop.click('#password-cancel');
      await waitOnline(laptop);
      await signIn(phone, c, 'a-new-secret');

      // Signing out this device from the list is signing out.
      await laptop.click('#devices-btn');
      await laptop.click('.device.current button');
      await laptop.waitForSelector('#login-view:not([hidden])');
      assert.deepEqual([...laptop.errors, ...phone.errors], []);
    } finally {
      await laptop.context().close();
      await phone.context().close();
    }
  });

  test('the new-chat placeholder is whole at desktop widths; the header at 400 px', async () => {
    const page = await openPage(browser);
    try {
      await signUp(page, uname('tdan'));
      // Suggestions in the datalist: Chromium then draws its arrow in the input.
      await page.fill('#newchat-user', uname('tann'));
      await page.waitForSelector('#user-suggestions option', { state: 'attached' });
      await page.fill('#newchat-user', '');
      for (const width of [1000, 1050, 1100, 1280]) {
        await page.setViewportSize({ width, height: 700 });
        const fit = await page.evaluate(() => {
          const input = document.querySelector('#newchat-user');
          const cs = getComputedStyle(input);
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = cs.font;
          const room = input.clientWidth - parseFloat(cs.paddingLeft) -
            parseFloat(cs.paddingRight);
          // The placeholder's text typed in, caret at its end: the box scrolls
          // when the text does not fit beside what Chromium draws in it.
          input.value = input.placeholder;
          input.focus();
          input.setSelectionRange(input.value.length, input.value.length);
          const scrolled = input.scrollLeft;
          input.value = '';
          input.blur();
          return { text: Math.ceil(ctx.measureText(input.placeholder).width), room, scrolled };
        });
        assert.equal(fit.scrolled, 0, `placeholder clipped at ${width} px: ${JSON.stringify(fit)}`);
        assert.ok(fit.text <= fit.room,
          `placeholder clipped at ${width} px: ${JSON.stringify(fit)}`);
      }
      await page.setViewportSize({ width: 1050, height: 700 });
      await shot(page, 'sidebar-1050');
      await page.setViewportSize({ width: 400, height: 700 });
      const past = await page.evaluate(() => [...document.querySelectorAll('.top button')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth).length);
      assert.equal(past, 0, 'header buttons past the right edge at 400 px');
      await page.emulateMedia({ colorScheme: 'dark' });
      await shot(page, 'header-400-dark');
      assert.deepEqual(page.errors, []);
    } finally {
      await page.context().close();
    }
  });
});
