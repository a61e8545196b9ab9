package gateway

import (
	"context"
	"fmt"
	"time"

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
// user. The frame is shared by all targets, never copied. A CLOSE frame
// (for example KICKED after a newer login of the same device) also closes
// the connection once written, as the protocol says a CLOSE does.
func (p *pushService) Push(_ context.Context, req *pushrpc.PushReq) (*pushrpc.PushResp, error) {
	g := p.g
	h, err := checkPushFrame(req.Frame)
	if err != nil {
		return nil, err
	}
	cb := g.writeDone
	if h.Op == protocol.Op_CLOSE {
		cb = g.closeAfterPush(req.Frame)
	}
	resp := &pushrpc.PushResp{}
	for _, t := range req.Targets {
		c := g.conns.get(t.ConnId)
		if c == nil || c.session.Load().GetUserId() != t.UserId || c.write(req.Frame, cb) != nil {
			resp.MissingConns = append(resp.MissingConns, t.ConnId)
			continue
		}
		resp.Delivered++
	}
	g.log.Debug().Int("targets", len(req.Targets)).Int32("delivered", resp.Delivered).
		Stringer("op", h.Op).Msg("push")
	return resp, nil
}

// checkPushFrame makes sure frame is exactly one valid server frame, so a
// bad caller cannot desynchronise every client it pushes to.
func checkPushFrame(frame []byte) (codec.Header, error) {
	h, _, n, err := codec.Decoder{MaxBody: len(frame)}.Decode(frame)
	switch {
	case err != nil:
		return h, fmt.Errorf("%w: %v", ErrBadPushFrame, err)
	case n == 0 || n != len(frame):
		return h, fmt.Errorf("%w: %d bytes, frame length %d", ErrBadPushFrame, len(frame), n)
	case codec.IsRequest(h.Op):
		return h, fmt.Errorf("%w: request opcode %v", ErrBadPushFrame, h.Op)
	}
	return h, nil
}

// closeAfterPush returns the write callback of a pushed CLOSE frame: it
// closes the connection on its loop without writing a second CLOSE.
func (g *Gateway) closeAfterPush(frame []byte) gnet.AsyncCallback {
	var msg protocol.CloseMsg
	_ = codec.ReadBody(frame[codec.HeaderSize:], &msg)
	return func(gc gnet.Conn, err error) error {
		c, ok := gc.Context().(*conn)
		if err != nil || !ok || c.closing {
			return nil
		}
		c.closing = true
		g.logClose(c, msg.Reason, "close pushed by task")
		return c.loop.el.Close(gc)
	}
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

// Kick is being written with the gateway limits (issue 3).
func (p *pushService) Kick(_ context.Context, req *pushrpc.KickReq) (*pushrpc.PushResp, error) {
	return nil, ErrBadPushFrame
}
