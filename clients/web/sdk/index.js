// The Resonance JavaScript SDK for browsers: the frame protocol of
// docs/protocol.md over WebSocket (Connection) and a resuming, exactly-once
// session on top (Session). Plain ES modules; no build step.
export {
  Connection, ResonanceError, ClosedError, TimeoutError, OutcomeUnknownError,
} from './connection.js';
export {
  Session, SessionEndedError, State, register, newClientMsgId, jitter, MAX_PRESENCE_USERS,
} from './session.js';
export { MemoryPositions, StoragePositions } from './positions.js';
export {
  MAX_MENTIONS, MENTION_ALL, parseMentions, mentionsUser, unreadMention,
} from './mentions.js';
export {
  MAX_REACTION_USERS, QUICK_REACTIONS, applyReaction, reactionEventOf, reactionsOf,
} from './reactions.js';
export { applyPin, mayPin, pinEventOf } from './pins.js';
export { Sequencer } from './sequencer.js';
export { DEFAULT_LIMITS, limitsOf, windowOpen } from './limits.js';
export {
  MAX_FILE_CHUNK, MAX_FILE_SIZE, ChunkPacer, FileMismatchError, encodeFileRef, fileRefOf, isImage,
  mimeOf,
} from './files.js';
export {
  Op, ErrorCode, CloseReason, ContentType, ConvType, GroupAction, GroupRole, schemas, nameOf,
} from './schema.js';
export { encodeStruct, decodeStruct } from './thrift.js';
export { encodeFrame, decodeMessage } from './frame.js';
