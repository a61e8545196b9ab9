package gateway

import (
	"context"

	"github.com/resonance-im/resonance/internal/coalesce"
	"github.com/resonance-im/resonance/internal/rpcerr"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// loginCallsInFlight is how many LoginBatch calls the gateway has out to
// logic before the token LOGINs that come later wait to go out together. A
// mass reconnect (a network blip, a gateway restart) brings thousands of
// token logins at once; as one Login call each, Kitex on both sides was
// about 60% of the server's CPU in such a burst.
const loginCallsInFlight = 4

// newLoginBatches returns the batcher that carries the token LOGINs of all
// connections to logic as LoginBatch calls (see package coalesce).
func (g *Gateway) newLoginBatches() *coalesce.Batcher[*logicrpc.LoginAttempt, *logicrpc.LoginOutcome] {
	return coalesce.New(g.rpcCtx, coalesce.Config{InFlight: loginCallsInFlight,
		MaxUnits: int(logicrpc.MaxLoginBatch), Timeout: g.cfg.RequestTimeout}, nil,
		func(ctx context.Context, attempts []*logicrpc.LoginAttempt) ([]*logicrpc.LoginOutcome,
			error) {
			return g.logic.LoginBatch(ctx, attempts)
		})
}

// callLogin logs req in through logic. A token login goes through the
// LoginBatch batcher with those of other connections; a password login goes
// alone, as its password hash would hold a batch's token logins back. Against
// a logic without LoginBatch (an older release) every login is its own Login
// call for olderLogicRecheck, then LoginBatch is tried again.
func (g *Gateway) callLogin(ctx context.Context, req *protocol.LoginReq,
	info *logicrpc.ConnInfo) (*protocol.LoginResp, error) {
	if req.Token == "" || g.loginsOld.active() {
		return g.logic.Login(ctx, req, info)
	}
	o, err := g.logins.Do(ctx, &logicrpc.LoginAttempt{Req: req, Conn: info})
	if rpcerr.UnknownMethod(err) {
		g.loginsOld.refused(g.log)
		return g.logic.Login(ctx, req, info)
	}
	switch {
	case err != nil:
		return nil, err
	case o.GetErr() != nil:
		return nil, o.Err
	}
	return o.GetResp(), nil
}
