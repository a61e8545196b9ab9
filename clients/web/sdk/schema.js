// Schemas of the frame bodies, transcribed from idl/protocol.thrift and
// idl/common.thrift; where they disagree with this file, the IDL wins.
// Enums travel as i32. Field names are the IDL's in camelCase.

import { T } from './thrift.js';

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
const structs = (s) => ({ type: T.STRUCT, struct: s });
const I64S = { type: T.I64 };
const I32S = { type: T.I32 };

const Reaction = struct('Reaction', [str(1, 'emoji'), i32(2, 'count'), listOf(3, 'userIds', I64S)]);

const Message = struct('Message', [
  i64(1, 'msgId'), str(2, 'convId'), i64(3, 'seq'), i64(4, 'senderId'),
  str(5, 'clientMsgId'), i32(6, 'contentType'), bin(7, 'content'),
  i64(8, 'sendTimeMs'), str(9, 'senderDevice'), bool(10, 'recalled'), i64(11, 'editedMs'),
  i64(12, 'replyToSeq'), listOf(13, 'mentions', I64S), bool(14, 'mentionAll'),
  // Set on SYNC pages only (a message's reactions then); never on PUSH.
  listOf(15, 'reactions', structs(Reaction)),
]);

// ServerLimits: sizes in bytes, windows in ms; unset from an older server.
const ServerLimits = struct('ServerLimits', [
  i32(1, 'maxContentBytes'), i64(2, 'maxFileBytes'), i64(3, 'recallWindowMs'),
  i64(4, 'editWindowMs'), i32(5, 'maxGroupMembers'), i32(6, 'maxPins'),
]);

const ConvPos = struct('ConvPos', [str(1, 'convId'), i64(2, 'seq')]);

const ConvSummary = struct('ConvSummary', [
  str(1, 'convId'), i32(2, 'type'), i64(3, 'lastSeq'), sub(4, 'lastMessage', Message),
  i64(5, 'readSeq'), i64(6, 'unread'), i64(7, 'deliveredSeq'), i64(8, 'updatedMs'),
  i64(9, 'peerUserId'), str(10, 'name'), i64(11, 'peerReadSeq'), bool(12, 'left'),
  bool(13, 'muted'), i32(14, 'memberCount'),
  // Optional in the IDL: false both for "not dismissed" and for a server
  // that does not send it; the app does not mark groups (left or
  // dismissed) in its list yet.
  bool(15, 'dismissed'), i64(16, 'mentionSeq'),
  // The user cleared the history up to clearedSeq (clearConv); hidden: the
  // user deleted the chat and nothing newer came, so it leaves the list.
  i64(17, 'clearedSeq'), bool(18, 'hidden'),
  // The conversation's pins the user may read, most recently pinned first;
  // unset (read as []) when none.
  listOf(19, 'pinnedSeqs', I64S),
]);

const UserInfo = struct('UserInfo', [
  i64(1, 'userId'), str(2, 'username'), str(3, 'nickname'), str(4, 'avatarUrl'),
  bool(5, 'deleted'),
]);

const GroupMember = struct('GroupMember', [i64(1, 'userId'), i32(2, 'role'), i64(3, 'joinedMs')]);

const Presence = struct('Presence', [i64(1, 'userId'), bool(2, 'online'), i64(3, 'sinceMs')]);

const GroupChangeResp = struct('GroupChangeResp', [
  str(1, 'convId'), i64(2, 'msgId'), i64(3, 'seq'), i64(4, 'sendTimeMs'), bool(5, 'duplicate'),
]);

const SendResp = struct('SendResp', [
  i64(1, 'msgId'), str(2, 'convId'), i64(3, 'seq'), i64(4, 'sendTimeMs'), bool(5, 'duplicate'),
]);

const GetPresenceResp = struct('GetPresenceResp', [listOf(1, 'presences', structs(Presence))]);

const TokenPair = [
  str(1, 'token'), i64(2, 'tokenExpiresMs'), str(3, 'refreshToken'), i64(4, 'refreshExpiresMs'),
];

