package gateway

import (
	"math"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// setTokenExpiry records in c.authDeadline when c's access token runs out,
// given as Unix ms by logic; 0 (a logic that does not say) means never. The
// wheel closes c with TOKEN_EXPIRED at that time unless a REFRESH moved it. The time is turned
// into the gateway clock by its distance from now, so the two clocks need
// only agree on the rate, not the epoch; skew between the logic and gateway
// hosts moves the close by as much.
//
// The wheel finds a later expiry when the connection's slot comes due, so a
// REFRESH needs no wheel operation. An earlier one is not: a connection
// whose token runs out before its current slot (a token lifetime shorter
// than the login or heartbeat timeout) is closed when that slot comes due,
// late but never early.
//
// At LOGIN it runs before the session is stored: until then the loop reads
// the value as a login deadline, and a fresh token's expiry (or "never") is
// in the future, so the connection cannot be closed early in between.
func (g *Gateway) setTokenExpiry(c *conn, expiresUnixMs int64) {
	if expiresUnixMs <= 0 {
		c.authDeadline.Store(math.MaxInt64)
		return
	}
	left := expiresUnixMs - time.Now().UnixMilli()
	c.authDeadline.Store(g.nowMs() + left)
}

// afterReply returns what runs on the loop once a successful reply resp is
// written: a new token moves the connection's expiry, a LOGOUT closes the
// connection with SIGNED_OUT after its ack, and a DELETE_ACCOUNT with
// ACCOUNT_DELETED.
func (g *Gateway) afterReply(c *conn, resp codec.Body) gnet.AsyncCallback {
	switch r := resp.(type) {
	case *protocol.RefreshResp:
		g.setTokenExpiry(c, r.TokenExpiresMs)
	case *protocol.ChangePasswordResp:
		g.setTokenExpiry(c, r.TokenExpiresMs)
	case *protocol.LogoutResp:
		return func(gnet.Conn, error) error {
			g.closeOnLoop(c, protocol.CloseReason_SIGNED_OUT, "logged out")
			return nil
		}
	case *protocol.DeleteAccountResp:
		return func(gnet.Conn, error) error {
			g.closeOnLoop(c, protocol.CloseReason_ACCOUNT_DELETED, "account deleted")
			return nil
		}
	}
	return g.writeDone
}

// afterError returns what runs on the loop once resp, the error reply to
// a request of op, is written. TOKEN_INVALID to a logged-in connection's
// request means logic found the connection's device signed out (LOGOUT on
// another connection, SIGN_OUT_DEVICE, a password change) or its account
// deleted, and the close that should have followed was lost or missed this
// gateway: the connection can do nothing more, so it is closed with
// SIGNED_OUT after the reply, and the client takes its signed-out path
// instead of meeting the same error on every request. DELETE_ACCOUNT's
// TOKEN_INVALID says the account is gone: ACCOUNT_DELETED, unless logic
// marked it signed_out (the connection's device was signed out, and the
// account lives): SIGNED_OUT.
//
// Not after LOGIN, whose TOKEN_INVALID refuses the token it carried (the
// third failure closes with LOGIN_FAILED, and a signed-out device's token
// with SIGNED_OUT at once: loginFailed). After REFRESH only when marked
// signedOut: an unmarked one refuses the refresh token it carried
// (malformed, expired, rotated away by a concurrent REFRESH, or of another
// device) while the connection may well be signed in, and the client goes
// on to its password; a marked one found the connection's device signed
// out, and a client falling back to its password would sign it back in.
func (g *Gateway) afterError(c *conn, op protocol.Op, resp *protocol.ErrorResp,
	signedOut bool) gnet.AsyncCallback {
	if resp.Code != common.ErrorCode_TOKEN_INVALID || c.session.Load() == nil {
		return g.writeDone
	}
	reason, detail := protocol.CloseReason_SIGNED_OUT, "signed out"
	switch {
	case op == protocol.Op_LOGIN, op == protocol.Op_REGISTER:
		return g.writeDone
	case op == protocol.Op_REFRESH && !signedOut:
		return g.writeDone
	case op == protocol.Op_DELETE_ACCOUNT && !signedOut:
		reason, detail = protocol.CloseReason_ACCOUNT_DELETED, "account deleted"
	}
	return func(gnet.Conn, error) error {
		g.closeOnLoop(c, reason, detail)
		return nil
	}
}
