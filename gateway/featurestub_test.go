package gateway

import (
	"context"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// featureStub answers the feature methods the gateway tests do not exercise
// with UNSUPPORTED; stubLogic embeds it.
type featureStub struct{}

func unsupportedErr() error {
	return &common.BizError{Code: common.ErrorCode_UNSUPPORTED, Message: "not in the stub"}
}

func (featureStub) CreateGroup(context.Context, *logicrpc.Session, *protocol.CreateGroupReq) (*protocol.GroupChangeResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) ManageGroup(context.Context, *logicrpc.Session, *protocol.ManageGroupReq) (*protocol.GroupChangeResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) GetGroup(context.Context, *logicrpc.Session, *protocol.GetGroupReq) (*protocol.GroupInfo, error) {
	return nil, unsupportedErr()
}

func (featureStub) Recall(context.Context, *logicrpc.Session, *protocol.RecallReq) (*protocol.SendResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) Edit(context.Context, *logicrpc.Session, *protocol.EditReq) (*protocol.SendResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) Typing(context.Context, *logicrpc.Session, *protocol.TypingReq) (*protocol.TypingResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) ReadCounts(context.Context, *logicrpc.Session, *protocol.ReadCountsReq) (*protocol.ReadCountsResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) GetPresence(context.Context, *logicrpc.Session, *protocol.GetPresenceReq) (*protocol.GetPresenceResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) WatchPresence(context.Context, *logicrpc.Session, *protocol.WatchPresenceReq) (*protocol.GetPresenceResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) SetPushToken(context.Context, *logicrpc.Session, *protocol.SetPushTokenReq) (*protocol.SetPushTokenResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) MuteConv(context.Context, *logicrpc.Session, *protocol.MuteConvReq) (*protocol.MuteConvResp, error) {
	return nil, unsupportedErr()
}

func (featureStub) SetDND(context.Context, *logicrpc.Session, *protocol.SetDNDReq) (*protocol.UserSettings, error) {
	return nil, unsupportedErr()
}

func (featureStub) GetSettings(context.Context, *logicrpc.Session, *protocol.GetSettingsReq) (*protocol.UserSettings, error) {
	return nil, unsupportedErr()
}

func (featureStub) OfflineTargets(context.Context, *logicrpc.OfflineTargetsReq) (*logicrpc.OfflineTargetsResp, error) {
	return nil, unsupportedErr()
}
