// Files and images in the web app, without DOM: what a FILE message reads
// as in the list and in a quote, a file's size in words, which images load
// inline, and what a failed upload or download says. File names are user
// text: the callers show them cleaned and isolated (text.js).

import { ContentType, DEFAULT_LIMITS, ErrorCode, fileRefOf, isImage } from '../sdk/index.js';

/**
 * THUMB_MAX_BYTES bounds the images shown inline: a larger one shows as a
 * file card, downloaded only when the user asks, so that a history page
 * of photos does not pull tens of megabytes.
 */
export const THUMB_MAX_BYTES = 4 << 20;

/**
 * fileRefOfMessage is the FileRef of a FILE message, or null for another
 * message, a recalled one, or content that does not decode.
 */
export function fileRefOfMessage(m) {
  if (m.contentType !== ContentType.FILE || m.recalled) return null;
  try {
    return fileRefOf(m);
  } catch {
    return null;
  }
}

/** showsInline reports whether ref is an image small enough to load as a thumbnail. */
export function showsInline(ref) {
  return isImage(ref) && Number(ref.size) <= THUMB_MAX_BYTES;
}

/**
 * fileLabel is a FILE message in one line, as the server's offline
 * notifications preview it: "Photo" for an image, else its name (user
 * text).
 */
export function fileLabel(ref) {
  return isImage(ref) ? 'Photo' : ref.name;
}

/**
 * sizeText is a byte count in words, in binary units with one decimal as
 * the terminal client writes them: "830 B", "12.4 KiB", "25.0 MiB".
 */
export function sizeText(bytes) {
  const n = Number(bytes);
  if (n < 1024) return `${n} B`;
  let div = 1024;
  let unit = 0;
  while (n / div >= 1024 && unit < 4) {
    div *= 1024;
    unit++;
  }
  return `${(n / div).toFixed(1)} ${'KMGTP'[unit]}iB`;
}

/**
 * uploadProblem says why file cannot be sent before anything goes (empty,
 * or over the server's limit as limits, the session's, say), or ''.
 */
export function uploadProblem(file, limits = DEFAULT_LIMITS) {
  if (file.size === 0) return 'Not sent: the file is empty.';
  if (file.size > limits.maxFileBytes) {
    return `Not sent: the file is ${sizeText(file.size)}, over the limit of ` +
      `${sizeText(limits.maxFileBytes)}.`;
  }
  return '';
}

// serverLimit reads the limit out of the server's TOO_LARGE message ("file
// over 26214400 bytes"), else takes the one the login reported.
function serverLimit(err, limits) {
  const m = /file over (\d+) bytes/.exec(err.serverMessage || '');
  return m ? Number(m[1]) : limits.maxFileBytes;
}

/**
 * fileErrorText is what the app says when sending (verb 'send') or
 * opening (verb 'open') a file failed, in words: the limit for TOO_LARGE
 * (the server's words, else limits, the session's),
 * "no longer available" for NOT_FOUND (its message was recalled, or the
 * file expired), a damaged download, a cancel.
 */
export function fileErrorText(verb, err, limits = DEFAULT_LIMITS) {
  const not = verb === 'send' ? 'Not sent' : 'Could not open the file';
  if (err?.name === 'AbortError') return 'Cancelled.';
  if (err?.name === 'FileMismatchError') {
    return `${not}: it arrived damaged (its bytes do not match); try again.`;
  }
  switch (err?.code) {
    case ErrorCode.TOO_LARGE:
      return `${not}: the file is over the server's limit of ` +
        `${sizeText(serverLimit(err, limits))}.`;
    case ErrorCode.NOT_FOUND:
      return verb === 'send' ? `${not}: the upload is no longer on the server; try again.`
        : 'This file is no longer available: its message was recalled, or the file expired.';
    case ErrorCode.RATE_LIMITED:
      return `${not}: too many uploads at once; wait a few seconds and try again.`;
    case ErrorCode.BAD_REQUEST:
      return `${not}: the server refused it (${err.serverMessage || 'bad request'}).`;
    default:
      return `${not}: ${err?.serverMessage || err?.message || String(err)}`;
  }
}
