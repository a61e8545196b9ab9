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

func (s *Service) CreateGroup(context.Context, *logicrpc.Session, *protocol.CreateGroupReq) (*protocol.GroupChangeResp, error) {
	return nil, s.unsupported("create_group")
}

func (s *Service) ManageGroup(context.Context, *logicrpc.Session, *protocol.ManageGroupReq) (*protocol.GroupChangeResp, error) {
	return nil, s.unsupported("manage_group")
}

func (s *Service) GetGroup(context.Context, *logicrpc.Session, *protocol.GetGroupReq) (*protocol.GroupInfo, error) {
	return nil, s.unsupported("get_group")
}

func (s *Service) Recall(context.Context, *logicrpc.Session, *protocol.RecallReq) (*protocol.SendResp, error) {
	return nil, s.unsupported("recall")
}

func (s *Service) Edit(context.Context, *logicrpc.Session, *protocol.EditReq) (*protocol.SendResp, error) {
	return nil, s.unsupported("edit")
}

func (s *Service) Typing(context.Context, *logicrpc.Session, *protocol.TypingReq) (*protocol.TypingResp, error) {
	return nil, s.unsupported("typing")
}

func (s *Service) ReadCounts(context.Context, *logicrpc.Session, *protocol.ReadCountsReq) (*protocol.ReadCountsResp, error) {
	return nil, s.unsupported("read_counts")
}

func (s *Service) GetPresence(context.Context, *logicrpc.Session, *protocol.GetPresenceReq) (*protocol.GetPresenceResp, error) {
	return nil, s.unsupported("get_presence")
}

func (s *Service) WatchPresence(context.Context, *logicrpc.Session, *protocol.WatchPresenceReq) (*protocol.GetPresenceResp, error) {
	return nil, s.unsupported("watch_presence")
}
