package gateway

import (
	"context"

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

func (s *stubLogic) Refresh(context.Context, *logicrpc.Session,
	*protocol.RefreshReq) (*protocol.RefreshResp, error) {
	return nil, errStubUnsupported
}

func (s *stubLogic) ChangePassword(context.Context, *logicrpc.Session,
	*protocol.ChangePasswordReq) (*protocol.ChangePasswordResp, error) {
	return nil, errStubUnsupported
}

func (s *stubLogic) UpdateProfile(context.Context, *logicrpc.Session,
	*protocol.UpdateProfileReq) (*protocol.UserInfo, error) {
	return nil, errStubUnsupported
}

func (s *stubLogic) ListDevices(context.Context, *logicrpc.Session,
	*protocol.ListDevicesReq) (*protocol.ListDevicesResp, error) {
	return nil, errStubUnsupported
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
