'use strict';
// Schemas of the bodies this client uses, transcribed from idl/protocol.thrift
// and idl/common.thrift. Enums travel as i32. Field names are camelCase.

const { T } = require('./thrift');

function struct(name, fields) {
  const s = { name, fields, byId: new Map() };
  for (const f of fields) s.byId.set(f.id, f);
  return s;
}

const bool = (id, name) => ({ id, name, type: T.BOOL });
const i32 = (id, name) => ({ id, name, type: T.I32 });
const i64 = (id, name) => ({ id, name, type: T.I64 });
const str = (id, name) => ({ id, name, type: T.STRING });
const bin = (id, name) => ({ id, name, type: T.STRING, binary: true });
const sub = (id, name, s) => ({ id, name, type: T.STRUCT, struct: s });
const listOf = (id, name, elem) => ({ id, name, type: T.LIST, elem });
const I64S = { type: T.I64 };

const Message = struct('Message', [
  i64(1, 'msgId'), str(2, 'convId'), i64(3, 'seq'), i64(4, 'senderId'),
  str(5, 'clientMsgId'), i32(6, 'contentType'), bin(7, 'content'),
  i64(8, 'sendTimeMs'), str(9, 'senderDevice'),
  i64(12, 'replyToSeq'), listOf(13, 'mentions', I64S), bool(14, 'mentionAll'),
]);

const ConvPos = struct('ConvPos', [str(1, 'convId'), i64(2, 'seq')]);

const ConvSummary = struct('ConvSummary', [
  str(1, 'convId'), i32(2, 'type'), i64(3, 'lastSeq'), sub(4, 'lastMessage', Message),
  i64(5, 'readSeq'), i64(6, 'unread'), i64(7, 'deliveredSeq'), i64(8, 'updatedMs'),
  i64(9, 'peerUserId'),
]);

const schemas = {
  HeartbeatReq: struct('HeartbeatReq', []),
  HeartbeatResp: struct('HeartbeatResp', [i64(1, 'serverTimeMs')]),
  RegisterReq: struct('RegisterReq', [str(1, 'username'), str(2, 'password')]),
  RegisterResp: struct('RegisterResp', [i64(1, 'userId')]),
  LoginReq: struct('LoginReq', [
    str(1, 'username'), str(2, 'password'), str(3, 'token'), str(4, 'deviceId'),
    str(5, 'platform'),
  ]),
  LoginResp: struct('LoginResp', [
    i64(1, 'userId'), str(2, 'token'), i64(3, 'tokenExpiresMs'), i32(4, 'heartbeatIntervalMs'),
    i64(5, 'serverTimeMs'), str(6, 'username'),
  ]),
  SendReq: struct('SendReq', [
    str(1, 'clientMsgId'), i64(2, 'toUserId'), str(3, 'convId'), i32(4, 'contentType'),
    bin(5, 'content'), i64(6, 'replyToSeq'), listOf(7, 'mentions', I64S), bool(8, 'mentionAll'),
  ]),
  SendResp: struct('SendResp', [
    i64(1, 'msgId'), str(2, 'convId'), i64(3, 'seq'), i64(4, 'sendTimeMs'),
    bool(5, 'duplicate'),
  ]),
  SyncReq: struct('SyncReq', [
    str(1, 'convId'), i64(2, 'afterSeq'), i32(3, 'limit'), i64(4, 'beforeSeq'),
  ]),
  SyncResp: struct('SyncResp', [
    listOf(1, 'messages', { type: T.STRUCT, struct: Message }), bool(2, 'hasMore'),
    i64(3, 'lastSeq'),
  ]),
  SearchMessagesReq: struct('SearchMessagesReq', [
    str(1, 'query'), str(2, 'convId'), i64(3, 'cursor'), i32(4, 'limit'),
  ]),
  SearchMessagesResp: struct('SearchMessagesResp', [
    listOf(1, 'messages', { type: T.STRUCT, struct: Message }), i64(2, 'nextCursor'),
  ]),
  GetUserReq: struct('GetUserReq', [str(1, 'username'), i64(2, 'userId')]),
  GetUserResp: struct('GetUserResp', [i64(1, 'userId'), str(2, 'username')]),
  DeliveredReq: struct('DeliveredReq', [
    listOf(1, 'positions', { type: T.STRUCT, struct: ConvPos }),
  ]),
  DeliveredResp: struct('DeliveredResp', []),
  SyncConvsReq: struct('SyncConvsReq', [str(1, 'cursor'), i32(2, 'limit')]),
  SyncConvsResp: struct('SyncConvsResp', [
    listOf(1, 'convs', { type: T.STRUCT, struct: ConvSummary }), str(2, 'cursor'),
    bool(3, 'hasMore'),
  ]),
  MarkReadReq: struct('MarkReadReq', [str(1, 'convId'), i64(2, 'seq')]),
  MarkReadResp: struct('MarkReadResp', [i64(1, 'readSeq')]),
  CreateGroupReq: struct('CreateGroupReq', [
    str(1, 'clientMsgId'), str(2, 'name'), listOf(3, 'memberIds', I64S),
  ]),
  ManageGroupReq: struct('ManageGroupReq', [
    str(1, 'clientMsgId'), str(2, 'convId'), i32(3, 'action'), listOf(4, 'userIds', I64S),
    str(5, 'name'), i32(6, 'role'),
  ]),
  GroupChangeResp: struct('GroupChangeResp', [
    str(1, 'convId'), i64(2, 'msgId'), i64(3, 'seq'), i64(4, 'sendTimeMs'), bool(5, 'duplicate'),
  ]),
  // GroupEvent is the content of a GROUP_EVENT message.
  GroupEvent: struct('GroupEvent', [
    i32(1, 'action'), listOf(2, 'targets', I64S), str(3, 'name'), i32(4, 'role'),
  ]),
  PushMsg: struct('PushMsg', [sub(1, 'message', Message)]),
  CloseMsg: struct('CloseMsg', [i32(1, 'reason'), str(2, 'message'), i32(3, 'reconnectAfterMs')]),
  ErrorResp: struct('ErrorResp', [i32(1, 'code'), str(2, 'message')]),
  Message,
  ConvPos,
  ConvSummary,
};

