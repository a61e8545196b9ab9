// The web app's message search box: the search form in the conversation
// list's header, "Only in" the open conversation or in all of them, its
// results (conversation, sender, time, the text with the match marked),
// More for older matches, and opening a result's conversation at the
// message. Paging and matching are search.js's.

import { ConvType, ErrorCode } from '../sdk/index.js';
import { bodyText, el, errText, reconcile, userEl } from './view.js';
import { line, safeText } from './text.js';
import { MessageSearch, matchParts, queryProblem, snippet } from './search.js';
import { $, app } from './state.js';
import { convTitle, loadOlder, nameOf_, openConv } from './app.js';

// MAX_PAGES_TO_MESSAGE bounds the history pages opening a result loads to
// reach its message; an older one opens the conversation only.
const MAX_PAGES_TO_MESSAGE = 10;
const FOUND_SHOWN_MS = 2500;

let current = null; // the MessageSearch shown, or null
let failure = ''; // why its last More failed, shown until the next

/** wireSearch wires the search form, More and Close. */
export function wireSearch() {
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    startSearch($('search-text').value);
  });
  $('search-more').addEventListener('click', () => more(current));
  $('search-close').addEventListener('click', closeSearch);
  $('search-text').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') closeSearch();
  });
}

/** closeSearch hides the results and forgets the search, e.g. at sign-out. */
export function closeSearch() {
  current = null;
  $('search-text').value = '';
  $('search-panel').hidden = true;
  $('search-results').replaceChildren();
}

// startSearch starts a search for text of the open conversation, when
// "Only in" it is ticked, or of all the user's conversations; or says what
// the server would refuse without asking it.
function startSearch(text) {
  $('search-panel').hidden = false;
  const problem = queryProblem(text);
  const convId = $('search-here').checked && app.openId ? app.openId : '';
  current = problem ? null : new MessageSearch(text, { convId });
  failure = '';
  renderSearch();
  if (problem) setNote(problem);
  else more(current);
}

// more asks for the next matches of search and shows them, unless another
// search replaced it meanwhile.
async function more(search) {
  if (!search || !app.session || search.busy) return;
  const asking = search.more(app.session);
  failure = '';
  renderSearch(); // Searching…
  let why = '';
  try {
    await asking;
  } catch (err) {
    why = failureText(err);
  }
  if (search !== current) return;
  failure = why;
  renderSearch();
}

function failureText(err) {
  if (err.code === ErrorCode.RATE_LIMITED) return 'Too many searches; wait a moment and try again.';
  return `Search failed: ${errText(err)}`;
}

// setNote shows the search's status, an app sentence or a Line with user
// text; only a change, since the status region announces each one.
function setNote(text) {
  if ($('search-note').textContent === String(text)) return;
  $('search-note').replaceChildren(el('span', '', text));
}

/**
 * renderSearch shows the current search's results, newest first, and its
 * status; renderAll calls it, so names looked up meanwhile show.
 */
export function renderSearch() {
  renderScope();
  const s = current;
  if (!s) {
    $('search-results').replaceChildren();
    $('search-more').hidden = true;
    return;
  }
  reconcile($('search-results'), s.results.map((m) => ({
    key: `${m.convId}#${m.seq}`,
    version: [resultConvTitle(m.convId), senderName(m)].join('|'),
    build: () => resultEl(m, s.query),
  })));
  $('search-more').hidden = s.done || !s.asked || s.busy;
  if (s.busy) setNote('Searching…');
  else if (failure) setNote(failure);
  else setNote(statusText(s));
}

// renderScope offers "Only in" the open conversation, named as the list
// names it; with none open there is nothing to limit the search to.
function renderScope() {
  const open = app.openId ? app.convs.get(app.openId) : null;
  $('search-here-row').hidden = !open;
  if (!open) {
    $('search-here').checked = false;
    return;
  }
  const name = safeText(convTitle(open));
  if ($('search-here-name').textContent !== name) $('search-here-name').textContent = name;
}

function statusText(s) {
  const n = s.results.length;
  if (n === 0 && s.done && s.convId) {
    return line`No messages in ${resultConvTitle(s.convId)} contain “${s.query}”.`;
  }
  if (n === 0 && s.done) return line`No messages contain “${s.query}”.`;
  if (n === 0) return 'No matches in the newest messages; More searches older ones.';
  const found = n === 1 ? '1 message found' : `${n} messages found`;
  return s.done ? `${found}.` : `${found}; More for older ones.`;
}

// resultEl is one match: a button naming its conversation, sender and
// time, with the text around the match, which is marked. User text is
// cleaned and isolated as everywhere (view.js): the text's parts go in
// text nodes and <mark>s of one dir="auto" element.
function resultEl(m, query) {
  const li = document.createElement('li');
  const btn = el('button', 'search-hit');
  btn.type = 'button';
  btn.dataset.conv = m.convId;
  btn.dataset.seq = String(m.seq);
  const head = el('span', 'search-head');
  head.append(userEl('bdi', 'search-conv', resultConvTitle(m.convId)), ' · ',
    userEl('bdi', 'search-who', senderName(m)), ' · ',
    el('span', 'search-time', dateTimeText(m.sendTimeMs)));
  const body = el('span', 'search-text');
  body.dir = 'auto';
  for (const p of matchParts(safeText(snippet(bodyText(m), query)), query)) {
    body.append(p.match ? el('mark', '', p.text) : document.createTextNode(p.text));
  }
  btn.append(head, body);
  btn.addEventListener('click', () => openAt(m));
  li.append(btn);
  return li;
}

// resultConvTitle names a result's conversation as the list does, also one
// the list does not hold (without adding it there).
function resultConvTitle(convId) {
  const known = app.convs.get(convId);
  if (known) return convTitle(known);
  if (!convId.startsWith('p2p:')) return 'Group';
  const [, a, b] = convId.split(':');
  const peer = String(app.me?.userId) === a ? b : a;
  return convTitle({ type: ConvType.P2P, peerUserId: BigInt(peer), convId });
}

function senderName(m) {
  return m.senderId === app.me?.userId ? 'You' : nameOf_(m.senderId);
}

// dateTimeText is a match's time with its date: a match may be old.
function dateTimeText(ms) {
  return new Date(Number(ms)).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

// openAt opens m's conversation and pages its history back until m is
// loaded (a few pages at most), then scrolls to it and marks it a moment.
async function openAt(m) {
  await openConv(m.convId);
  const c = app.convs.get(m.convId);
  const key = String(m.seq);
  for (let i = 0; i < MAX_PAGES_TO_MESSAGE && c && !c.messages.has(key) && c.hasOlder; i++) {
    await loadOlder(c);
  }
  const li = $('messages').querySelector(`li[data-seq="${key}"]`);
  if (!li) return;
  li.scrollIntoView({ block: 'center' });
  li.classList.add('found');
  setTimeout(() => li.classList.remove('found'), FOUND_SHOWN_MS);
}
