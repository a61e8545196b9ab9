// Files and images (docs/protocol.md, Files): a file is uploaded in
// chunks (UPLOAD), sent as a FILE message whose content is a Thrift-binary
// common.FileRef, and downloaded in chunks by each reader (DOWNLOAD), with
// the semantics of the Go SDK's client/files.go: chunks paced under the
// gateway's frame rate, an upload resumed on the next connection from
// where the server says it stands, a download checked against its SHA-256.

import { ClosedError, ResonanceError, TimeoutError } from './connection.js';
import { ContentType, Op, schemas } from './schema.js';
import { sha256 } from './sha256.js';
import { decodeStruct, encodeStruct } from './thrift.js';

/** MAX_FILE_CHUNK is the most bytes one UPLOAD carries or one DOWNLOAD returns. */
export const MAX_FILE_CHUNK = 32768;

/** MAX_FILE_SIZE is the server's default file size limit (TOO_LARGE beyond). */
export const MAX_FILE_SIZE = 25 << 20;

// CHUNK_EVERY_MS and CHUNK_BURST pace one file's chunks to half the
// gateway's default frame rate (200 a second, bursts of 400), as the Go
// SDK does: chunks sent as fast as their answers come back went over the
// rate on a fast link, and the gateway closed the connection for it.
const CHUNK_EVERY_MS = 10;
const CHUNK_BURST = 100;

// MAX_ATTEMPTS is how many tries in a row that move no byte an upload or a
// download makes before it gives up.
const MAX_ATTEMPTS = 5;

/**
 * FileMismatchError means a downloaded file's bytes do not hash to the
 * SHA-256 the server stored for it, or are not its size.
 */
export class FileMismatchError extends Error {
  constructor(fileId) {
    super(`file ${fileId}: the downloaded bytes do not match its sha256`);
    this.name = 'FileMismatchError';
  }
}

/** ChunkPacer lets CHUNK_BURST chunks through at once, then one every CHUNK_EVERY_MS. */
export class ChunkPacer {
  constructor(now = () => performance.now()) {
    this.now = now;
    this.due = 0; // when the chunks so far would have ended at one per CHUNK_EVERY_MS
  }

  /** wait resolves when the next chunk may go. */
  wait() {
    const now = this.now();
    this.due = Math.max(this.due, now) + CHUNK_EVERY_MS;
    const early = this.due - now - CHUNK_BURST * CHUNK_EVERY_MS;
    return early > 0 ? new Promise((r) => setTimeout(r, early)) : Promise.resolve();
  }
}

/**
 * mimeOf is the media type to upload a file as: the browser's type
 * without parameters (the server takes no spaces), or
 * application/octet-stream when it is unknown or unfit.
 */
export function mimeOf(type) {
  const t = String(type || '').split(';')[0].trim().toLowerCase();
  return /^[!-~]+\/[!-~]+$/.test(t) && t.length <= 127 ? t : 'application/octet-stream';
}

/** isImage reports whether a FileRef is an image the app may show inline. */
export function isImage(ref) {
  return /^image\//.test(ref.mime);
}

/** encodeFileRef is the content of a FILE message naming ref. */
export function encodeFileRef(ref) {
  // The optional fields go only when set: a zero width would be the
  // sender's word that the image has no pixels.
  const { width, height, caption, ...rest } = ref;
  return encodeStruct(schemas.FileRef, { ...rest, width: width || undefined,
    height: height || undefined, caption: caption || undefined });
}

/** fileRefOf decodes the FileRef of a FILE message; it throws on a malformed one. */
export function fileRefOf(m) {
  if (m.contentType !== ContentType.FILE) throw new Error(`message ${m.seq} is not a FILE`);
  return decodeStruct(schemas.FileRef, m.content);
}

// again reports whether a failed chunk request may succeed if repeated,
// on this connection after a backoff or on the next one.
function again(err) {
  if (err instanceof ResonanceError) return err.retryable;
  return err instanceof ClosedError || err instanceof TimeoutError;
}

function abortError(signal) {
  return signal.reason instanceof Error ? signal.reason
    : new DOMException('the transfer was cancelled', 'AbortError');
}

// Transfer runs the chunks of one upload or download on a Session's
// connections: step(conn) does one request and reports whether the
// transfer is over; a retryable failure waits a backoff and goes on, on the
// next connection when this one is gone, until MAX_ATTEMPTS tries in a row
// moved nothing.
class Transfer {
  constructor(session, signal) {
    this.session = session;
    this.signal = signal;
    this.pace = new ChunkPacer();
    this.failures = 0;
  }

