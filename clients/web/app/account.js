// The account dialogs' words, without DOM: how a device of the user reads
// in the Devices list, what the Change password dialog says before sending
// (the server's rules) and after a refusal, and what the sign-in form says
// when a session ended.

import { CloseReason, ErrorCode } from '../sdk/index.js';
import { utf8Length } from './text.js';
import { errText } from './view.js';

/**
 * deviceDetail is the line under a device's name in the Devices list: its
 * platform, whether it is connected now, and its last sign-in (the
 * server's last_login_ms, recorded again at most every 10 minutes or so),
 * in local time.
 */
export function deviceDetail(d) {
  const parts = [d.platform || 'unknown platform', d.online ? 'online now' : 'not connected'];
  parts.push(d.lastLoginMs > 0n ? `last sign-in ${localTime(Number(d.lastLoginMs))}`
    : 'never signed in');
  return parts.join(' · ');
}

// localTime is ms as YYYY-MM-DD HH:MM in the browser's time zone: the same
// in every locale, and sortable by eye.
function localTime(ms) {
  const t = new Date(ms);
  const two = (n) => String(n).padStart(2, '0');
  return `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())} ` +
    `${two(t.getHours())}:${two(t.getMinutes())}`;
}

/** MAX_PASSWORD_BYTES is the longest password the server takes, in UTF-8 bytes. */
export const MAX_PASSWORD_BYTES = 128;

/**
 * passwordLengthNote says that a password is over MAX_PASSWORD_BYTES, and
 * by how much, or '' when it is not. The forms refuse such a password with
 * this note: a maxlength attribute cut it short unseen, so that a pasted
 * long password was registered, or refused, as another one.
 */
export function passwordLengthNote(password) {
  const n = utf8Length(password);
  if (n <= MAX_PASSWORD_BYTES) return '';
  return `A password is at most ${MAX_PASSWORD_BYTES} bytes (UTF-8); this one has ${n}. ` +
    'Nothing was sent: shorten it.';
}

/**
 * newPasswordProblem says what the server would refuse in a new password
 * (8 to 128 bytes, not the username, not one repeated character), or that
 * the two entries differ or repeat the current one; '' when it may go.
 */
export function newPasswordProblem({ oldPassword, newPassword, again, username }) {
  if (newPassword !== again) return 'The two new passwords differ.';
  if (newPassword === oldPassword) return 'The new password is the current one.';
  const n = utf8Length(newPassword);
  if (n > MAX_PASSWORD_BYTES) return passwordLengthNote(newPassword);
  if (n < 8) return 'A password is 8 to 128 bytes long.';
  if (newPassword.toLowerCase() === String(username).toLowerCase()) {
    return 'A password may not be the username.';
  }
  if (new Set(newPassword).size === 1) return 'A password may not be one character repeated.';
  return '';
}

/**
 * changePasswordErrorText is what the dialog says when the change failed:
 * a wrong current password plainly, the server's reason for a weak new
 * one, and a lost answer as the unknown outcome it is.
 */
export function changePasswordErrorText(err) {
  if (err?.code === ErrorCode.INVALID_CREDENTIALS) {
    return 'Wrong current password; nothing was changed.';
  }
  if (err?.code === ErrorCode.RATE_LIMITED) return 'Too many tries; wait a while and try again.';
  if (err?.name === 'OutcomeUnknownError') {
    return 'The answer was lost: the password may or may not have changed. This tab finds ' +
      'out at its next sign-in; if it asks, try the new password first.';
  }
  return `Not changed: ${errText(err)}`;
}

/**
 * SIGNED_OUT_TEXT is what the sign-in form says when this device's tokens
 * were revoked elsewhere (SIGN_OUT_DEVICE from another device, or a
 * password change there): what happened, and what to do.
 */
export const SIGNED_OUT_TEXT = 'This device was signed out from another device or by a ' +
  'password change. Sign in again.';

/** SUSPENDED_TEXT is what the sign-in form says of a suspended account. */
export const SUSPENDED_TEXT = 'This account is suspended by the server\'s operator. Ask them ' +
  'to lift the suspension before you sign in again.';

/**
 * endedText is what the sign-in form says when err, a SessionEndedError or
 * a refused start, ended the session: a wrong password, a deleted account,
 * a replaced or signed-out device in words; anything else as errText.
 */
export function endedText(err) {
  if (err?.code === ErrorCode.INVALID_CREDENTIALS) return 'Wrong username or password.';
  if (err?.accountDeleted) return 'This account was deleted.';
  if (err?.accountSuspended || err?.code === ErrorCode.ACCOUNT_SUSPENDED) return SUSPENDED_TEXT;
  if (err?.close?.reason === CloseReason.KICKED) return 'Signed in elsewhere with this device.';
  if (err?.close?.reason === CloseReason.SIGNED_OUT) return SIGNED_OUT_TEXT;
  return errText(err);
}
