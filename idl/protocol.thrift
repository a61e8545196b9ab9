// protocol.thrift defines the bodies of client frames. Each body is Thrift
// binary protocol, carried after the fixed frame header described in
// docs/protocol.md. The Op enum is the opcode byte of the header.
namespace go protocol

include "common.thrift"

// Op is the opcode of a frame. Requests are odd, their replies the next even
// number; 0x40 to 0x50 are the server's own frames, and requests go on from
// 0x51 once those below 0x40 ran out. A reply echoes the request id
// of its request. Any reply may instead carry an ErrorResp body with the
// header's error flag set.
enum Op {
    HEARTBEAT = 0x01,       // body HeartbeatReq
    HEARTBEAT_ACK = 0x02,   // body HeartbeatResp
    REGISTER = 0x03,        // body RegisterReq (allowed before login)
    REGISTER_ACK = 0x04,    // body RegisterResp
    LOGIN = 0x05,           // body LoginReq
    LOGIN_ACK = 0x06,       // body LoginResp
    SEND = 0x07,            // body SendReq
    SEND_ACK = 0x08,        // body SendResp
    SYNC = 0x09,            // body SyncReq
    SYNC_ACK = 0x0A,        // body SyncResp
    GET_USER = 0x0B,        // body GetUserReq
    GET_USER_ACK = 0x0C,    // body GetUserResp
    DELIVERED = 0x0D,       // body DeliveredReq: what this device has received
    DELIVERED_ACK = 0x0E,   // body DeliveredResp
    SYNC_CONVS = 0x0F,      // body SyncConvsReq: conversations changed since a cursor
    SYNC_CONVS_ACK = 0x10,  // body SyncConvsResp
    MARK_READ = 0x11,       // body MarkReadReq
    MARK_READ_ACK = 0x12,   // body MarkReadResp
    LOGOUT = 0x13,          // body LogoutReq: revoke this device's tokens, then close
    LOGOUT_ACK = 0x14,      // body LogoutResp
    REFRESH = 0x15,         // body RefreshReq: a new access token before the old expires
    REFRESH_ACK = 0x16,     // body RefreshResp
    CHANGE_PASSWORD = 0x17, // body ChangePasswordReq
    CHANGE_PASSWORD_ACK = 0x18, // body ChangePasswordResp
    UPDATE_PROFILE = 0x19,  // body UpdateProfileReq
    UPDATE_PROFILE_ACK = 0x1A,  // body UserInfo
    LIST_DEVICES = 0x1B,    // body ListDevicesReq
    LIST_DEVICES_ACK = 0x1C,    // body ListDevicesResp
    SIGN_OUT_DEVICE = 0x1D, // body SignOutDeviceReq
    SIGN_OUT_DEVICE_ACK = 0x1E, // body SignOutDeviceResp
    SEARCH_USERS = 0x1F,    // body SearchUsersReq
    SEARCH_USERS_ACK = 0x20,    // body SearchUsersResp
    BLOCK = 0x21,           // body BlockReq
    BLOCK_ACK = 0x22,       // body BlockResp
    CREATE_GROUP = 0x23,    // body CreateGroupReq
    CREATE_GROUP_ACK = 0x24,    // body GroupChangeResp
    MANAGE_GROUP = 0x25,    // body ManageGroupReq: add, remove, leave, rename, set role, dismiss
    MANAGE_GROUP_ACK = 0x26,    // body GroupChangeResp
    GET_GROUP = 0x27,       // body GetGroupReq
    GET_GROUP_ACK = 0x28,   // body GroupInfo
    RECALL = 0x29,          // body RecallReq
    RECALL_ACK = 0x2A,      // body SendResp (the RECALL event message)
    EDIT = 0x2B,            // body EditReq
    EDIT_ACK = 0x2C,        // body SendResp (the EDIT event message)
    TYPING = 0x2D,          // body TypingReq: ephemeral, never stored
    TYPING_ACK = 0x2E,      // body TypingResp
    READ_COUNTS = 0x2F,     // body ReadCountsReq: how many members read each message
    READ_COUNTS_ACK = 0x30, // body ReadCountsResp
    GET_PRESENCE = 0x31,    // body GetPresenceReq
    GET_PRESENCE_ACK = 0x32,    // body GetPresenceResp
    WATCH_PRESENCE = 0x33,  // body WatchPresenceReq: replace the users this user watches
    WATCH_PRESENCE_ACK = 0x34,  // body GetPresenceResp (their presence now)
    SET_PUSH_TOKEN = 0x35,  // body SetPushTokenReq: this device's offline-push token
    SET_PUSH_TOKEN_ACK = 0x36,  // body SetPushTokenResp
    MUTE_CONV = 0x37,       // body MuteConvReq
    MUTE_CONV_ACK = 0x38,   // body MuteConvResp
    SET_DND = 0x39,         // body SetDNDReq: the user's do-not-disturb window
    SET_DND_ACK = 0x3A,     // body UserSettings
    GET_SETTINGS = 0x3B,    // body GetSettingsReq
    GET_SETTINGS_ACK = 0x3C,    // body UserSettings
    DELETE_ACCOUNT = 0x3D,  // body DeleteAccountReq: delete the account for good, then close
    DELETE_ACCOUNT_ACK = 0x3E,  // body DeleteAccountResp