/** schemas holds every body this SDK reads or writes, by IDL name. */
export const schemas = {
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
    i64(5, 'serverTimeMs'), str(6, 'username'), str(7, 'refreshToken'),
    i64(8, 'refreshExpiresMs'), str(9, 'deviceId'), sub(10, 'limits', ServerLimits),
  ]),
  SendReq: struct('SendReq', [
    str(1, 'clientMsgId'), i64(2, 'toUserId'), str(3, 'convId'), i32(4, 'contentType'),
    bin(5, 'content'), i64(6, 'replyToSeq'), listOf(7, 'mentions', I64S), bool(8, 'mentionAll'),
  ]),
  SendResp,
  SyncReq: struct('SyncReq', [
    str(1, 'convId'), i64(2, 'afterSeq'), i32(3, 'limit'), i64(4, 'beforeSeq'),
  ]),
  SyncResp: struct('SyncResp', [
    listOf(1, 'messages', structs(Message)), bool(2, 'hasMore'), i64(3, 'lastSeq'),
  ]),
  GetUserReq: struct('GetUserReq', [str(1, 'username'), i64(2, 'userId')]),
  GetUserResp: struct('GetUserResp', [
    i64(1, 'userId'), str(2, 'username'), str(3, 'nickname'), str(4, 'avatarUrl'),
    bool(5, 'deleted'),
  ]),
  DeliveredReq: struct('DeliveredReq', [listOf(1, 'positions', structs(ConvPos))]),
  DeliveredResp: struct('DeliveredResp', []),
  SyncConvsReq: struct('SyncConvsReq', [str(1, 'cursor'), i32(2, 'limit')]),
  SyncConvsResp: struct('SyncConvsResp', [
    listOf(1, 'convs', structs(ConvSummary)), str(2, 'cursor'), bool(3, 'hasMore'),
  ]),
  MarkReadReq: struct('MarkReadReq', [str(1, 'convId'), i64(2, 'seq')]),
  MarkReadResp: struct('MarkReadResp', [i64(1, 'readSeq')]),
  LogoutReq: struct('LogoutReq', []),
  LogoutResp: struct('LogoutResp', []),
  RefreshReq: struct('RefreshReq', [str(1, 'refreshToken')]),
  RefreshResp: struct('RefreshResp', TokenPair),
  ChangePasswordReq: struct('ChangePasswordReq', [str(1, 'oldPassword'), str(2, 'newPassword')]),
  ChangePasswordResp: struct('ChangePasswordResp', TokenPair),
  DeleteAccountReq: struct('DeleteAccountReq', [str(1, 'password')]),
  DeleteAccountResp: struct('DeleteAccountResp', []),
  SearchUsersReq: struct('SearchUsersReq', [str(1, 'query'), i32(2, 'limit')]),
  SearchUsersResp: struct('SearchUsersResp', [listOf(1, 'users', structs(UserInfo))]),
  CreateGroupReq: struct('CreateGroupReq', [
    str(1, 'clientMsgId'), str(2, 'name'), listOf(3, 'memberIds', I64S),
  ]),
  ManageGroupReq: struct('ManageGroupReq', [
    str(1, 'clientMsgId'), str(2, 'convId'), i32(3, 'action'), listOf(4, 'userIds', I64S),
    str(5, 'name'), i32(6, 'role'),
  ]),
  GroupChangeResp,
  GetGroupReq: struct('GetGroupReq', [str(1, 'convId')]),
  GroupInfo: struct('GroupInfo', [
    str(1, 'convId'), str(2, 'name'), i64(3, 'ownerId'), listOf(4, 'members', structs(GroupMember)),
    bool(5, 'dismissed'), i64(6, 'lastSeq'), i32(7, 'maxMembers'),
  ]),
  TypingReq: struct('TypingReq', [str(1, 'convId'), bool(2, 'typing')]),
  TypingResp: struct('TypingResp', []),
  ReadCountsReq: struct('ReadCountsReq', [str(1, 'convId'), listOf(2, 'seqs', I64S)]),
  ReadCountsResp: struct('ReadCountsResp', [listOf(1, 'counts', I32S), i32(2, 'memberCount')]),
  GetPresenceReq: struct('GetPresenceReq', [listOf(1, 'userIds', I64S)]),
  WatchPresenceReq: struct('WatchPresenceReq', [listOf(1, 'userIds', I64S)]),
  GetPresenceResp,
  ClearConvReq: struct('ClearConvReq', [str(1, 'convId'), i64(2, 'upToSeq'), bool(3, 'hide')]),
  ClearConvResp: struct('ClearConvResp', [i64(1, 'clearedSeq')]),
  ListDevicesReq: struct('ListDevicesReq', []),
  ListDevicesResp: struct('ListDevicesResp', [listOf(1, 'devices', structs(struct('Device', [
    str(1, 'deviceId'), str(2, 'platform'), i64(3, 'lastLoginMs'), bool(4, 'online'),
    bool(5, 'current'),
  ])))]),
  SignOutDeviceReq: struct('SignOutDeviceReq', [str(1, 'deviceId')]),
  SignOutDeviceResp: struct('SignOutDeviceResp', []),
  RecallReq: struct('RecallReq', [str(1, 'clientMsgId'), str(2, 'convId'), i64(3, 'seq')]),
  EditReq: struct('EditReq', [
    str(1, 'clientMsgId'), str(2, 'convId'), i64(3, 'seq'), i32(4, 'contentType'),
    bin(5, 'content'),
  ]),
  ReactReq: struct('ReactReq', [
    str(1, 'clientMsgId'), str(2, 'convId'), i64(3, 'seq'), str(4, 'emoji'), bool(5, 'remove'),
  ]),
  PinReq: struct('PinReq', [
    str(1, 'clientMsgId'), str(2, 'convId'), i64(3, 'seq'), bool(4, 'unpin'),
  ]),
  Notify: struct('Notify', [
    sub(1, 'read', struct('ReadUpdate', [str(1, 'convId'), i64(2, 'userId'), i64(3, 'readSeq')])),
    sub(2, 'typing', struct('TypingUpdate', [
      str(1, 'convId'), i64(2, 'userId'), bool(3, 'typing'),
    ])),
    sub(3, 'presence', Presence),
    sub(4, 'cleared', struct('ConvCleared', [
      str(1, 'convId'), i64(2, 'clearedSeq'), bool(3, 'hidden'),
    ])),
  ]),
  PushMsg: struct('PushMsg', [sub(1, 'message', Message)]),
  CloseMsg: struct('CloseMsg', [i32(1, 'reason'), str(2, 'message'), i32(3, 'reconnectAfterMs')]),
  ErrorResp: struct('ErrorResp', [i32(1, 'code'), str(2, 'message')]),
  GroupEvent: struct('GroupEvent', [
    i32(1, 'action'), listOf(2, 'targets', I64S), str(3, 'name'), i32(4, 'role'),
  ]),
  RecallEvent: struct('RecallEvent', [i64(1, 'seq'), i64(2, 'msgId')]),
  EditEvent: struct('EditEvent', [
    i64(1, 'seq'), i64(2, 'msgId'), i32(3, 'contentType'), bin(4, 'content'),
  ]),
  ReactionEvent: struct('ReactionEvent', [
    i64(1, 'seq'), i64(2, 'msgId'), str(3, 'emoji'), bool(4, 'removed'),
  ]),
  PinEvent: struct('PinEvent', [i64(1, 'seq'), i64(2, 'msgId'), bool(3, 'unpinned')]),
  UploadReq: struct('UploadReq', [
    str(1, 'fileId'), i64(2, 'size'), bin(3, 'sha256'), str(4, 'mime'), str(5, 'name'),
    i64(6, 'offset'), bin(7, 'data'),
  ]),
  UploadResp: struct('UploadResp', [str(1, 'fileId'), i64(2, 'nextOffset'), bool(3, 'complete')]),
  DownloadReq: struct('DownloadReq', [str(1, 'fileId'), i64(2, 'offset'), i32(3, 'maxBytes')]),
  SearchMessagesReq: struct('SearchMessagesReq', [
    str(1, 'query'), str(2, 'convId'), i64(3, 'cursor'), i32(4, 'limit'),
  ]),
  SearchMessagesResp: struct('SearchMessagesResp', [
    listOf(1, 'messages', structs(Message)), i64(2, 'nextCursor'),
  ]),
  DownloadResp: struct('DownloadResp', [
    bin(1, 'data'), i64(2, 'offset'), i64(3, 'size'), str(4, 'mime'), str(5, 'name'),
    bin(6, 'sha256'),
  ]),
  // width, height and caption are optional: 0 and '' when not sent.
  FileRef: struct('FileRef', [
    str(1, 'fileId'), str(2, 'name'), str(3, 'mime'), i64(4, 'size'), bin(5, 'sha256'),
    i32(6, 'width'), i32(7, 'height'), str(8, 'caption'),
  ]),
  Reaction,
  Message,
  ConvPos,
  ConvSummary,
  UserInfo,
};