/** Op is the opcode byte of the frame header (protocol.thrift Op). */
const Op = Object.freeze({
  HEARTBEAT: 0x01, HEARTBEAT_ACK: 0x02, REGISTER: 0x03, REGISTER_ACK: 0x04,
  LOGIN: 0x05, LOGIN_ACK: 0x06, SEND: 0x07, SEND_ACK: 0x08, SYNC: 0x09, SYNC_ACK: 0x0a,
  GET_USER: 0x0b, GET_USER_ACK: 0x0c, DELIVERED: 0x0d, DELIVERED_ACK: 0x0e,
  SYNC_CONVS: 0x0f, SYNC_CONVS_ACK: 0x10, MARK_READ: 0x11, MARK_READ_ACK: 0x12,
  // Account requests: known so that no frame of the protocol is "unknown"
  // here; this client has no calls for them yet.
  LOGOUT: 0x13, LOGOUT_ACK: 0x14, REFRESH: 0x15, REFRESH_ACK: 0x16,
  CHANGE_PASSWORD: 0x17, CHANGE_PASSWORD_ACK: 0x18, UPDATE_PROFILE: 0x19,
  UPDATE_PROFILE_ACK: 0x1a, LIST_DEVICES: 0x1b, LIST_DEVICES_ACK: 0x1c,
  SIGN_OUT_DEVICE: 0x1d, SIGN_OUT_DEVICE_ACK: 0x1e, SEARCH_USERS: 0x1f, SEARCH_USERS_ACK: 0x20,
  BLOCK: 0x21, BLOCK_ACK: 0x22,
  // Groups, message changes, presence, notification settings, clearing and files: known so
  // that no frame of the protocol is "unknown" here; calls only for creating
  // and changing a group.
  CREATE_GROUP: 0x23, CREATE_GROUP_ACK: 0x24, MANAGE_GROUP: 0x25, MANAGE_GROUP_ACK: 0x26,
  GET_GROUP: 0x27, GET_GROUP_ACK: 0x28, RECALL: 0x29, RECALL_ACK: 0x2a, EDIT: 0x2b,
  EDIT_ACK: 0x2c, TYPING: 0x2d, TYPING_ACK: 0x2e, READ_COUNTS: 0x2f, READ_COUNTS_ACK: 0x30,
  GET_PRESENCE: 0x31, GET_PRESENCE_ACK: 0x32, WATCH_PRESENCE: 0x33, WATCH_PRESENCE_ACK: 0x34,
  SET_PUSH_TOKEN: 0x35, SET_PUSH_TOKEN_ACK: 0x36, MUTE_CONV: 0x37, MUTE_CONV_ACK: 0x38,
  SET_DND: 0x39, SET_DND_ACK: 0x3a, GET_SETTINGS: 0x3b, GET_SETTINGS_ACK: 0x3c,
  DELETE_ACCOUNT: 0x3d, DELETE_ACCOUNT_ACK: 0x3e,
  PUSH: 0x41, CLOSE: 0x42, NOTIFY: 0x43,
  CLEAR_CONV: 0x51, CLEAR_CONV_ACK: 0x52, REACT: 0x53, REACT_ACK: 0x54,
  UPLOAD: 0x55, UPLOAD_ACK: 0x56, DOWNLOAD: 0x57, DOWNLOAD_ACK: 0x58,
  SEARCH_MESSAGES: 0x59, SEARCH_MESSAGES_ACK: 0x5a, PIN: 0x5b, PIN_ACK: 0x5c,
});

