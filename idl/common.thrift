// common.thrift holds the types shared by the client protocol, the internal
// Kitex services and the events on NATS. Field ids are never reused: a removed
// field keeps its id reserved in a comment.
namespace go common

// ErrorCode is the one error model of Resonance. Client-side codes (1xxx) mean
// the request was wrong and must not be retried unchanged; server-side codes
// (2xxx) mean the request may be retried later with the same client ids.
enum ErrorCode {
    OK = 0,

    BAD_REQUEST = 1000,          // malformed or invalid field
    UNAUTHENTICATED = 1001,      // the connection has not logged in
    INVALID_CREDENTIALS = 1002,  // unknown user or wrong password (never says which)
    TOKEN_INVALID = 1003,        // token forged, expired or revoked
    USERNAME_TAKEN = 1004,
    FORBIDDEN = 1005,            // authenticated but not allowed
    NOT_FOUND = 1006,
    TOO_LARGE = 1007,            // a field or body over its limit
    RATE_LIMITED = 1008,
    ALREADY_LOGGED_IN = 1009,    // a login frame on a logged-in connection
    UNSUPPORTED = 1010,          // opcode not valid in this state or direction
    ACCOUNT_SUSPENDED = 1011,    // an operator suspended the account; do not log in again

    INTERNAL = 2000,             // server fault; details are in the server log only
    UNAVAILABLE = 2001,          // a dependency is down; retry with backoff
    BUSY = 2002,                 // the server shed load; retry with backoff
}

// BizError is the exception every Kitex method may throw. Its code is sent to
// clients as is; its message is safe to show (no SQL, no stack).
//
// signed_out marks a TOKEN_INVALID that refuses a token of the device's own,
// well formed and correctly signed, whose device was signed out since
// (SIGN_OUT_DEVICE, LOGOUT, a password change, refresh token reuse, the
// account's deletion), and a request of a session so signed out; an
// expired, malformed or forged token leaves it unset. On the answer to a
// LOGIN, a REFRESH or a logged-in connection's request the gateway then
// closes the connection with SIGNED_OUT after the error, so that the client
// ends its session instead of logging in again with a password it keeps.
// It never reaches a client as a field.
exception BizError {
    1: ErrorCode code,
    2: string message,
    3: optional bool signed_out,
}

enum ConvType {
    P2P = 1,
    GROUP = 2,
}

// ContentType says how to read a message's content. TEXT and BINARY are
// what users send; the others are events stored in the conversation's own
// history, so that every device sees them in order and sync delivers them:
// their content is the Thrift-binary struct named beside each.
enum ContentType {
    TEXT = 1,
    BINARY = 2,
    GROUP_EVENT = 3,    // GroupEvent: membership or group settings changed
    RECALL = 4,         // RecallEvent: an earlier message was recalled
    EDIT = 5,           // EditEvent: an earlier message was edited
    REACTION = 6,       // ReactionEvent: a reaction was added to or removed from an earlier message
    FILE = 7,           // FileRef: a file or image the sender uploaded (UPLOAD) or forwards
    PIN = 8,            // PinEvent: an earlier message was pinned or unpinned
}

// GroupRole is a member's role in a group. Who may do what is in
// docs/protocol.md; logic enforces it.
enum GroupRole {
    MEMBER = 1,
    ADMIN = 2,
    OWNER = 3,
}

enum GroupAction {
    CREATE = 1,         // name, targets: the members added at creation
    ADD = 2,            // targets joined
    REMOVE = 3,         // targets were removed by actor
    LEAVE = 4,          // actor left
    RENAME = 5,         // name is the new name
    SET_ROLE = 6,       // targets now have role (OWNER: ownership moved, actor is now ADMIN)
    DISMISS = 7,        // the group ended; no one may send any more
}

// GroupEvent is the content of a GROUP_EVENT message; the message's sender
// is the actor.
struct GroupEvent {
    1: GroupAction action,
    2: list<i64> targets,
    3: string name,
    4: GroupRole role,
}

