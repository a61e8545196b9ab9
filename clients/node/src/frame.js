'use strict';
// The 14-byte frame header of docs/protocol.md ("Frames"): every integer is
// big-endian.
//
//   0  2  magic "RS" (0x52 0x53)
//   2  1  version (1)
//   3  1  opcode
//   4  2  flags (bit 0: the body is an ErrorResp)
//   6  4  request id
//   10 4  body length
//   14 n  body

const HEADER_SIZE = 14;
const MAGIC = 0x5253;
const VERSION = 1;
const FLAG_ERROR = 0x0001;
/** DEFAULT_MAX_BODY is the server's default body limit in bytes. */
const DEFAULT_MAX_BODY = 64 * 1024;

/** FrameError means the byte stream is not Resonance frames. */
class FrameError extends Error {}

/** encodeFrame returns one frame carrying body (a Buffer, may be empty). */
function encodeFrame(op, flags, requestId, body) {
  const frame = Buffer.alloc(HEADER_SIZE + body.length);
  frame.writeUInt16BE(MAGIC, 0);
  frame.writeUInt8(VERSION, 2);
  frame.writeUInt8(op, 3);
  frame.writeUInt16BE(flags, 4);
  frame.writeUInt32BE(requestId >>> 0, 6);
  frame.writeUInt32BE(body.length, 10);
  body.copy(frame, HEADER_SIZE);
  return frame;
}

/** decodeHeader parses the header at the front of buf (at least 14 bytes). */
function decodeHeader(buf, maxBody) {
  if (buf.readUInt16BE(0) !== MAGIC) throw new FrameError('frame: bad magic');
  if (buf[2] !== VERSION) throw new FrameError(`frame: unsupported version ${buf[2]}`);
  const h = {
    op: buf[3],
    flags: buf.readUInt16BE(4),
    requestId: buf.readUInt32BE(6),
    bodyLength: buf.readUInt32BE(10),
  };
  if (h.bodyLength > maxBody) throw new FrameError(`frame: body of ${h.bodyLength} bytes`);
  return h;
}

/**
 * StreamDecoder splits a TCP byte stream into frames. push() takes a chunk
 * and returns the complete frames it finished, as {header, body}; the body
 * is a copy that outlives the chunk.
 */
class StreamDecoder {
  constructor(maxBody = DEFAULT_MAX_BODY) {
    this.maxBody = maxBody;
    this.pending = Buffer.alloc(0);
  }

  push(chunk) {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames = [];
    while (buf.length >= HEADER_SIZE) {
      const header = decodeHeader(buf, this.maxBody);
      const end = HEADER_SIZE + header.bodyLength;
      if (buf.length < end) break;
      frames.push({ header, body: Buffer.from(buf.subarray(HEADER_SIZE, end)) });
      buf = buf.subarray(end);
    }
    this.pending = Buffer.from(buf);
    return frames;
  }
}

/** decodeMessage decodes one WebSocket binary message, which holds exactly one frame. */
function decodeMessage(msg, maxBody = DEFAULT_MAX_BODY) {
  if (msg.length < HEADER_SIZE) throw new FrameError(`frame: message of ${msg.length} bytes`);
  const header = decodeHeader(msg, maxBody);
  if (msg.length !== HEADER_SIZE + header.bodyLength) {
    const want = HEADER_SIZE + header.bodyLength;
    throw new FrameError(`frame: message of ${msg.length} bytes, frame of ${want}`);
  }
  return { header, body: Buffer.from(msg.subarray(HEADER_SIZE)) };
}

module.exports = {
  HEADER_SIZE, MAGIC, VERSION, FLAG_ERROR, DEFAULT_MAX_BODY,
  FrameError, encodeFrame, decodeHeader, StreamDecoder, decodeMessage,
};
