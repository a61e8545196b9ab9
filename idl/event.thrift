// event.thrift defines the events logic publishes to NATS JetStream and task
// consumes. Each event is Thrift binary; its JetStream message id makes
// publishing idempotent.
namespace go event

include "common.thrift"
include "protocol.thrift"

// MessageEvent asks task to deliver a stored message to every live device of
// the recipients, except the connection it was sent from.
struct MessageEvent {
    1: common.Message message,
    2: list<i64> recipients,    // user ids, sender included (for their other devices)
    3: string origin_gateway,
    4: i64 origin_conn_id,
}

// KickEvent asks task to close one connection through its gateway's Kick:
// a newer login replaced the device, or its session was revoked.
struct KickEvent {
    1: i64 user_id,
    2: string gateway,
    3: i64 conn_id,
    4: protocol.CloseReason reason,
    5: string message,
}

// NotifyEvent asks task to write an ephemeral NOTIFY frame to every live
// device of the recipients, except the originating connection. It travels on
// core NATS, not JetStream: losing one is harmless and it is never retried.
struct NotifyEvent {
    1: protocol.Notify notify,
    2: list<i64> recipients,
    3: string origin_gateway,
    4: i64 origin_conn_id,
}

// PresenceEvent says a user's route set may have gone from empty to
// non-empty or back. Task coalesces these per user and, after the window,
// reads the user's real presence and tells the watchers if it changed.
struct PresenceEvent {
    1: i64 user_id,
    2: i64 at_ms,
}

// RevokedEvent says a logic instance revoked the tokens of a user's device,
// or of all its devices when device_id is empty. Every logic instance
// subscribes (core NATS, mq.Names.RevokedSubject) and forgets the device
// generations its send path cached, so that the device's still-open
// connections are refused at once rather than when the cache expires.
// Losing one only delays that refusal by the cache's lifetime.
struct RevokedEvent {
    1: i64 user_id,
    2: string device_id,
}
