// The web app's user actions: wiring the page's controls (composer, files,
// conversation and group buttons, dialogs), signing out and deleting the
// account. Split from app.js.

import { ErrorCode, GroupAction, register } from '../sdk/index.js';
import { deleteAccountErrorText, errText, usernameProblem } from './view.js';
import { wireAccountDialogs } from './accountview.js';
import { passwordLengthNote } from './account.js';
import { $, app } from './state.js';
import {
  startSession, showLogin, resetState, ensureConv, markReadIfSeen, refreshGroup, watchPeers,
  sendTyping, closeConv, clearOpen, openConv, loadOlder,
} from './app.js';
import {
  sendText, attachFiles, showLengthNote, stopEdit, saveEdit, showConvNote, setReplyTo,
} from './sending.js';
import { scheduleRender, renderAll, showSideError } from './render.js';
import { wireSearch } from './searchview.js';

export function wireUi() {
  $('conv-error-dismiss').addEventListener('click', () => showConvNote(''));
  // The server's username rule, said in words: a pattern attribute gave
  // only the browser's "Please match the requested format.".
  $('login-user').addEventListener('input', () => {
    $('login-user').setCustomValidity(usernameProblem($('login-user').value.trim()));
  });
  $('login-user').addEventListener('invalid', () => {
    $('login-error').textContent = $('login-user').validationMessage;
  });
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const action = ev.submitter && ev.submitter.value;
    const username = $('login-user').value.trim();
    const password = $('login-pass').value;
    $('login-error').textContent = passwordLengthNote(password);
    if ($('login-error').textContent) return;
    app.storage?.clear();
    if (action === 'register') {
      try {
        await register(app.wsUrl, username, password);
      } catch (err) {
        $('login-error').textContent = err.code === ErrorCode.USERNAME_TAKEN
          ? 'That username is taken.' : errText(err);
        return;
      }
    }
    if (await startSession({ username, password })) $('login-pass').value = '';
  });

  $('signout').addEventListener('click', signOut);
  wireAccountDialogs({ session: () => app.session, username: () => app.me?.username || '',
    signOut });

  wireDeleteAccount();
  wireSearch();
  $('reconnect').addEventListener('click', () => app.session?.reconnectNow());
  $('back').addEventListener('click', closeConv);
  $('clear-btn').addEventListener('click', () => clearOpen(false));
  $('delete-btn').addEventListener('click', () => clearOpen(true));
  window.addEventListener('online', () => app.session?.reconnectNow());
  document.addEventListener('visibilitychange', () => {
    if (app.openId) markReadIfSeen(app.convs.get(app.openId));
    scheduleRender();
  });

  let searchTimer = 0;
  $('newchat-user').addEventListener('input', () => {
    clearTimeout(searchTimer);
    const q = $('newchat-user').value.trim();
    if (q.length < 3) return; // the server's shortest prefix
    // Debounced: SEARCH_USERS is rate-limited per user.
    searchTimer = setTimeout(async () => {
      try {
        const r = await app.session.searchUsers(q, 8);
        $('user-suggestions').replaceChildren(...r.users
          .filter((u) => u.userId !== app.me.userId)
          .map((u) => Object.assign(document.createElement('option'), { value: u.username })));
      } catch { /* suggestions are optional */ }
    }, 300);
  });

  $('newchat-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showSideError(null);
    const username = $('newchat-user').value.trim();
    try {
      const u = await app.session.getUser({ username });
      if (u.userId === app.me.userId) throw new Error('That is you.');
      app.users.set(String(u.userId), u.username);
      const [lo, hi] = u.userId < app.me.userId ? [u.userId, app.me.userId]
        : [app.me.userId, u.userId];
      $('newchat-user').value = '';
      await openConv(`p2p:${lo}:${hi}`);
      watchPeers();
    } catch (err) {
      showSideError(err.code === ErrorCode.NOT_FOUND ? new Error(`No user “${username}”.`) : err);
    }
  });

  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('text').value;
    // Refused whole and kept in the box: the server would refuse it
    // TOO_LARGE, and cutting it would send what the user did not write.
    if (showLengthNote(text)) return;
    if (app.editing) {
      saveEdit(text);
      return;
    }
    $('text').value = '';
    sendText(text);
  });
  $('text').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      $('composer').requestSubmit();
    } else if (ev.key === 'Escape' && app.editing) {
      stopEdit();
    }
  });
  $('text').addEventListener('input', () => {
    showLengthNote($('text').value);
    if (!app.editing) sendTyping($('text').value !== '');
  });
  wireAttach();
  $('edit-cancel').addEventListener('click', stopEdit);
  $('reply-cancel').addEventListener('click', () => setReplyTo(null));

  $('scroller').addEventListener('scroll', () => {
    const c = app.convs.get(app.openId);
    if (c && $('scroller').scrollTop < 40 && c.historyLoaded) loadOlder(c);
  });
  $('older').addEventListener('click', () => {
    const c = app.convs.get(app.openId);
    if (c) loadOlder(c);
  });

  $('newgroup').addEventListener('click', () => {
    $('group-error').textContent = '';
    $('group-dialog').showModal();
  });
  $('group-cancel').addEventListener('click', () => $('group-dialog').close());
  $('group-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('group-error').textContent = '';
    try {
      const ids = await userIds($('group-members').value);
      const ack = await app.session.createGroup($('group-name').value.trim(), ids);
      const c = ensureConv(ack.convId);
      c.name = $('group-name').value.trim();
      $('group-dialog').close();
      $('group-form').reset();
      await openConv(ack.convId);
    } catch (err) {
      $('group-error').textContent = errText(err);
    }
  });

  $('members-btn').addEventListener('click', () => {
    const open = $('members').hidden;
    $('members').hidden = !open;
    $('members-btn').setAttribute('aria-expanded', String(open));
    const c = app.convs.get(app.openId);
    if (open && c) refreshGroup(c);
    renderAll();
  });
  $('addmember-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('members-error').textContent = '';
    try {
      const ids = await userIds($('addmember-user').value);
      await app.session.manageGroup({ convId: app.openId, action: GroupAction.ADD, userIds: ids });
      $('addmember-user').value = '';
      refreshGroup(app.convs.get(app.openId));
    } catch (err) {
      $('members-error').textContent = errText(err);
    }
  });
  $('leave').addEventListener('click', async () => {
    try {
      await app.session.manageGroup({ convId: app.openId, action: GroupAction.LEAVE });
      $('members').hidden = true;
    } catch (err) {
      $('members-error').textContent = errText(err);
    }
  });
}

