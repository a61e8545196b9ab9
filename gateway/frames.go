package gateway

import (
	"fmt"
	"math/rand/v2"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// request is one decoded client request waiting for a worker.
type request struct {
	op   protocol.Op
	id   uint32
	body codec.Readable // the *protocol.XxxReq of op, decoded on the loop
	// remote is the client's address, filled for LOGIN only: gnet allows
	// RemoteAddr on the loop alone.
	remote string
}

// decodeRequest decodes the body of a request frame into its struct. The
// struct copies its strings and binaries, so it outlives gnet's buffer.
func decodeRequest(h codec.Header, body []byte) (request, error) {
	r := request{op: h.Op, id: h.RequestID}
	switch h.Op {
	case protocol.Op_REGISTER:
		r.body = &protocol.RegisterReq{}
	case protocol.Op_LOGIN:
		r.body = &protocol.LoginReq{}
	case protocol.Op_SEND:
		r.body = &protocol.SendReq{}
	case protocol.Op_SYNC:
		r.body = &protocol.SyncReq{}
	case protocol.Op_GET_USER:
		r.body = &protocol.GetUserReq{}
	default:
		return r, fmt.Errorf("%w: no request body for op %v", codec.ErrUnknownOp, h.Op)
	}
	if err := codec.ReadBody(body, r.body); err != nil {
		return r, fmt.Errorf("decode %v request %d: %w", h.Op, h.RequestID, err)
	}
	return r, nil
}

// closeFrame encodes the CLOSE frame for reason.
func closeFrame(reason protocol.CloseReason, msg string) []byte {
	body := protocol.CloseMsg{
		Reason: reason, Message: msg, ReconnectAfterMs: reconnectAfter(reason),
	}
	return codec.EncodeFrame(protocol.Op_CLOSE, 0, 0, &body)
}

// reconnectAfter tells the client when to come back. The jitter spreads the
// reconnects of many clients closed at once (a shutdown, an overload) so
// they do not return as a storm.
func reconnectAfter(reason protocol.CloseReason) int32 {
	switch reason {
	case protocol.CloseReason_LOGIN_FAILED, protocol.CloseReason_KICKED:
		return -1
	case protocol.CloseReason_SLOW_CONSUMER, protocol.CloseReason_OVERLOADED:
		return 5000 + rand.Int32N(10000)
	default:
		return 1000 + rand.Int32N(4000)
	}
}

// closeMessage is the human-readable text of a CLOSE frame; it never holds
// internal details.
func closeMessage(reason protocol.CloseReason) string {
	switch reason {
	case protocol.CloseReason_LOGIN_TIMEOUT:
		return "no login within the deadline"
	case protocol.CloseReason_HEARTBEAT_TIMEOUT:
		return "no heartbeat within the deadline"
	case protocol.CloseReason_PROTOCOL_ERROR:
		return "malformed frame"
	case protocol.CloseReason_LOGIN_FAILED:
		return "too many failed logins"
	case protocol.CloseReason_SLOW_CONSUMER:
		return "not reading fast enough"
	case protocol.CloseReason_SERVER_SHUTDOWN:
		return "server shutting down"
	default:
		return reason.String()
	}
}