    PUSH = 0x41,            // server -> client, body PushMsg, request id 0
    CLOSE = 0x42,           // server -> client, body CloseMsg, then the server closes
    NOTIFY = 0x43,          // server -> client, body Notify, request id 0: ephemeral, unordered

    CLEAR_CONV = 0x51,      // body ClearConvReq: clear (and hide) a conversation for this user
    CLEAR_CONV_ACK = 0x52,  // body ClearConvResp
    REACT = 0x53,           // body ReactReq: add or remove an emoji reaction
    REACT_ACK = 0x54,       // body SendResp (the REACTION event message)
    UPLOAD = 0x55,          // body UploadReq: start an upload, add a chunk, or ask where to resume
    UPLOAD_ACK = 0x56,      // body UploadResp
    DOWNLOAD = 0x57,        // body DownloadReq: a chunk of a file the user may read
    DOWNLOAD_ACK = 0x58,    // body DownloadResp
    SEARCH_MESSAGES = 0x59, // body SearchMessagesReq: find text in the messages the user may read
    SEARCH_MESSAGES_ACK = 0x5A, // body SearchMessagesResp
    PIN = 0x5B,             // body PinReq: pin or unpin a message of a conversation
    PIN_ACK = 0x5C,         // body SendResp (the PIN event message)
}

// CloseReason says why the server closes a connection; it is sent in a CLOSE
// frame before the socket closes, logged and counted.
enum CloseReason {
    UNKNOWN = 0,
    LOGIN_TIMEOUT = 1,      // no successful login within the deadline
    HEARTBEAT_TIMEOUT = 2,  // silent past the heartbeat deadline
    PROTOCOL_ERROR = 3,     // malformed frame; do not resend it
    LOGIN_FAILED = 4,       // too many failed logins on one connection
    SLOW_CONSUMER = 5,      // the client did not read its pushes fast enough
    KICKED = 6,             // replaced by a newer login of the same device
    SERVER_SHUTDOWN = 7,    // reconnect, preferably to another gateway
    OVERLOADED = 8,         // too many connections; reconnect later, elsewhere if possible
    TOKEN_EXPIRED = 9,      // the session's token expired; log in again with the password
    SIGNED_OUT = 10,        // logged out, password changed or device signed out
    RATE_LIMITED = 11,      // too many frames per second
    FRAME_TOO_LARGE = 12,   // a frame or WebSocket message over the size limit; do not resend it
    ACCOUNT_DELETED = 13,   // the account was deleted; do not reconnect
    ACCOUNT_SUSPENDED = 14, // an operator suspended the account; do not reconnect
}

struct HeartbeatReq {}

struct HeartbeatResp {
    1: i64 server_time_ms,
}

struct RegisterReq {
    1: string username,
    2: string password,
}

struct RegisterResp {
    1: i64 user_id,
}

// LoginReq authenticates a connection with a username and password, or with a
// token from an earlier LoginResp. device_id names the device; one user may be
// logged in from several devices at once.
struct LoginReq {
    1: string username,
    2: string password,
    3: string token,
    4: string device_id,
    5: string platform,
}

