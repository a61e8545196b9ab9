package logic

// The methods below are in the IDL and not yet served. Each answers
// UNSUPPORTED until its feature lands and its stub is removed from here.

import (
	"context"
	"fmt"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func (s *Service) unsupported(method string) error {
	return s.fail(method, fmt.Errorf("%w: %s is not served yet", ErrUnsupported, method), nil)
}

func (s *Service) SetPushToken(context.Context, *logicrpc.Session, *protocol.SetPushTokenReq) (*protocol.SetPushTokenResp, error) {
	return nil, s.unsupported("set_push_token")
}

func (s *Service) MuteConv(context.Context, *logicrpc.Session, *protocol.MuteConvReq) (*protocol.MuteConvResp, error) {
	return nil, s.unsupported("mute_conv")
}

func (s *Service) SetDND(context.Context, *logicrpc.Session, *protocol.SetDNDReq) (*protocol.UserSettings, error) {
	return nil, s.unsupported("set_dnd")
}

func (s *Service) GetSettings(context.Context, *logicrpc.Session, *protocol.GetSettingsReq) (*protocol.UserSettings, error) {
	return nil, s.unsupported("get_settings")
}
