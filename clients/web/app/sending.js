// Sending in the web app: text, files with their progress, edits,
// recalls and replies, and the notes the composer shows. Split from
// app.js.

import { ConvType } from '../sdk/index.js';
import { lengthNote, mentionsFor, quoteText } from './compose.js';
import { bodyText, changeErrorText, el, userEl } from './view.js';
import { Line, safeText } from './text.js';
import { fileErrorText, sizeText, uploadProblem } from './attach.js';
import { $, app } from './state.js';
import { nameOf_, sendTyping } from './app.js';
import { scheduleRender, limits } from './render.js';

// NOTE_MS is how long a note above the messages (a refusal) stays unless
// dismissed sooner.
const NOTE_MS = 10_000;

export function onOutbox() {
  scheduleRender();
}

export function sendText(text) {
  const c = app.convs.get(app.openId);
  if (!c || !text.trim()) return;
  const replyTo = app.replyTo && app.replyTo.convId === c.convId ? app.replyTo.seq : undefined;
  setReplyTo(null);
  let e;
  if (c.type === ConvType.P2P && c.lastSeq === 0n) {
    e = app.session.send({ toUserId: c.peerUserId, text }); // the first message creates it
  } else {
    const { mentions, mentionAll, allRefused } = mentionsFor(text,
      c.type === ConvType.GROUP ? c.group : null, app.me.userId, nameOf_);
    $('compose-note').textContent = allRefused
      ? '@all is for the group’s owner and admins; it was sent as text.' : '';
    e = app.session.send({ convId: c.convId, text, replyTo, mentions, mentionAll });
  }
  e.viewConvId = c.convId;
  sendTyping(false);
  scheduleRender();
  app.stickToBottom = true;
}

// attachFiles uploads each file to the open conversation and sends it as
// a FILE message once complete; the uploads show above the composer with
// their progress and a Cancel button. A file the server would refuse for
// its size is refused here, in words.
export function attachFiles(list) {
  const c = app.convs.get(app.openId);
  if (!c || !app.session) return;
  for (const file of list) {
    const problem = uploadProblem(file, limits());
    if (problem) {
      showConvNote(el('span', '', new Line([{ user: file.name }, `: ${problem}`])));
      continue;
    }
    sendOneFile(c, file);
  }
}

let uploadIds = 0;

async function sendOneFile(c, file) {
  const u = { id: ++uploadIds, name: file.name || 'file', size: file.size, sent: 0,
    convId: c.convId, error: '', ctl: new AbortController() };
  app.uploads.push(u);
  renderUploads();
  try {
    const ref = await app.session.upload(file, { name: u.name, ...await imageSize(file),
      signal: u.ctl.signal, onProgress: (sent) => {
        u.sent = sent;
        uploadItem(u);
      } });
    const first = c.type === ConvType.P2P && c.lastSeq === 0n; // it creates the conversation
    const e = app.session.sendFile(first ? { toUserId: c.peerUserId } : { convId: c.convId },
      ref);
    e.viewConvId = c.convId;
    app.uploads = app.uploads.filter((x) => x !== u);
    app.stickToBottom = true;
  } catch (err) {
    if (err.name === 'AbortError') app.uploads = app.uploads.filter((x) => x !== u);
    else u.error = fileErrorText('send', err, limits());
  }
  renderUploads();
  scheduleRender();
}

