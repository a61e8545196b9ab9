// The 14-byte frame header of docs/protocol.md ("Frames"), big-endian:
//
//   0  2  magic "RS" (0x52 0x53)
//   2  1  version (1)
//   3  1  opcode
//   4  2  flags (bit 0: the body is an ErrorResp)
//   6  4  request id
//   10 4  body length
//   14 n  body
//
// Over WebSocket every binary message carries exactly one frame, so there is
// no stream splitting here: decodeMessage checks that one message is one
// whole frame.

export const HEADER_SIZE = 14;
export const MAGIC = 0x5253;
export const VERSION = 1;
export const FLAG_ERROR = 0x0001;
/** DEFAULT_MAX_BODY is the server's default limit on client frame bodies, in bytes. */
export const DEFAULT_MAX_BODY = 64 * 1024;

/** FrameError means a message from the server is not a Resonance frame. */
export class FrameError extends Error {}

/** encodeFrame returns one frame carrying body (a Uint8Array, may be empty). */
export function encodeFrame(op, flags, requestId, body) {
  const frame = new Uint8Array(HEADER_SIZE + body.length);
  const v = new DataView(frame.buffer);
  v.setUint16(0, MAGIC);
  v.setUint8(2, VERSION);
  v.setUint8(3, op);
  v.setUint16(4, flags);
  v.setUint32(6, requestId >>> 0);
  v.setUint32(10, body.length);
  frame.set(body, HEADER_SIZE);
  return frame;
}

/**
 * decodeMessage parses one WebSocket binary message (an ArrayBuffer or a
 * Uint8Array) holding exactly one frame, and returns {header, body}; body
 * is a view of the message. Bodies over maxBody bytes are refused.
 */
export function decodeMessage(msg, maxBody) {
  const bytes = msg instanceof Uint8Array ? msg : new Uint8Array(msg);
  if (bytes.length < HEADER_SIZE) throw new FrameError(`frame: message of ${bytes.length} bytes`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint16(0) !== MAGIC) throw new FrameError('frame: bad magic');
  if (v.getUint8(2) !== VERSION) throw new FrameError(`frame: unsupported version ${v.getUint8(2)}`);
  const header = {
    op: v.getUint8(3),
    flags: v.getUint16(4),
    requestId: v.getUint32(6),
    bodyLength: v.getUint32(10),
  };
  if (header.bodyLength > maxBody) throw new FrameError(`frame: body of ${header.bodyLength} bytes`);
  if (bytes.length !== HEADER_SIZE + header.bodyLength) {
    throw new FrameError(`frame: message of ${bytes.length} bytes, frame of ` +
      `${HEADER_SIZE + header.bodyLength}`);
  }
  return { header, body: bytes.subarray(HEADER_SIZE) };
}
