package logic

import (
	"context"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// The account methods of issue 6 are being written; until then they answer
// UNSUPPORTED. This file goes when they land.

var errNotYet = &common.BizError{Code: common.ErrorCode_UNSUPPORTED, Message: "not supported yet"}

func (s *Service) Logout(context.Context, *logicrpc.Session,
	*protocol.LogoutReq) (*protocol.LogoutResp, error) {
	return nil, errNotYet
}

func (s *Service) Refresh(context.Context, *logicrpc.Session,
	*protocol.RefreshReq) (*protocol.RefreshResp, error) {
	return nil, errNotYet
}

func (s *Service) ChangePassword(context.Context, *logicrpc.Session,
	*protocol.ChangePasswordReq) (*protocol.ChangePasswordResp, error) {
	return nil, errNotYet
}

func (s *Service) UpdateProfile(context.Context, *logicrpc.Session,
	*protocol.UpdateProfileReq) (*protocol.UserInfo, error) {
	return nil, errNotYet
}

func (s *Service) ListDevices(context.Context, *logicrpc.Session,
	*protocol.ListDevicesReq) (*protocol.ListDevicesResp, error) {
	return nil, errNotYet
}

func (s *Service) SignOutDevice(context.Context, *logicrpc.Session,
	*protocol.SignOutDeviceReq) (*protocol.SignOutDeviceResp, error) {
	return nil, errNotYet
}

func (s *Service) SearchUsers(context.Context, *logicrpc.Session,
	*protocol.SearchUsersReq) (*protocol.SearchUsersResp, error) {
	return nil, errNotYet
}

func (s *Service) Block(context.Context, *logicrpc.Session,
	*protocol.BlockReq) (*protocol.BlockResp, error) {
	return nil, errNotYet
}
