// The Devices and Change password dialogs of the web app. A user with a
// lost laptop signs it out here, or changes the password, which signs out
// every other device, without deleting the account.

import {
  changePasswordErrorText, deviceDetail, newPasswordProblem, passwordLengthNote,
} from './account.js';
import { el, errText, userEl } from './view.js';

const $ = (id) => document.getElementById(id);

/**
 * wireAccountDialogs runs both dialogs. app is {session, username}, read
 * at each use: session() the current Session (or null), username() the
 * signed-in user's; signOut() signs this device out as the header's button
 * does, which is what signing out the current device means.
 */
export function wireAccountDialogs(app) {
  const devices = $('devices-dialog');
  $('devices-btn').addEventListener('click', () => {
    $('devices-error').textContent = '';
    $('device-list').replaceChildren(el('li', '', 'Loading…'));
    devices.showModal();
    listDevices(app);
  });
  $('devices-close').addEventListener('click', () => devices.close());

  const dialog = $('password-dialog');
  $('password-btn').addEventListener('click', () => {
    $('password-form').reset();
    $('password-error').textContent = '';
    $('password-done').textContent = '';
    dialog.showModal();
  });
  $('password-cancel').addEventListener('click', () => dialog.close());
  $('password-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    changePassword(app);
  });
}

// listDevices fills the Devices list, this device first.
async function listDevices(app) {
  const s = app.session();
  if (!s) return;
  try {
    const list = await s.listDevices();
    list.sort((a, b) => Number(b.current) - Number(a.current) ||
      Number(b.lastLoginMs - a.lastLoginMs));
    $('device-list').replaceChildren(...list.map((d) => deviceItem(app, d)));
  } catch (err) {
    $('device-list').replaceChildren();
    $('devices-error').textContent = `Could not list the devices: ${errText(err)}`;
  }
}

function deviceItem(app, d) {
  const li = el('li', d.current ? 'device current' : 'device');
  li.dataset.device = d.deviceId;
  const name = el('div', 'device-name');
  name.append(userEl('bdi', '', d.deviceId));
  if (d.current) name.append(el('span', 'this', ' (this device)'));
  const out = el('button', 'danger', 'Sign out');
  out.type = 'button';
  out.setAttribute('aria-label', d.current ? 'Sign out this device'
    : `Sign out device ${d.deviceId}`);
  out.addEventListener('click', () => signOutDevice(app, d, out));
  li.append(name, el('div', 'sub', deviceDetail(d)), out);
  return li;
}

async function signOutDevice(app, d, button) {
  if (d.current) {
    $('devices-dialog').close();
    app.signOut();
    return;
  }
  $('devices-error').textContent = '';
  button.disabled = true;
  try {
    await app.session()?.signOutDevice(d.deviceId);
    await listDevices(app);
  } catch (err) {
    button.disabled = false;
    $('devices-error').textContent = `Not signed out: ${errText(err)}`;
  }
}

// changePassword checks the form as the server would, then sends the
// change; this device stays signed in with the new tokens.
async function changePassword(app) {
  const s = app.session();
  if (!s) return;
  const form = { oldPassword: $('pw-old').value, newPassword: $('pw-new').value,
    again: $('pw-again').value, username: app.username() };
  const problem = passwordLengthNote(form.oldPassword) || newPasswordProblem(form);
  $('password-error').textContent = problem;
  if (problem) return;
  $('password-submit').disabled = true;
  try {
    await s.changePassword(form.oldPassword, form.newPassword);
  } catch (err) {
    $('password-error').textContent = changePasswordErrorText(err);
    return;
  } finally {
    $('password-submit').disabled = false;
  }
  $('password-form').reset();
  $('password-done').textContent =
    'Password changed. Every other device was signed out; this one stays signed in.';
}