/** Op is the opcode byte of the frame header (protocol.thrift Op). */
export const Op = Object.freeze({
  HEARTBEAT: 0x01, HEARTBEAT_ACK: 0x02, REGISTER: 0x03, REGISTER_ACK: 0x04,
  LOGIN: 0x05, LOGIN_ACK: 0x06, SEND: 0x07, SEND_ACK: 0x08, SYNC: 0x09, SYNC_ACK: 0x0a,
  GET_USER: 0x0b, GET_USER_ACK: 0x0c, DELIVERED: 0x0d, DELIVERED_ACK: 0x0e,
  SYNC_CONVS: 0x0f, SYNC_CONVS_ACK: 0x10, MARK_READ: 0x11, MARK_READ_ACK: 0x12,
  LOGOUT: 0x13, LOGOUT_ACK: 0x14, REFRESH: 0x15, REFRESH_ACK: 0x16,
  CHANGE_PASSWORD: 0x17, CHANGE_PASSWORD_ACK: 0x18,
  LIST_DEVICES: 0x1b, LIST_DEVICES_ACK: 0x1c, SIGN_OUT_DEVICE: 0x1d, SIGN_OUT_DEVICE_ACK: 0x1e,
  SEARCH_USERS: 0x1f, SEARCH_USERS_ACK: 0x20,
  CREATE_GROUP: 0x23, CREATE_GROUP_ACK: 0x24, MANAGE_GROUP: 0x25, MANAGE_GROUP_ACK: 0x26,
  GET_GROUP: 0x27, GET_GROUP_ACK: 0x28, RECALL: 0x29, RECALL_ACK: 0x2a, EDIT: 0x2b, EDIT_ACK: 0x2c,
  TYPING: 0x2d, TYPING_ACK: 0x2e, READ_COUNTS: 0x2f, READ_COUNTS_ACK: 0x30,
  GET_PRESENCE: 0x31, GET_PRESENCE_ACK: 0x32, WATCH_PRESENCE: 0x33, WATCH_PRESENCE_ACK: 0x34,
  DELETE_ACCOUNT: 0x3d, DELETE_ACCOUNT_ACK: 0x3e,
  PUSH: 0x41, CLOSE: 0x42, NOTIFY: 0x43,
  CLEAR_CONV: 0x51, CLEAR_CONV_ACK: 0x52, REACT: 0x53, REACT_ACK: 0x54,
  UPLOAD: 0x55, UPLOAD_ACK: 0x56, DOWNLOAD: 0x57, DOWNLOAD_ACK: 0x58,
  SEARCH_MESSAGES: 0x59, SEARCH_MESSAGES_ACK: 0x5a, PIN: 0x5b, PIN_ACK: 0x5c,
});