// wireAttach runs the Attach button, and drops and pastes of files into
// the conversation, and the image viewer's Close.
function wireAttach() {
  $('attach').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', () => {
    attachFiles([...$('file-input').files]);
    $('file-input').value = ''; // the same file may be chosen again
  });
  $('text').addEventListener('paste', (ev) => {
    const pasted = [...(ev.clipboardData?.files || [])];
    if (pasted.length === 0) return; // text pastes as text
    ev.preventDefault();
    attachFiles(pasted);
  });
  const hasFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes('Files');
  $('conv').addEventListener('dragover', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    $('conv').classList.add('dropping');
  });
  $('conv').addEventListener('dragleave', (ev) => {
    if (ev.target === $('conv') || !$('conv').contains(ev.relatedTarget)) {
      $('conv').classList.remove('dropping');
    }
  });
  $('conv').addEventListener('drop', (ev) => {
    $('conv').classList.remove('dropping');
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    attachFiles([...ev.dataTransfer.files]);
  });
  $('viewer-close').addEventListener('click', () => $('image-dialog').close());
}

// signOut signs this device out (LOGOUT) and returns to the sign-in view.
async function signOut() {
  const s = app.session;
  app.ending = true;
  try {
    await s?.logout();
  } catch { /* signed out locally anyway */ }
  resetState();
  showLogin('');
}

// userIds resolves comma-separated usernames to user ids.
export async function userIds(list) {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  const ids = [];
  for (const username of names) {
    try {
      const u = await app.session.getUser({ username });
      app.users.set(String(u.userId), u.username);
      ids.push(u.userId);
    } catch (err) {
      if (err.code === ErrorCode.NOT_FOUND) throw new Error(`No user “${username}”.`);
      throw err;
    }
  }
  return ids;
}

// wireDeleteAccount runs the "Delete account" dialog: the password again
// and a confirmation, then DELETE_ACCOUNT; once deleted, the session has
// forgotten its tokens and the app returns to the sign-in view.
function wireDeleteAccount() {
  const dialog = $('delete-dialog');
  $('delete-account').addEventListener('click', () => {
    $('delete-pass').value = '';
    $('delete-confirm').checked = false;
    $('delete-error').textContent = '';
    dialog.showModal();
  });
  $('delete-cancel').addEventListener('click', () => dialog.close());
  $('delete-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const s = app.session;
    if (!s) return;
    $('delete-error').textContent = passwordLengthNote($('delete-pass').value);
    if ($('delete-error').textContent) return;
    $('delete-submit').disabled = true;
    try {
      // The session's end is this action's, not news (onEnded); app.me
      // stays, so messages that come meanwhile are still counted.
      app.ending = true;
      await s.deleteAccount($('delete-pass').value);
    } catch (err) {
      app.ending = false;
      $('delete-error').textContent = deleteAccountErrorText(err);
      return;
    } finally {
      $('delete-pass').value = '';
      $('delete-submit').disabled = false;
    }
    dialog.close();
    resetState();
    showLogin('Your account was deleted.');
  });
}