  async run(step) {
    let backoff = this.session.opts.minBackoffMs;
    for (;;) {
      if (this.signal?.aborted) throw abortError(this.signal);
      try {
        const conn = await this.session.connection();
        for (;;) {
          if (this.signal?.aborted) throw abortError(this.signal);
          await this.pace.wait();
          if (await step(conn)) return;
          this.failures = 0;
          backoff = this.session.opts.minBackoffMs;
        }
      } catch (err) {
        if (!again(err) || ++this.failures >= MAX_ATTEMPTS || this.session.ended) throw err;
      }
      await new Promise((r) => setTimeout(r, Math.random() * backoff + backoff / 2));
      backoff = Math.min(backoff * 2, this.session.opts.maxBackoffMs);
    }
  }
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * upload uploads blob (a Blob or File) on session's connections and
 * resolves with the FileRef to send (sendFile). opts: name (default the
 * File's name), mime (default its type), width and height of an image,
 * caption, onProgress(sentBytes, size), signal (an AbortSignal: the
 * upload stops between chunks and rejects with its reason). A lost
 * connection resumes the upload on the next one from where the server
 * stands. Rejects with TOO_LARGE for a file over the server's limit.
 */
export async function upload(session, blob, opts = {}) {
  const name = opts.name || blob.name || 'file';
  const mime = mimeOf(opts.mime || blob.type);
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const size = bytes.length;
  if (size === 0) throw new RangeError(`upload ${name}: the file is empty`);
  const digest = await sha256(bytes);
  const chunkAt = (off) => bytes.subarray(off, Math.min(off + MAX_FILE_CHUNK, size));
  let fileId = '';
  let resp = null;
  const t = new Transfer(session, opts.signal);
  await t.run(async (conn) => {
    if (!fileId) {
      // A lost answer leaves an upload whose id this client never learns;
      // the retry starts another, and the server prunes the lost one.
      resp = await conn.request(Op.UPLOAD, { size, sha256: digest, mime, name,
        data: chunkAt(0) });
      fileId = resp.fileId;
    } else if (!resp) {
      resp = await conn.request(Op.UPLOAD, { fileId }); // where to resume
    } else {
      const offset = resp.nextOffset;
      resp = null; // unknown until this chunk is answered
      resp = await conn.request(Op.UPLOAD, { fileId, offset,
        data: chunkAt(Number(offset)) });
    }
    opts.onProgress?.(Number(resp.nextOffset), size);
    return resp.complete;
  });
  const ref = { fileId, name, mime, size: BigInt(size), sha256: digest };
  if (opts.width > 0 && opts.height > 0) {
    Object.assign(ref, { width: opts.width, height: opts.height });
  }
  if (opts.caption) ref.caption = opts.caption;
  return ref;
}

/**
 * download fetches the file ref names (a FileRef, or {fileId}) on session's
 * connections and resolves with a Blob of its type, its bytes checked
 * against the server's SHA-256 (FileMismatchError otherwise). opts:
 * onProgress(receivedBytes, size), signal (an AbortSignal). A lost
 * connection goes on from the bytes received. Rejects with NOT_FOUND for a
 * file the user may not read (a recalled message's, say).
 */
export async function download(session, ref, opts = {}) {
  const parts = [];
  let received = 0;
  let last = null;
  const t = new Transfer(session, opts.signal);
  await t.run(async (conn) => {
    const resp = await conn.request(Op.DOWNLOAD, { fileId: ref.fileId, offset: BigInt(received),
      maxBytes: MAX_FILE_CHUNK });
    if (Number(resp.offset) !== received) {
      throw new Error(`download ${ref.fileId}: chunk at ${resp.offset}, asked ${received}`);
    }
    parts.push(resp.data);
    received += resp.data.length;
    last = resp;
    opts.onProgress?.(received, Number(resp.size));
    return received >= Number(resp.size) || resp.data.length === 0;
  });
  const bytes = new Uint8Array(received);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  if (received !== Number(last.size) || !sameBytes(await sha256(bytes), last.sha256)) {
    throw new FileMismatchError(ref.fileId);
  }
  return new Blob([bytes], { type: mimeOf(last.mime) });
}