// LoginResp carries a short-lived access token (log in with it on reconnect)
// and a longer-lived refresh token bound to this device (REFRESH exchanges it
// for a new pair). A connection whose access token expires without a REFRESH
// is closed with TOKEN_EXPIRED.
struct LoginResp {
    1: i64 user_id,
    2: string token,
    3: i64 token_expires_ms,        // Unix milliseconds
    4: i32 heartbeat_interval_ms,   // send a HEARTBEAT at least this often
    5: i64 server_time_ms,
    6: string username,
    7: string refresh_token,
    8: i64 refresh_expires_ms,
    9: string device_id,            // the device this session is, as logic resolved it
    // limits are the server's configured limits (see ServerLimits); unset
    // from a server older than this field.
    10: optional common.ServerLimits limits,
}

// SendReq sends one message. A 1:1 message names to_user_id; conv_id names an
// existing conversation. client_msg_id is the idempotency key: a retry with the
// same key returns the first ack and stores nothing new.
struct SendReq {
    1: string client_msg_id,
    2: i64 to_user_id,
    3: string conv_id,
    4: common.ContentType content_type,
    5: binary content,
    // reply_to_seq quotes an earlier message of the same conversation that
    // the sender can read; 0 quotes none.
    6: optional i64 reply_to_seq,
    // mentions are user ids of current group members (groups only, at most
    // 50; duplicates and the sender are dropped). mention_all mentions every
    // member and is for the owner and admins.
    7: optional list<i64> mentions,
    8: optional bool mention_all,
}

struct SendResp {
    1: i64 msg_id,
    2: string conv_id,
    3: i64 seq,
    4: i64 send_time_ms,
    5: bool duplicate,      // true when client_msg_id was seen before
}

// SyncReq asks for messages of a conversation, oldest first, at most limit
// (the server caps it). Forward (before_seq 0): seq > after_seq. Backward
// (before_seq > 0): the newest messages with seq < before_seq; a before_seq
// past last_seq, such as 2^63-1, returns the latest page.
struct SyncReq {
    1: string conv_id,
    2: i64 after_seq,
    3: i32 limit,
    4: i64 before_seq,
}

struct SyncResp {
    1: list<common.Message> messages,
    2: bool has_more,   // forward: newer messages remain; backward: older ones do
    3: i64 last_seq,    // the conversation's newest seq when this page was read
}

// ConvPos is a position in a conversation.
struct ConvPos {
    1: string conv_id,
    2: i64 seq,
}

// DeliveredReq tells the server which messages this device has handed to its
// application, so it can resume from there on any install of the app. The
// server keeps the highest seq per device and conversation.
struct DeliveredReq {
    1: list<ConvPos> positions,
}

struct DeliveredResp {}

// ConvSummary is one conversation of the user as seen by this device.
struct ConvSummary {
    1: string conv_id,
    2: common.ConvType type,
    3: i64 last_seq,
    4: common.Message last_message,  // unset when the conversation is empty
    5: i64 read_seq,                 // the user's read position (any device)
    6: i64 unread,                   // messages after read_seq not sent by the user
    7: i64 delivered_seq,            // this device's delivered position
    8: i64 updated_ms,               // time of the last change, Unix milliseconds
    9: i64 peer_user_id,             // the other user of a 1:1 conversation
    10: string name,                 // a group's name
    11: i64 peer_read_seq,           // 1:1: how far the other user has read
    12: bool left,                   // no longer a member of the group: nothing after last_seq is readable
    13: bool muted,                  // the user muted it: no offline notifications
    14: i32 member_count,            // a group's active members
    // A group dismissed while the user was a member; unset for 1:1 and by
    // servers from before the field (see docs/protocol.md).
    15: optional bool dismissed,
    // The newest seq that mentions the user (by id or @all), 0 when none:
    // clients show an "@" badge while it is past read_seq.
    16: i64 mention_seq,
    17: i64 cleared_seq,             // the user cleared the history up to here: no message at or below it is synced
    // The user hid the conversation (CLEAR_CONV hide) and nothing newer than
    // cleared_seq has arrived: drop it from the list. Reported once; the
    // conversation is listed again, not hidden, when a newer message arrives.
    18: bool hidden,
    // The conversation's pinned messages that the user may read, most
    // recently pinned first; unset when none, for a group the user left,
    // and by servers from before the field.
    19: optional list<i64> pinned_seqs,
}

// SyncConvsReq lists the user's conversations changed since cursor (empty:
// all of them), in pages. The cursor is opaque: pass back the one from the
// last reply. A conversation may be reported again; compare its last_seq.
struct SyncConvsReq {
    1: string cursor,
    2: i32 limit,
}

