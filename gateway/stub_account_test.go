package gateway

import (
	"context"
	"encoding/base64"
	"encoding/binary"

	"github.com/resonance-im/resonance/internal/tokengen"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// The account methods of the stub logic answer UNSUPPORTED: the gateway only
// forwards them, which the forwarding tests cover with the other methods.

var errStubUnsupported = &common.BizError{Code: common.ErrorCode_UNSUPPORTED, Message: "stub"}

func (s *stubLogic) Logout(context.Context, *logicrpc.Session,
	*protocol.LogoutReq) (*protocol.LogoutResp, error) {
	return nil, errStubUnsupported
}

// Refresh refuses the refresh token "stale" with TOKEN_INVALID, as logic
// refuses one rotated away, and "signed-out" with TOKEN_INVALID marked
// signed_out, as logic refuses any of a signed-out device's connection; any
// other is UNSUPPORTED.
func (s *stubLogic) Refresh(_ context.Context, _ *logicrpc.Session,
	req *protocol.RefreshReq) (*protocol.RefreshResp, error) {
	switch req.RefreshToken {
	case "stale":
		return nil, &common.BizError{Code: common.ErrorCode_TOKEN_INVALID, Message: "already used"}
	case "signed-out":
		return nil, errStubSignedOutMarked
	}
	return nil, errStubUnsupported
}

// errStubSignedOutMarked is errStubSignedOut marked signed_out, as logic
// answers a signed-out device's connection since it marks that refusal.
var errStubSignedOutMarked = &common.BizError{Code: common.ErrorCode_TOKEN_INVALID,
	Message: "invalid token: signed out", SignedOut: new(true)}

// DeleteAccount answers, for the password "gone", TOKEN_INVALID as logic
// answers a connection of an account deleted already, and for
// "signed-out" the marked TOKEN_INVALID of a signed-out device's
// connection; any other is UNSUPPORTED.
func (s *stubLogic) DeleteAccount(_ context.Context, _ *logicrpc.Session,
	req *protocol.DeleteAccountReq) (*protocol.DeleteAccountResp, error) {
	switch req.Password {
	case "gone":
		return nil, &common.BizError{Code: common.ErrorCode_TOKEN_INVALID,
			Message: "invalid token: account deleted"}
	case "signed-out":
		return nil, errStubSignedOutMarked
	}
	return nil, errStubUnsupported
}

func (s *stubLogic) ChangePassword(context.Context, *logicrpc.Session,
	*protocol.ChangePasswordReq) (*protocol.ChangePasswordResp, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokenGen == 0 {
		return nil, errStubUnsupported
	}
	s.tokenGen++
	return &protocol.ChangePasswordResp{Token: accessToken(s.tokenGen)}, nil
}

// accessToken returns a token laid out as logic's access tokens are, of
// generation gen, for alice's phone; its signature is made up.
func accessToken(gen int64) string {
	payload := make([]byte, tokengen.HeaderLen, tokengen.HeaderLen+5)
	payload[0] = tokengen.Version
	binary.BigEndian.PutUint64(payload[tokengen.GenerationOffset:], uint64(gen))
	payload = append(payload, "phone"...)
	return base64.RawURLEncoding.EncodeToString(payload) + ".c2ln"
}

func (s *stubLogic) UpdateProfile(context.Context, *logicrpc.Session,
	*protocol.UpdateProfileReq) (*protocol.UserInfo, error) {
	return nil, errStubUnsupported
}

func (s *stubLogic) ListDevices(_ context.Context, sess *logicrpc.Session,
	_ *protocol.ListDevicesReq) (*protocol.ListDevicesResp, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokenGen == 0 {
		return nil, errStubUnsupported
	}
	s.listedGens = append(s.listedGens, sess.TokenGen)
	return &protocol.ListDevicesResp{}, nil
}

func (s *stubLogic) SignOutDevice(context.Context, *logicrpc.Session,
	*protocol.SignOutDeviceReq) (*protocol.SignOutDeviceResp, error) {
	return nil, errStubUnsupported
}

func (s *stubLogic) SearchUsers(context.Context, *logicrpc.Session,
	*protocol.SearchUsersReq) (*protocol.SearchUsersResp, error) {
	return nil, errStubUnsupported
}

func (s *stubLogic) Block(context.Context, *logicrpc.Session,
	*protocol.BlockReq) (*protocol.BlockResp, error) {
	return nil, errStubUnsupported
}