// RecallEvent is the content of a RECALL message: the message at seq of the
// same conversation was recalled by its sender.
struct RecallEvent {
    1: i64 seq,
    2: i64 msg_id,
}

// EditEvent is the content of an EDIT message: the message at seq of the
// same conversation now has this content.
struct EditEvent {
    1: i64 seq,
    2: i64 msg_id,
    3: ContentType content_type,
    4: binary content,
}

// ReactionEvent is the content of a REACTION message: its sender added
// (or, with removed, took back) emoji on the message at seq of the same
// conversation.
struct ReactionEvent {
    1: i64 seq,
    2: i64 msg_id,
    3: string emoji,
    4: bool removed,
}

// PinEvent is the content of a PIN message: its sender pinned (or, with
// unpinned, unpinned) the message at seq of the same conversation.
struct PinEvent {
    1: i64 seq,
    2: i64 msg_id,
    3: bool unpinned,
}

// FileRef is the content of a FILE message: a file uploaded with UPLOAD,
// which readers of the message fetch with DOWNLOAD. file_id, size, sha256
// and mime must be those the server stored for the upload; name may differ
// from the uploaded one (a forward may rename). width and height are the
// sender's word for an image's pixels; caption is text shown with it.
struct FileRef {
    1: string file_id,
    2: string name,
    3: string mime,
    4: i64 size,            // bytes
    5: binary sha256,       // of the whole file, 32 bytes
    6: optional i32 width,
    7: optional i32 height,
    8: optional string caption,
}

// Reaction is one emoji's reactions to a message: count users reacted with
// it; user_ids are the first of them (at most 10), earliest first.
struct Reaction {
    1: string emoji,
    2: i32 count,
    3: list<i64> user_ids,
}

// Message is one stored message of a conversation.
struct Message {
    1: i64 msg_id,          // server-assigned, unique across conversations
    2: string conv_id,      // "p2p:<low user id>:<high user id>" for 1:1
    3: i64 seq,             // position in the conversation: 1, 2, 3, ... no gaps
    4: i64 sender_id,
    5: string client_msg_id,// the sender's idempotency key
    6: ContentType content_type,
    7: binary content,
    8: i64 send_time_ms,    // server time at storing, Unix milliseconds
    9: string sender_device,
    10: bool recalled,      // recalled by its sender: content is empty
    11: i64 edited_ms,      // last edit, Unix milliseconds; 0 when never edited
    // Optional, so that a message without them costs no bytes on the wire
    // (every PUSH carries a Message).
    12: optional i64 reply_to_seq,    // the seq this message quotes; unset when none
    13: optional list<i64> mentions,  // user ids it mentions (groups); unset when none
    14: optional bool mention_all,    // it mentions every member (groups); unset when not
    // The message's reactions as of the SYNC page that carries it, by
    // emoji in order of first use; unset when none, and on PUSH (REACTION
    // events carry the changes).
    15: optional list<Reaction> reactions,
}

// ServerLimits are the limits this server enforces that a client's UI
// should know before it offers an action: logic sends its configured
// values in LoginResp, so that a client neither offers what the server
// refuses nor refuses what it allows. Every field is optional: a server
// older than a field leaves it unset, and the client then assumes the
// server's default (in parentheses).
struct ServerLimits {
    1: optional i32 max_content_bytes,  // content of one SEND or EDIT, in bytes (16384)
    2: optional i64 max_file_bytes,     // size of one UPLOAD's file, in bytes (26214400, 25 MiB)
    3: optional i64 recall_window_ms,   // a sender may RECALL this long after sending (120000)
    4: optional i64 edit_window_ms,     // a sender may EDIT this long after sending (86400000)
    5: optional i32 max_group_members,  // active members of a group, owner included (500)
    6: optional i32 max_pins,           // pinned messages of one conversation (20)
}
