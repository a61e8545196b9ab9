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
// connections to logic as LoginBatch calls (see package coalesce). A lone
// attempt's call gets its LOGIN's context, which the close cancels: the
// call runs detached from it, as callLogin says.
func (g *Gateway) newLoginBatches() *coalesce.Batcher[*logicrpc.LoginAttempt, *logicrpc.LoginOutcome] {
	return coalesce.New(g.rpcCtx, coalesce.Config{InFlight: loginCallsInFlight,
		MaxUnits: int(logicrpc.MaxLoginBatch), Timeout: g.cfg.RequestTimeout}, nil,
		func(ctx context.Context, attempts []*logicrpc.LoginAttempt) ([]*logicrpc.LoginOutcome,
			error) {
			ctx, cancel := detached(ctx)
			defer cancel()
			return g.logic.LoginBatch(ctx, attempts)
		})
}

// callLogin logs req in through logic. A token login goes through the
// LoginBatch batcher with those of other connections; a password login goes
// alone, as its password hash would hold a batch's token logins back. Against
// a logic without LoginBatch (an older release) every login is its own Login
// call for olderLogicRecheck, then LoginBatch is tried again.
//
// ctx's cancel, which the connection's close calls, only takes a token
// login out of the batcher's queue while it waits there. A call that may
// reach logic runs to its end, bounded by ctx's deadline: logic records
// the connection's route as it logs it in, and only the answer says whose
// route completeLogin must remove for a connection that is gone.
func (g *Gateway) callLogin(ctx context.Context, req *protocol.LoginReq,
	info *logicrpc.ConnInfo) (*protocol.LoginResp, error) {
	if req.Token == "" || g.loginsOld.active() {
		return g.loginAlone(ctx, req, info)
	}
	o, err := g.logins.Do(ctx, &logicrpc.LoginAttempt{Req: req, Conn: info})
	if rpcerr.UnknownMethod(err) {
		g.loginsOld.refused(g.log)
		return g.loginAlone(ctx, req, info)
	}
	switch {
	case err != nil:
		return nil, err
	case o.GetErr() != nil:
		return nil, o.Err
	}
	return o.GetResp(), nil
}

// loginAlone logs req in with a Login call of its own, detached from ctx's
// cancel (callLogin).
func (g *Gateway) loginAlone(ctx context.Context, req *protocol.LoginReq,
	info *logicrpc.ConnInfo) (*protocol.LoginResp, error) {
	ctx, cancel := detached(ctx)
	defer cancel()
	return g.logic.Login(ctx, req, info)
}

// detached returns ctx without its cancel, still bounded by its deadline
// if it has one, for a call that must not be cut short once it may have
// reached logic.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	ctx = context.WithoutCancel(ctx)
	if !ok {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}
