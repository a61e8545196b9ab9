package logic

import (
	"context"
	"strconv"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// kickMessage is the text a replaced connection's CLOSE frame carries.
const kickMessage = "signed in on another connection"

// kick asks task, through a KickEvent, to close the connection a newer login
// of the same device replaced. It is best effort and never fails the login:
// the old connection's route is gone already, so it receives no pushes, and
// at worst it stays open until its client leaves or its heartbeat lapses.
func (s *Service) kick(ctx context.Context, old *route.Route) {
	// A connection is kicked once however often the login is retried.
	msgID := "kick-" + old.Gateway + "-" + strconv.FormatInt(old.ConnID, 10)
	if s.publishKick(ctx, *old, protocol.CloseReason_KICKED, kickMessage, msgID) != nil {
		return
	}
	s.log.Debug().Int64("user", old.UserID).Str("device", old.DeviceID).
		Str("gateway", old.Gateway).Int64("conn", old.ConnID).Msg("replaced connection kicked")
}
