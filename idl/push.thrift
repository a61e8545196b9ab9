// push.thrift is the Kitex service each gateway hosts; task calls it to write
// an already encoded frame to connections of that gateway.
namespace go pushrpc

include "protocol.thrift"

struct Target {
    1: i64 conn_id,
    2: i64 user_id,     // the gateway checks the connection still belongs to it
}

// PushFrame is one frame of a batch, with the one connection it must not
// reach (the device that sent the message has its ack); 0: none.
struct PushFrame {
    1: binary frame,
    2: i64 skip_conn,
}

// PushReq writes frame, or when frames is set each of frames in order, to
// every target. A batch carries consecutive events of one conversation with
// the same recipients: each target gets them in one write.
struct PushReq {
    1: list<Target> targets,
    2: binary frame,    // one complete client frame, header included
    3: list<PushFrame> frames,
}

struct PushResp {
    1: i32 delivered,           // targets whose connection accepted the frame
    2: list<i64> missing_conns, // targets with no such connection here
}

// KickReq closes connections: the gateway sends each a CLOSE frame with the
// reason and message, then closes it. Used when a newer login replaces a
// device, and when a session is revoked.
struct KickReq {
    1: list<Target> targets,
    2: protocol.CloseReason reason,
    3: string message,
}

service Push {
    PushResp Push(1: PushReq req)
    PushResp Kick(1: KickReq req)
}
