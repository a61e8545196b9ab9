// protocol.thrift defines the bodies of client frames. Each body is Thrift
// binary protocol, carried after the fixed frame header described in
// docs/protocol.md. The Op enum is the opcode byte of the header.
namespace go protocol

include "common.thrift"

// Op is the opcode of a frame. Requests are odd, their replies the next even
// number; server-initiated frames start at 0x40. A reply echoes the request id
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

    PUSH = 0x41,            // server -> client, body PushMsg, request id 0
    CLOSE = 0x42,           // server -> client, body CloseMsg, then the server closes
}

// CloseReason says why the server closes a connection; it is sent in a CLOSE
// frame before the socket closes, logged and counted.
enum CloseReason {
    UNKNOWN = 0,
    LOGIN_TIMEOUT = 1,      // no successful login within the deadline
    HEARTBEAT_TIMEOUT = 2,  // silent past the heartbeat deadline
    PROTOCOL_ERROR = 3,     // malformed frame; do not resend it
    LOGIN_FAILED = 4,       // bad credentials on the first frame
    SLOW_CONSUMER = 5,      // the client did not read its pushes fast enough
    KICKED = 6,             // replaced by a newer login of the same device
    SERVER_SHUTDOWN = 7,    // reconnect, preferably to another gateway
    OVERLOADED = 8,         // too many connections or requests
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

struct LoginResp {
    1: i64 user_id,
    2: string token,
    3: i64 token_expires_ms,        // Unix milliseconds
    4: i32 heartbeat_interval_ms,   // send a HEARTBEAT at least this often
    5: i64 server_time_ms,
    6: string username,
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
}

struct SendResp {
    1: i64 msg_id,
    2: string conv_id,
    3: i64 seq,
    4: i64 send_time_ms,
    5: bool duplicate,      // true when client_msg_id was seen before
}

// SyncReq asks for the messages of a conversation with seq > after_seq, oldest
// first, at most limit (the server caps it).
struct SyncReq {
    1: string conv_id,
    2: i64 after_seq,
    3: i32 limit,
}

struct SyncResp {
    1: list<common.Message> messages,
    2: bool has_more,
}

struct GetUserReq {
    1: string username,
    2: i64 user_id,
}

struct GetUserResp {
    1: i64 user_id,
    2: string username,
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
