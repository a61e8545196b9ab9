// Helpers of the browser tests: a headless Chromium (Debian's, driven by
// playwright-core), pages signed in as fresh users, and the terminal chat
// client of the Go binary. scripts/web-test.sh starts the server and sets:
//
//   RESONANCE_WEB_URL  the web app, e.g. http://127.0.0.1:41234/
//   RESONANCE_ADDR     the gateway's TCP address, for the terminal client
//   RESONANCE_BIN      the resonance binary (for `resonance chat`)
//   CHROMIUM           the browser (default /usr/bin/chromium)
//   SCREENSHOTS        where screenshots go (default test/screenshots)

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

export const env = {
  webUrl: process.env.RESONANCE_WEB_URL,
  addr: process.env.RESONANCE_ADDR,
  bin: process.env.RESONANCE_BIN,
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  screenshots: process.env.SCREENSHOTS || path.join(here, 'screenshots'),
};

// run makes usernames unique per run, so tests can run again on one server.
const run = Date.now().toString(36).slice(-5);
export const uname = (base) => `${base}_${run}`;

// signedUp are the usernames signUp registered in this run: two tests that
// took the same uname base shared an account, and the second's sign-up
// failed as a timeout on a form that said the name was taken.
const signedUp = new Set();

export async function launch() {
  if (!env.webUrl) throw new Error('RESONANCE_WEB_URL is not set; run scripts/web-test.sh');
  mkdirSync(env.screenshots, { recursive: true });
  return chromium.launch({
    executablePath: env.chromium,
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

/** appUrl is the web app's URL with query parameters. */
export function appUrl(query = {}) {
  const u = new URL(env.webUrl);
  for (const [k, v] of Object.entries({ debug: '1', ...query })) u.searchParams.set(k, v);
  return u.toString();
}

/**
 * openPage opens the app in a fresh browser context (its own storage, so
 * its own device), or as another tab of context when given (a tab has its
 * own sessionStorage, so it is another device too, in the same browser).
 * Uncaught exceptions collect in page.errors.
 */
export async function openPage(browser, { query, route, context: shared } = {}) {
  const context = shared ||
    await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.errors = []; // uncaught exceptions: a test fails on any
  page.on('pageerror', (e) => page.errors.push(e.message));
  if (route) await page.routeWebSocket(/^ws:/, route);
  await page.goto(appUrl(query));
  await page.waitForSelector('#login-view:not([hidden]), #chat-view:not([hidden])');
  return page;
}

/** signUp registers username on the login form and waits for the chat view. */
export async function signUp(page, username, password = `pw-${username}`) {
  if (signedUp.has(username)) {
    throw new Error(`${username} is signed up by another test of this run: pick another name`);
  }
  signedUp.add(username);
  await page.fill('#login-user', username);
  await page.fill('#login-pass', password);
  await page.click('button[value=register]');
  await page.waitForSelector('#chat-view:not([hidden])', { timeout: 15_000 });
  await waitOnline(page);
}

/** signIn signs an existing user in on the login form and waits until online. */
export async function signIn(page, username, password = `pw-${username}`) {
  await page.fill('#login-user', username);
  await page.fill('#login-pass', password);
  await page.click('button[value=login]');
  await page.waitForSelector('#chat-view:not([hidden])', { timeout: 15_000 });
  await waitOnline(page);
}

export async function waitOnline(page, timeout = 15_000) {
  await page.waitForSelector('#conn[data-state=online]', { timeout });
}

/** startChat opens a 1:1 conversation with username from the sidebar. */
export async function startChat(page, username) {
  await page.fill('#newchat-user', username);
  await page.click('#newchat-form button');
  await page.waitForFunction((name) =>
    document.querySelector('#conv-title')?.textContent === name, username);
}

/** send types text in the composer and presses Enter. */
export async function send(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/** bodies returns the texts of the open conversation's messages, in order. */
export function bodies(page) {
  return page.$$eval('#messages .msg .body', (els) => els.map((e) => e.textContent));
}

/** waitMessage waits until the open conversation shows a message with text. */
export async function waitMessage(page, text, timeout = 10_000) {
  await page.waitForFunction((t) => [...document.querySelectorAll('#messages .msg .body')]
    .some((e) => e.textContent === t), text, { timeout });
}

/** delivered returns the SDK's delivery log of the page (?debug=1), across reloads. */
export function delivered(page) {
  return page.evaluate(() => window.resonance.log());
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(env.screenshots, `${name}.png`) });
}

/**
 * TerminalChat runs `resonance chat` (the Go terminal client over TCP) and
 * collects its output lines.
 */
export class TerminalChat {
  constructor(args, password) {
    this.out = '';
    this.proc = spawn(env.bin, ['chat', '--addr', env.addr, ...args], {
      env: { ...process.env, RESONANCE_PASSWORD: password },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc.stdout.on('data', (d) => { this.out += d; });
    this.proc.stderr.on('data', (d) => { this.out += d; });
    this.exited = new Promise((resolve) => this.proc.on('exit', resolve));
  }

  line(text) {
    this.proc.stdin.write(`${text}\n`);
  }

  /** waitFor polls the output until it contains text n times. */
  async waitFor(text, { n = 1, timeout = 10_000 } = {}) {
    const deadline = Date.now() + timeout;
    while (this.out.split(text).length - 1 < n) {
      if (Date.now() > deadline) {
        throw new Error(`terminal chat never printed ${JSON.stringify(text)}; output:\n${this.out}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async quit() {
    this.line('/quit');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}