/** requestBodies maps a request opcode to its request and reply schemas. */
const requestBodies = new Map([
  [Op.HEARTBEAT, [schemas.HeartbeatReq, schemas.HeartbeatResp]],
  [Op.REGISTER, [schemas.RegisterReq, schemas.RegisterResp]],
  [Op.LOGIN, [schemas.LoginReq, schemas.LoginResp]],
  [Op.SEND, [schemas.SendReq, schemas.SendResp]],
  [Op.SYNC, [schemas.SyncReq, schemas.SyncResp]],
  [Op.GET_USER, [schemas.GetUserReq, schemas.GetUserResp]],
  [Op.DELIVERED, [schemas.DeliveredReq, schemas.DeliveredResp]],
  [Op.SYNC_CONVS, [schemas.SyncConvsReq, schemas.SyncConvsResp]],
  [Op.SEARCH_MESSAGES, [schemas.SearchMessagesReq, schemas.SearchMessagesResp]],
  [Op.MARK_READ, [schemas.MarkReadReq, schemas.MarkReadResp]],
  [Op.CREATE_GROUP, [schemas.CreateGroupReq, schemas.GroupChangeResp]],
  [Op.MANAGE_GROUP, [schemas.ManageGroupReq, schemas.GroupChangeResp]],
]);

/** ErrorCode is common.thrift ErrorCode. */
const ErrorCode = Object.freeze({
  OK: 0, BAD_REQUEST: 1000, UNAUTHENTICATED: 1001, INVALID_CREDENTIALS: 1002,
  TOKEN_INVALID: 1003, USERNAME_TAKEN: 1004, FORBIDDEN: 1005, NOT_FOUND: 1006,
  TOO_LARGE: 1007, RATE_LIMITED: 1008, ALREADY_LOGGED_IN: 1009, UNSUPPORTED: 1010,
  ACCOUNT_SUSPENDED: 1011, INTERNAL: 2000, UNAVAILABLE: 2001, BUSY: 2002,
});

/** CloseReason is protocol.thrift CloseReason. */
const CloseReason = Object.freeze({
  UNKNOWN: 0, LOGIN_TIMEOUT: 1, HEARTBEAT_TIMEOUT: 2, PROTOCOL_ERROR: 3, LOGIN_FAILED: 4,
  SLOW_CONSUMER: 5, KICKED: 6, SERVER_SHUTDOWN: 7, OVERLOADED: 8, TOKEN_EXPIRED: 9,
  SIGNED_OUT: 10, RATE_LIMITED: 11, FRAME_TOO_LARGE: 12, ACCOUNT_DELETED: 13,
  ACCOUNT_SUSPENDED: 14,
});

const ContentType = Object.freeze({
  TEXT: 1, BINARY: 2, GROUP_EVENT: 3, RECALL: 4, EDIT: 5, REACTION: 6, FILE: 7, PIN: 8,
});

/** GroupAction is common.thrift GroupAction. */
const GroupAction = Object.freeze({
  CREATE: 1, ADD: 2, REMOVE: 3, LEAVE: 4, RENAME: 5, SET_ROLE: 6, DISMISS: 7,
});

module.exports = { schemas, Op, requestBodies, ErrorCode, CloseReason, ContentType, GroupAction };