// imageSize is an image's {width, height} for its FileRef, so that a
// reader's thumbnail has its shape before it loads; {} for other files.
async function imageSize(file) {
  if (!/^image\//.test(file.type) || typeof createImageBitmap !== 'function') return {};
  try {
    const bmp = await createImageBitmap(file);
    const size = { width: bmp.width, height: bmp.height };
    bmp.close();
    return size;
  } catch {
    return {}; // not an image the browser reads: sent without a size
  }
}

// renderUploads lists the open conversation's uploads: name, progress and
// Cancel, or the error and Dismiss. Each keeps its element, updated in
// place as chunks go (uploadItem), so that Cancel stays under the pointer.
export function renderUploads() {
  const items = app.uploads.filter((u) => u.convId === app.openId).map(uploadItem);
  const list = $('uploads');
  // Put back only when changed: a node taken out and put back under the
  // pointer loses the click being made on it.
  if (items.length !== list.children.length || items.some((li, i) => list.children[i] !== li)) {
    list.replaceChildren(...items);
  }
}

function uploadItem(u) {
  if (!u.li) {
    u.li = el('li', 'upload');
    u.bar = document.createElement('progress');
    u.bar.max = u.size;
    u.bar.setAttribute('aria-label', `Uploading ${safeText(u.name)}`);
    u.state = el('span', 'upload-state');
    u.btn = el('button', 'link');
    u.btn.type = 'button';
    u.btn.addEventListener('click', () => {
      u.ctl.abort();
      app.uploads = app.uploads.filter((x) => x !== u);
      renderUploads();
    });
    u.li.append(userEl('span', 'file-name', u.name), u.bar, u.state, u.btn);
  }
  u.li.classList.toggle('failed', !!u.error);
  u.bar.hidden = !!u.error;
  u.bar.value = u.sent;
  const pct = Math.floor((100 * u.sent) / Math.max(u.size, 1));
  u.state.textContent = u.error || `${pct}% of ${sizeText(u.size)}`;
  u.btn.textContent = u.error ? 'Dismiss' : 'Cancel';
  u.btn.setAttribute('aria-label', `${u.btn.textContent} ${safeText(u.name)}`);
  return u.li;
}

// showLengthNote shows under the composer how far text is over the
// server's limit, or nothing; it reports whether text is over.
export function showLengthNote(text) {
  const note = lengthNote(text, limits());
  $('length-note').textContent = note;
  $('length-note').hidden = !note;
  $('text').setAttribute('aria-invalid', String(!!note));
  return note !== '';
}

// startEdit puts the text of m, the user's own message in c, in the
// composer to be edited; Save sends the EDIT, Cancel or Escape drops it.
// A draft in the composer is kept aside and comes back after.
export function startEdit(c, m) {
  setReplyTo(null);
  const draft = app.editing ? app.editing.draft : $('text').value;
  app.editing = { convId: c.convId, seq: m.seq, draft };
  $('text').value = bodyText(m);
  showLengthNote($('text').value);
  renderEditBar();
  $('text').focus();
}

export function stopEdit() {
  if (!app.editing) return;
  $('text').value = app.editing.draft;
  app.editing = null;
  showLengthNote($('text').value);
  renderEditBar();
}

export function renderEditBar() {
  const e = app.editing;
  const on = !!e && e.convId === app.openId;
  $('edit-bar').hidden = !on;
  $('send').textContent = on ? 'Save' : 'Send';
  $('edit-text').textContent = on ? `Editing your message #${e.seq}` : '';
}

// saveEdit sends the edit; the EDIT event that comes back through the
// stream changes the bubble. A refusal (the edit window has passed) is
// shown, and the text stays in the box.
export async function saveEdit(text) {
  const e = app.editing;
  if (!text.trim()) return;
  try {
    await app.session.edit(e.convId, e.seq, text);
    if (app.editing === e) stopEdit();
  } catch (err) {
    showConvNote(changeErrorText('edit', err));
  }
}

// recallMessage recalls the user's message m in c after a confirm; the
// RECALL event that comes back erases it, here and on every device.
export async function recallMessage(c, m) {
  if (!confirm('Recall this message? It is erased for everyone in the chat.')) return;
  try {
    await app.session.recall(c.convId, m.seq);
  } catch (err) {
    showConvNote(changeErrorText('recall', err));
  }
}

let noteTimer = 0;

// showConvNote shows content (text, or an element) above the messages, a
// refusal most often, until the user dismisses it or NOTE_MS pass: a later
// action does not wipe it before it is read, a newer note replaces it.
// Empty content takes the note away.
export function showConvNote(content) {
  clearTimeout(noteTimer);
  if (typeof content === 'string') $('conv-error').textContent = content;
  else $('conv-error').replaceChildren(content);
  $('conv-note').hidden = !content;
  if (content) noteTimer = setTimeout(() => showConvNote(''), NOTE_MS);
}

// setReplyTo makes the composer reply to message m of the open
// conversation, or to none (null), and shows what it quotes above it.
export function setReplyTo(m) {
  app.replyTo = m ? { convId: m.convId, seq: m.seq } : null;
  renderReplyBar();
  if (m) $('text').focus();
}

export function renderReplyBar() {
  const r = app.replyTo;
  const c = r && app.convs.get(r.convId);
  $('reply-bar').hidden = !c || r.convId !== app.openId;
  $('reply-text').replaceChildren(...(c
    ? [el('span', '', quoteText(r.seq, c.messages.get(String(r.seq)), nameOf_))] : []));
}
