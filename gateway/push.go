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
// user, or the frames of req.Frames (pushFrames). The frame is shared by all
// targets, never copied; WebSocket targets share one header too. CLOSE
// frames are refused: Kick closes connections.
func (p *pushService) Push(_ context.Context, req *pushrpc.PushReq) (*pushrpc.PushResp, error) {
	return p.push(req)
}

// PushBatch handles each of reqs as its own Push call would, one after the
// other in their order, so each target gets the frames of one req before
// those of the next. A req that Push would refuse is answered with its
// error in PushResp.Error and does not stop the others: the reqs come from
// different task workers, and one bad frame must not cost the rest their
// push.
func (p *pushService) PushBatch(_ context.Context,
	reqs []*pushrpc.PushReq) ([]*pushrpc.PushResp, error) {
	resps := make([]*pushrpc.PushResp, len(reqs))
	refused := 0
	for i, req := range reqs {
		var err error
		if req == nil {
			err = fmt.Errorf("%w: req %d missing", ErrBadPushFrame, i)
		} else {
			resps[i], err = p.push(req)
		}
		if err != nil {
			msg := err.Error()
			resps[i] = &pushrpc.PushResp{Error: &msg}
			refused++
		}
	}
	p.g.log.Debug().Int("reqs", len(reqs)).Int("refused", refused).Msg("push batch call")
	return resps, nil
}

// push is the body of one Push call.
func (p *pushService) push(req *pushrpc.PushReq) (*pushrpc.PushResp, error) {
	g := p.g
	if len(req.Frames) > 0 {
		return p.pushFrames(req)
	}
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

// pushFrames writes the frames of req, in order, to each target: one write
// per connection for the whole batch, the bytes shared by every target that
// no frame skips; a target that some frame skips (the device that sent it)
// gets its own copy without that frame.
func (p *pushService) pushFrames(req *pushrpc.PushReq) (*pushrpc.PushResp, error) {
	g := p.g
	var tcp, wsb []byte
	skips := make(map[int64][]int) // conn id -> indexes of the frames it skips
	for i, f := range req.Frames {
		if f == nil {
			return nil, fmt.Errorf("%w: frame %d missing", ErrBadPushFrame, i)
		}
		if _, err := checkPushFrame(f.Frame); err != nil {
			return nil, fmt.Errorf("frame %d: %w", i, err)
		}
		tcp = append(tcp, f.Frame...)
		wsb = appendWSHeader(wsb, ws.OpBinary, len(f.Frame))
		wsb = append(wsb, f.Frame...)
		if f.SkipConn != 0 {
			skips[f.SkipConn] = append(skips[f.SkipConn], i)
		}
	}
	resp := &pushrpc.PushResp{}
	for _, t := range req.Targets {
		c := g.target(t)
		if c == nil {
			resp.MissingConns = append(resp.MissingConns, t.ConnId)
			continue
		}
		b, n := tcp, len(req.Frames)
		if c.ws {
			b = wsb
		}
		if skip := skips[t.ConnId]; skip != nil {
			b, n = batchWithout(req.Frames, skip, c.ws)
		}
		if n > 0 && c.writeBatch(b, n, g.writeDone) != nil {
			resp.MissingConns = append(resp.MissingConns, t.ConnId)
			continue
		}
		resp.Delivered++
	}
	g.log.Debug().Int("targets", len(req.Targets)).Int("frames", len(req.Frames)).
		Int32("delivered", resp.Delivered).Msg("push batch")
	return resp, nil
}

// batchWithout returns the frames of a batch but those at skip (ascending),
// WebSocket-framed when ws, and how many it holds.
func batchWithout(frames []*pushrpc.PushFrame, skip []int, overWS bool) ([]byte, int) {
	var b []byte
	n := 0
	for i, f := range frames {
		if len(skip) > 0 && skip[0] == i {
			skip = skip[1:]
			continue
		}
		if overWS {
			b = appendWSHeader(b, ws.OpBinary, len(f.Frame))
		}
		b = append(b, f.Frame...)
		n++
	}
	return b, n
}

// Kick closes each target connected here as the named user: it gets a
// CLOSE frame with req.Reason and req.Message (a default text when empty),
// then the socket closes. A target whose LOGIN is in flight (logic records
// its route before the gateway registers it) is closed once that login
// completes, if it makes the connection the named user's. Delivered counts
// the targets found open or logging in.
func (p *pushService) Kick(_ context.Context, req *pushrpc.KickReq) (*pushrpc.PushResp, error) {
	g := p.g
	cause := closeCause{reason: req.Reason, message: req.Message, detail: "kicked by logic"}
	resp := &pushrpc.PushResp{}
	for _, t := range req.Targets {
		if !g.kickTarget(t, cause) {
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
