package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// renewBatch is the number of sessions per logic.Renew call.
const renewBatch = 500

// pushService implements pushrpc.Push for one gateway.
type pushService struct {
	g *Gateway
}

// Push writes req.Frame to each target that is connected here as the named
// user. The frame is shared by all targets, never copied; WebSocket targets
// share one header too. CLOSE frames are refused: Kick closes connections.
func (p *pushService) Push(_ context.Context, req *pushrpc.PushReq) (*pushrpc.PushResp, error) {
	g := p.g
	h, err := checkPushFrame(req.Frame)
	if err != nil {
		return nil, err
	}
	wsHeader := appendWSHeader(nil, ws.OpBinary, len(req.Frame))
	resp := &pushrpc.PushResp{}
	for _, t := range req.Targets {
		c := g.target(t)
		if c == nil || c.writeShared(req.Frame, wsHeader, g.writeDone) != nil {
			resp.MissingConns = append(resp.MissingConns, t.ConnId)
			continue
		}
		resp.Delivered++
	}
	g.log.Debug().Int("targets", len(req.Targets)).Int32("delivered", resp.Delivered).
		Stringer("op", h.Op).Msg("push")
	return resp, nil
}

// Kick closes each target connected here as the named user: it gets a
// CLOSE frame with req.Reason and req.Message (a default text when empty),
// then the socket closes. Delivered counts the targets found open.
func (p *pushService) Kick(_ context.Context, req *pushrpc.KickReq) (*pushrpc.PushResp, error) {
	g := p.g
	cause := closeCause{reason: req.Reason, message: req.Message, detail: "kicked by logic"}
	resp := &pushrpc.PushResp{}
	for _, t := range req.Targets {
		c := g.target(t)
		if c == nil || g.kick(c, cause) != nil {
			resp.MissingConns = append(resp.MissingConns, t.ConnId)
			continue
		}
		resp.Delivered++
	}
	g.log.Debug().Int("targets", len(req.Targets)).Int32("kicked", resp.Delivered).
		Stringer("reason", req.Reason).Msg("kick")
	return resp, nil
}

// target returns the connection of t if it is open here as t's user.
func (g *Gateway) target(t *pushrpc.Target) *conn {
	c := g.conns.get(t.ConnId)
	if c == nil || c.session.Load().GetUserId() != t.UserId {
		return nil
	}
	return c
}

// kick queues the close of c on its loop, where all closes happen.
func (g *Gateway) kick(c *conn, cause closeCause) error {
	task := gnet.RunnableFunc(func(context.Context) error {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if !closed && g.beginCloseCause(c, cause) {
			return c.loop.el.Close(c.gc)
		}
		return nil
	})
	if err := c.loop.el.Execute(context.Background(), task); err != nil {
		return fmt.Errorf("kick conn %d: %w", c.id, err)
	}
	return nil
}

// checkPushFrame makes sure frame is exactly one valid server frame, so a
// bad caller cannot desynchronise every client it pushes to. A CLOSE frame
// is refused: written alone it would leave the connection open.
func checkPushFrame(frame []byte) (codec.Header, error) {
	h, _, n, err := codec.Decoder{MaxBody: len(frame)}.Decode(frame)
	switch {
	case err != nil:
		return h, fmt.Errorf("%w: %v", ErrBadPushFrame, err)
	case n == 0 || n != len(frame):
		return h, fmt.Errorf("%w: %d bytes, frame length %d", ErrBadPushFrame, len(frame), n)
	case codec.IsRequest(h.Op):
		return h, fmt.Errorf("%w: request opcode %v", ErrBadPushFrame, h.Op)
	case h.Op == protocol.Op_CLOSE:
		return h, fmt.Errorf("%w: CLOSE must go through Kick", ErrBadPushFrame)
	}
	return h, nil
}

// renewLoop renews the routes of all logged-in connections every
// RenewInterval until ctx is done.
func (g *Gateway) renewLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.RenewInterval)
	defer t.Stop()
	var sessions []*logicrpc.Session
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sessions = g.conns.appendSessions(sessions[:0])
		g.renew(ctx, sessions)
		clear(sessions) // let closed sessions be collected
	}
}

// renew sends sessions to logic in batches; a failed batch is logged and the
// rest still go, since each batch stands alone.
func (g *Gateway) renew(ctx context.Context, sessions []*logicrpc.Session) {
	for start := 0; start < len(sessions); start += renewBatch {
		batch := sessions[start:min(start+renewBatch, len(sessions))]
		cctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
		err := g.logic.Renew(cctx, batch)
		cancel()
		if err != nil {
			g.warn.Warn().Err(err).Int("sessions", len(batch)).Msg("route renewal failed")
		}
	}
}