/** requestBodies maps a request opcode to its request and reply schemas. */
export const requestBodies = new Map([
  [Op.HEARTBEAT, [schemas.HeartbeatReq, schemas.HeartbeatResp]],
  [Op.REGISTER, [schemas.RegisterReq, schemas.RegisterResp]],
  [Op.LOGIN, [schemas.LoginReq, schemas.LoginResp]],
  [Op.SEND, [schemas.SendReq, schemas.SendResp]],
  [Op.SYNC, [schemas.SyncReq, schemas.SyncResp]],
  [Op.GET_USER, [schemas.GetUserReq, schemas.GetUserResp]],
  [Op.DELIVERED, [schemas.DeliveredReq, schemas.DeliveredResp]],
  [Op.SYNC_CONVS, [schemas.SyncConvsReq, schemas.SyncConvsResp]],
  [Op.MARK_READ, [schemas.MarkReadReq, schemas.MarkReadResp]],
  [Op.LOGOUT, [schemas.LogoutReq, schemas.LogoutResp]],
  [Op.REFRESH, [schemas.RefreshReq, schemas.RefreshResp]],
  [Op.CHANGE_PASSWORD, [schemas.ChangePasswordReq, schemas.ChangePasswordResp]],
  [Op.LIST_DEVICES, [schemas.ListDevicesReq, schemas.ListDevicesResp]],
  [Op.SIGN_OUT_DEVICE, [schemas.SignOutDeviceReq, schemas.SignOutDeviceResp]],
  [Op.SEARCH_USERS, [schemas.SearchUsersReq, schemas.SearchUsersResp]],
  [Op.CREATE_GROUP, [schemas.CreateGroupReq, schemas.GroupChangeResp]],
  [Op.MANAGE_GROUP, [schemas.ManageGroupReq, schemas.GroupChangeResp]],
  [Op.GET_GROUP, [schemas.GetGroupReq, schemas.GroupInfo]],
  [Op.RECALL, [schemas.RecallReq, schemas.SendResp]],
  [Op.EDIT, [schemas.EditReq, schemas.SendResp]],
  [Op.TYPING, [schemas.TypingReq, schemas.TypingResp]],
  [Op.READ_COUNTS, [schemas.ReadCountsReq, schemas.ReadCountsResp]],
  [Op.GET_PRESENCE, [schemas.GetPresenceReq, schemas.GetPresenceResp]],
  [Op.WATCH_PRESENCE, [schemas.WatchPresenceReq, schemas.GetPresenceResp]],
  [Op.DELETE_ACCOUNT, [schemas.DeleteAccountReq, schemas.DeleteAccountResp]],
  [Op.CLEAR_CONV, [schemas.ClearConvReq, schemas.ClearConvResp]],
  [Op.REACT, [schemas.ReactReq, schemas.SendResp]],
  [Op.UPLOAD, [schemas.UploadReq, schemas.UploadResp]],
  [Op.DOWNLOAD, [schemas.DownloadReq, schemas.DownloadResp]],
  [Op.SEARCH_MESSAGES, [schemas.SearchMessagesReq, schemas.SearchMessagesResp]],
  [Op.PIN, [schemas.PinReq, schemas.SendResp]],
]);