struct SyncConvsResp {
    1: list<ConvSummary> convs,
    2: string cursor,    // the cursor for the next call
    3: bool has_more,    // call again at once with cursor for the next page
}

// MarkReadReq moves the user's read position of a conversation forward to
// seq; it never moves back.
struct MarkReadReq {
    1: string conv_id,
    2: i64 seq,
}

struct MarkReadResp {
    1: i64 read_seq,
}

struct GetUserReq {
    1: string username,
    2: i64 user_id,
}

// GetUserResp is a user's public profile. A deleted account answers by id
// only, with deleted set and the profile empty.
struct GetUserResp {
    1: i64 user_id,
    2: string username,
    3: string nickname,
    4: string avatar_url,
    5: bool deleted,
}

struct LogoutReq {}

struct LogoutResp {}

struct RefreshReq {
    1: string refresh_token,
}

// RefreshResp is a new token pair; the old refresh token stops working.
struct RefreshResp {
    1: string token,
    2: i64 token_expires_ms,
    3: string refresh_token,
    4: i64 refresh_expires_ms,
}

// ChangePasswordReq revokes every token of the user except this device's new
// pair, and closes the user's other connections with SIGNED_OUT.
struct ChangePasswordReq {
    1: string old_password,
    2: string new_password,
}

struct ChangePasswordResp {
    1: string token,
    2: i64 token_expires_ms,
    3: string refresh_token,
    4: i64 refresh_expires_ms,
}

// DeleteAccountReq deletes the session's account: the password proves it
// again (a wrong one is INVALID_CREDENTIALS, rate-limited like a login).
// The user's groups are left (owned ones handed over or, with no one else
// in them, dismissed), its devices signed out, and every connection of the
// user, this one after the ack, closed with ACCOUNT_DELETED. Messages it
// sent stay in history; its username is free for a new account.
struct DeleteAccountReq {
    1: string password,
}

struct DeleteAccountResp {}

// UserInfo is the public profile of a user.
struct UserInfo {
    1: i64 user_id,
    2: string username,
    3: string nickname,
    4: string avatar_url,
    5: bool deleted,                // the account was deleted; the profile is empty
}

// UpdateProfileReq sets the fields that are set (nil leaves one unchanged).
struct UpdateProfileReq {
    1: optional string nickname,
    2: optional string avatar_url,
}

struct ListDevicesReq {}

struct Device {
    1: string device_id,
    2: string platform,
    3: i64 last_login_ms,
    4: bool online,
    5: bool current,    // the device asking
}

struct ListDevicesResp {
    1: list<Device> devices,
}

// SignOutDeviceReq revokes one device's tokens and closes its connections.
struct SignOutDeviceReq {
    1: string device_id,
}

struct SignOutDeviceResp {}

// SearchUsersReq finds users by exact username, or by username prefix of at
// least 3 characters; at most limit (capped at 20) results.
struct SearchUsersReq {
    1: string query,
    2: i32 limit,
}

struct SearchUsersResp {
    1: list<UserInfo> users,
}

// BlockReq blocks (or unblocks) a user: a blocked user can neither start nor
// continue a 1:1 conversation with the blocker.
struct BlockReq {
    1: i64 user_id,
    2: bool blocked,
}

struct BlockResp {}

// CreateGroupReq creates a group with the asking user as owner and the
// listed users as members. client_msg_id is the idempotency key of the
// CREATE event, as for SendReq.
struct CreateGroupReq {
    1: string client_msg_id,
    2: string name,
    3: list<i64> member_ids,
}

// ManageGroupReq changes a group; each accepted change is a GROUP_EVENT
// message in the group's history. ADD and REMOVE take user_ids; RENAME takes
// name; SET_ROLE takes user_ids and role (OWNER hands ownership to the one
// user listed); LEAVE and DISMISS take nothing more. CREATE is not valid here.
struct ManageGroupReq {
    1: string client_msg_id,
    2: string conv_id,
    3: common.GroupAction action,
    4: list<i64> user_ids,
    5: string name,
    6: common.GroupRole role,
}

// GroupChangeResp is the ack of a group change: the conversation and the
// stored GROUP_EVENT message.
struct GroupChangeResp {
    1: string conv_id,
    2: i64 msg_id,
    3: i64 seq,
    4: i64 send_time_ms,
    5: bool duplicate,
}

struct GetGroupReq {
    1: string conv_id,
}

