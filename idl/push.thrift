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
    // Set only in a PushBatch answer, for a req the gateway refused (a bad
    // frame): the error that req's own Push call would have failed with.
    // Nothing of that req was written.
    3: optional string error,
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
    // PushBatch handles reqs in order, exactly as that many Push calls made
    // one after the other would be, and answers one PushResp per req, in
    // the same order. A req that its Push call would refuse is answered
    // with PushResp.error and does not stop the others. Task coalesces the
    // pushes that queue up behind its calls to one gateway into one
    // PushBatch; gateways older than it answer "unknown method", and task
    // then makes Push calls.
    list<PushResp> PushBatch(1: list<PushReq> reqs)
    PushResp Kick(1: KickReq req)
}