/** ErrorCode is common.thrift ErrorCode. */
export const ErrorCode = Object.freeze({
  OK: 0, BAD_REQUEST: 1000, UNAUTHENTICATED: 1001, INVALID_CREDENTIALS: 1002,
  TOKEN_INVALID: 1003, USERNAME_TAKEN: 1004, FORBIDDEN: 1005, NOT_FOUND: 1006,
  TOO_LARGE: 1007, RATE_LIMITED: 1008, ALREADY_LOGGED_IN: 1009, UNSUPPORTED: 1010,
  ACCOUNT_SUSPENDED: 1011, INTERNAL: 2000, UNAVAILABLE: 2001, BUSY: 2002,
});

/** CloseReason is protocol.thrift CloseReason. */
export const CloseReason = Object.freeze({
  UNKNOWN: 0, LOGIN_TIMEOUT: 1, HEARTBEAT_TIMEOUT: 2, PROTOCOL_ERROR: 3, LOGIN_FAILED: 4,
  SLOW_CONSUMER: 5, KICKED: 6, SERVER_SHUTDOWN: 7, OVERLOADED: 8, TOKEN_EXPIRED: 9,
  SIGNED_OUT: 10, RATE_LIMITED: 11, FRAME_TOO_LARGE: 12, ACCOUNT_DELETED: 13,
  ACCOUNT_SUSPENDED: 14,
});

/** ContentType is common.thrift ContentType. */
export const ContentType = Object.freeze({
  TEXT: 1, BINARY: 2, GROUP_EVENT: 3, RECALL: 4, EDIT: 5, REACTION: 6, FILE: 7, PIN: 8,
});

/** ConvType is common.thrift ConvType. */
export const ConvType = Object.freeze({ P2P: 1, GROUP: 2 });

/** GroupAction is common.thrift GroupAction. */
export const GroupAction = Object.freeze({
  CREATE: 1, ADD: 2, REMOVE: 3, LEAVE: 4, RENAME: 5, SET_ROLE: 6, DISMISS: 7,
});

/** GroupRole is common.thrift GroupRole. */
export const GroupRole = Object.freeze({ MEMBER: 1, ADMIN: 2, OWNER: 3 });

/** nameOf returns the key of value in an enum object, or a hex/number fallback. */
export function nameOf(enumObj, value) {
  return Object.keys(enumObj).find((k) => enumObj[k] === value) || String(value);
}