struct GroupMember {
    1: i64 user_id,
    2: common.GroupRole role,
    3: i64 joined_ms,
}

// GroupInfo is a group as its members see it.
struct GroupInfo {
    1: string conv_id,
    2: string name,
    3: i64 owner_id,
    4: list<GroupMember> members,   // active members
    5: bool dismissed,
    6: i64 last_seq,
    7: i32 max_members,
}

// RecallReq recalls the sender's own message at seq, within the server's
// recall window. client_msg_id keys the RECALL event.
struct RecallReq {
    1: string client_msg_id,
    2: string conv_id,
    3: i64 seq,
}

// EditReq replaces the content of the sender's own message at seq.
struct EditReq {
    1: string client_msg_id,
    2: string conv_id,
    3: i64 seq,
    4: common.ContentType content_type,
    5: binary content,
}

// ReactReq adds (or, with remove, takes back) the session user's emoji
// reaction to the message at seq. client_msg_id keys the REACTION event. An
// emoji is 1 to 32 bytes of UTF-8 without whitespace or control characters;
// a message holds at most 20 distinct emoji and 3 reactions of one user.
// Adding one the user already has, or removing one they do not have, stores
// nothing and answers duplicate.
struct ReactReq {
    1: string client_msg_id,
    2: string conv_id,
    3: i64 seq,
    4: string emoji,
    5: bool remove,
}

// PinReq pins (or, with unpin, unpins) the message at seq for every member
// of the conversation. client_msg_id keys the PIN event. Pinning a pinned
// message, or unpinning one that is not, stores nothing and answers
// duplicate. A conversation holds at most ServerLimits.max_pins pins.
struct PinReq {
    1: string client_msg_id,
    2: string conv_id,
    3: i64 seq,
    4: bool unpin,
}

// MaxFileChunk is the most bytes one UPLOAD carries or one DOWNLOAD returns:
// with the fields around it, a chunk fits the default 64 KiB frame body.
const i32 MaxFileChunk = 32768

// UploadReq uploads a file in chunks. Without file_id it starts an upload
// of size bytes whose SHA-256 is sha256, and the answer names the new
// file_id; it may carry the first chunk at offset 0. With file_id it adds
// data at offset, which must not be past the server's next offset (a chunk
// before it is already held and ignored); with no data it only asks for the
// next offset, which is how a client resumes after a reconnect. Once all
// size bytes are in and their SHA-256 matches, the upload is complete; a
// mismatch is BAD_REQUEST and drops the upload. data is at most
// MaxFileChunk bytes; size at most the server's limit (TOO_LARGE).
struct UploadReq {
    1: string file_id,
    2: i64 size,
    3: binary sha256,
    4: string mime,         // e.g. "image/png"; "application/octet-stream" when unknown
    5: string name,         // the file's name, without directories
    6: i64 offset,
    7: binary data,
}

// UploadResp says how far an upload is: next_offset is the first byte the
// server does not hold (size once complete).
struct UploadResp {
    1: string file_id,
    2: i64 next_offset,
    3: bool complete,
}

// DownloadReq asks for up to max_bytes (0 or over MaxFileChunk: MaxFileChunk)
// of a complete file from offset on. Its owner may read it, and so may every
// user who can read a FILE message naming it; to anyone else, as to an
// unknown id, it is NOT_FOUND.
struct DownloadReq {
    1: string file_id,
    2: i64 offset,
    3: i32 max_bytes,
}

// DownloadResp is a chunk of a file (empty at or past its end) with the
// file's stored description.
struct DownloadResp {
    1: binary data,
    2: i64 offset,
    3: i64 size,
    4: string mime,
    5: string name,
    6: binary sha256,
}

// SearchMessagesReq finds the messages the user may read by SYNC whose text
// contains query, case-insensitively: TEXT messages by their current
// (edited) text, FILE messages by name or caption; never a recalled one or
// an event. Results come newest first. One request reads a bounded number
// of stored messages, so a page may hold fewer than limit matches, even
// none, while next_cursor says that older messages remain.
struct SearchMessagesReq {
    1: string query,    // 1 to 64 characters after trimming spaces
    2: string conv_id,  // one conversation; empty searches all of the user's
    3: i64 cursor,      // 0 for the newest; else next_cursor of the page before
    4: i32 limit,       // matches per page: 0 means 20, capped at 50
}

struct SearchMessagesResp {
    1: list<common.Message> messages,   // newest first
    2: i64 next_cursor, // where the next page starts; 0 when the search is done
}

