package gateway

import (
	"errors"
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
	// remote is the client's address, filled for LOGIN and REGISTER only
	// (logic limits them per address): gnet allows RemoteAddr on the loop
	// alone.
	remote string
}

// decodeRequest decodes the body of a request frame into its struct. The
// struct copies its strings and binaries, so it outlives gnet's buffer.
func decodeRequest(h codec.Header, body []byte) (request, error) {
	r := request{op: h.Op, id: h.RequestID, body: newRequestBody(h.Op)}
	if r.body == nil {
		return r, fmt.Errorf("%w: no request body for op %v", codec.ErrUnknownOp, h.Op)
	}
	if err := codec.ReadBodyLimit(body, r.body, maxElems(h.Op)); err != nil {
		return r, fmt.Errorf("decode %v request %d: %w", h.Op, h.RequestID, err)
	}
	return r, nil
}

// maxElems is the most elements a container of op's body may hold, 0 for no
// limit. Logic refuses more positions too, but a DELIVERED is the one
// request whose list holds structs, which may be empty: a 64 KiB body of
// them decodes to some 2 MiB, and held MaxPending deep in the queue, then
// forwarded, it would cost the gateway and logic 30 times what the client
// sent. Refused here, it costs nothing past its frame.
func maxElems(op protocol.Op) int {
	if op == protocol.Op_DELIVERED {
		return maxDeliveredPositions
	}
	return 0
}

// newRequestBody returns an empty request struct of op, or nil for an
// opcode that is not a request forwarded to logic (HEARTBEAT is answered on
// the loop).
func newRequestBody(op protocol.Op) codec.Readable {
	switch op {
	case protocol.Op_REGISTER:
		return &protocol.RegisterReq{}
	case protocol.Op_LOGIN:
		return &protocol.LoginReq{}
	case protocol.Op_SEND:
		return &protocol.SendReq{}
	case protocol.Op_SYNC:
		return &protocol.SyncReq{}
	case protocol.Op_GET_USER:
		return &protocol.GetUserReq{}
	case protocol.Op_DELIVERED:
		return &protocol.DeliveredReq{}
	case protocol.Op_SYNC_CONVS:
		return &protocol.SyncConvsReq{}
	case protocol.Op_MARK_READ:
		return &protocol.MarkReadReq{}
	}
	return newAccountBody(op)
}

// newAccountBody is newRequestBody for the account and session opcodes.
func newAccountBody(op protocol.Op) codec.Readable {
	switch op {
	case protocol.Op_LOGOUT:
		return &protocol.LogoutReq{}
	case protocol.Op_REFRESH:
		return &protocol.RefreshReq{}
	case protocol.Op_CHANGE_PASSWORD:
		return &protocol.ChangePasswordReq{}
	case protocol.Op_UPDATE_PROFILE:
		return &protocol.UpdateProfileReq{}
	case protocol.Op_LIST_DEVICES:
		return &protocol.ListDevicesReq{}
	case protocol.Op_SIGN_OUT_DEVICE:
		return &protocol.SignOutDeviceReq{}
	case protocol.Op_SEARCH_USERS:
		return &protocol.SearchUsersReq{}
	case protocol.Op_BLOCK:
		return &protocol.BlockReq{}
	case protocol.Op_DELETE_ACCOUNT:
		return &protocol.DeleteAccountReq{}
	}
	return newFeatureBody(op)
}

// newFeatureBody is newRequestBody for groups, message changes, presence
// and notification settings.
func newFeatureBody(op protocol.Op) codec.Readable {
	switch op {
	case protocol.Op_CREATE_GROUP:
		return &protocol.CreateGroupReq{}
	case protocol.Op_MANAGE_GROUP:
		return &protocol.ManageGroupReq{}
	case protocol.Op_GET_GROUP:
		return &protocol.GetGroupReq{}
	case protocol.Op_RECALL:
		return &protocol.RecallReq{}
	case protocol.Op_EDIT:
		return &protocol.EditReq{}
	case protocol.Op_TYPING:
		return &protocol.TypingReq{}
	case protocol.Op_READ_COUNTS:
		return &protocol.ReadCountsReq{}
	case protocol.Op_GET_PRESENCE:
		return &protocol.GetPresenceReq{}
	case protocol.Op_WATCH_PRESENCE:
		return &protocol.WatchPresenceReq{}
	case protocol.Op_SET_PUSH_TOKEN:
		return &protocol.SetPushTokenReq{}
	case protocol.Op_MUTE_CONV:
		return &protocol.MuteConvReq{}
	case protocol.Op_SET_DND:
		return &protocol.SetDNDReq{}
	case protocol.Op_GET_SETTINGS:
		return &protocol.GetSettingsReq{}
	case protocol.Op_CLEAR_CONV:
		return &protocol.ClearConvReq{}
	case protocol.Op_REACT:
		return &protocol.ReactReq{}
	case protocol.Op_PIN:
		return &protocol.PinReq{}
	case protocol.Op_UPLOAD:
		return &protocol.UploadReq{}
	case protocol.Op_DOWNLOAD:
		return &protocol.DownloadReq{}
	case protocol.Op_SEARCH_MESSAGES:
		return &protocol.SearchMessagesReq{}
	}
	return nil
}

// maxDeliveredPositions is the limit on the positions of one DELIVERED, the
// same as logic's (docs/protocol.md, Limits).
const maxDeliveredPositions = 500

// frameErrorReason is the close reason for an inbound frame the decoders
// refused: FRAME_TOO_LARGE for one over the size limit (the client may
// reconnect but must not resend it), PROTOCOL_ERROR for anything malformed.
func frameErrorReason(err error) protocol.CloseReason {
	if errors.Is(err, codec.ErrTooLarge) || errors.Is(err, ErrWSTooLarge) {
		return protocol.CloseReason_FRAME_TOO_LARGE
	}
	return protocol.CloseReason_PROTOCOL_ERROR
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
	case protocol.CloseReason_LOGIN_FAILED, protocol.CloseReason_KICKED,
		protocol.CloseReason_TOKEN_EXPIRED, protocol.CloseReason_SIGNED_OUT,
		protocol.CloseReason_ACCOUNT_DELETED, protocol.CloseReason_ACCOUNT_SUSPENDED:
		return -1
	case protocol.CloseReason_SLOW_CONSUMER, protocol.CloseReason_OVERLOADED,
		protocol.CloseReason_RATE_LIMITED:
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
	case protocol.CloseReason_FRAME_TOO_LARGE:
		return "frame over the size limit"
	case protocol.CloseReason_LOGIN_FAILED:
		return "too many failed logins"
	case protocol.CloseReason_SLOW_CONSUMER:
		return "not reading fast enough"
	case protocol.CloseReason_SERVER_SHUTDOWN:
		return "server shutting down"
	case protocol.CloseReason_KICKED:
		return "replaced by a newer login of this device"
	case protocol.CloseReason_OVERLOADED:
		return "server overloaded, reconnect later"
	case protocol.CloseReason_RATE_LIMITED:
		return "too many frames per second"
	case protocol.CloseReason_TOKEN_EXPIRED:
		return "session expired, log in again"
	case protocol.CloseReason_SIGNED_OUT:
		return "signed out"
	case protocol.CloseReason_ACCOUNT_DELETED:
		return "account deleted"
	case protocol.CloseReason_ACCOUNT_SUSPENDED:
		return "account suspended"
	default:
		return reason.String()
	}
}