// TypingReq tells the other members that this user is (or stopped) typing.
// It is rate-limited and never stored; a typing state lapses on its own
// after a few seconds.
struct TypingReq {
    1: string conv_id,
    2: bool typing,
}

struct TypingResp {}

// ReadCountsReq asks, for each seq, how many members other than the sender
// have read up to it (at most 100 seqs).
struct ReadCountsReq {
    1: string conv_id,
    2: list<i64> seqs,
}

struct ReadCountsResp {
    1: list<i32> counts,    // one per requested seq, same order
    2: i32 member_count,
}

struct GetPresenceReq {
    1: list<i64> user_ids,
}

struct Presence {
    1: i64 user_id,
    2: bool online,
    3: i64 since_ms,        // when this was last observed changed; 0 if unknown
}

struct GetPresenceResp {
    1: list<Presence> presences,
}

// WatchPresenceReq replaces the set of users whose presence changes this
// user is sent (NOTIFY with presence), on all of the user's devices. Changes
// are coalesced: a connection flapping within the window is not reported.
struct WatchPresenceReq {
    1: list<i64> user_ids,
}

enum PushPlatform {
    APNS = 1,
    FCM = 2,
    OTHER = 3,
}

// SetPushTokenReq sets this device's offline-push token; an empty token
// removes it. Logout and sign-out remove it too.
struct SetPushTokenReq {
    1: PushPlatform platform,
    2: string token,
    3: string app_id,
}

struct SetPushTokenResp {}

// MuteConvReq mutes (or unmutes) a conversation for this user on all devices:
// no offline notifications for it.
struct MuteConvReq {
    1: string conv_id,
    2: bool muted,
}

struct MuteConvResp {}

// ClearConvReq clears a conversation's history for this user on all devices:
// SYNC no longer returns messages at or below up_to_seq (0: the
// conversation's last seq now; capped at it). It only moves forward and
// moves the read position with it. hide also drops the conversation from the
// user's list until a newer message arrives. Other members are unaffected.
struct ClearConvReq {
    1: string conv_id,
    2: i64 up_to_seq,
    3: bool hide,
}

// ClearConvResp carries the user's cleared seq after the call, which is never
// lower than before.
struct ClearConvResp {
    1: i64 cleared_seq,
}

// SetDNDReq sets the user's do-not-disturb window: no offline notifications
// for messages sent between start and end (they are not sent later either),
// minutes after midnight in the user's zone (utc_offset_minutes). start ==
// end switches it off.
struct SetDNDReq {
    1: i32 start_minute,
    2: i32 end_minute,
    3: i32 utc_offset_minutes,
}

struct GetSettingsReq {}

struct UserSettings {
    1: bool dnd_enabled,
    2: i32 dnd_start_minute,
    3: i32 dnd_end_minute,
    4: i32 utc_offset_minutes,
}

// ReadUpdate says a user's read position in a conversation moved: the
// user's own other devices learn it, and in 1:1 the peer (a read receipt).
struct ReadUpdate {
    1: string conv_id,
    2: i64 user_id,
    3: i64 read_seq,
}

struct TypingUpdate {
    1: string conv_id,
    2: i64 user_id,
    3: bool typing,
}

// ConvCleared says the user cleared (CLEAR_CONV) a conversation on another
// of their devices: its history up to cleared_seq is gone for the user, and
// with hidden the conversation leaves the user's list until a newer message.
struct ConvCleared {
    1: string conv_id,
    2: i64 cleared_seq,
    3: bool hidden,
}

// Notify is an ephemeral server event: not stored, not ordered with
// messages, not resent. Exactly one field is set.
struct Notify {
    1: optional ReadUpdate read,
    2: optional TypingUpdate typing,
    3: optional Presence presence,
    4: optional ConvCleared cleared,
}

// PushMsg is a message delivered to a connection.
struct PushMsg {
    1: common.Message message,
}

// CloseMsg precedes a server-side close. reconnect_after_ms < 0 means do not
// reconnect automatically (for example after LOGIN_FAILED or KICKED).
struct CloseMsg {
    1: CloseReason reason,
    2: string message,
    3: i32 reconnect_after_ms,
}

// ErrorResp replaces the reply body when the header's error flag is set.
struct ErrorResp {
    1: common.ErrorCode code,
    2: string message,
}
