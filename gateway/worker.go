package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/rpcerr"
	"github.com/resonance-im/resonance/internal/tokengen"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// maxFailedLogins is how many bad LOGINs a connection gets before
// LOGIN_FAILED closes it.
const maxFailedLogins = 3

// defaultDevice names the device of a LOGIN that gives none.
const defaultDevice = "default"

// enqueue appends r to c's FIFO and makes sure a worker drains it. It runs on
// the loop and never waits: a full queue or pool returns ErrBusy.
func (g *Gateway) enqueue(c *conn, r request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrConnClosed
	}
	if len(c.queue) >= g.cfg.MaxPending {
		return fmt.Errorf("%w: conn %d has %d requests queued", ErrBusy, c.id, len(c.queue))
	}
	c.queue = append(c.queue, r)
	if c.running {
		return nil
	}
	if err := g.pool.Submit(func() { g.drain(c) }); err != nil {
		// Nothing else was queued (no worker was running), so dropping the
		// queue drops exactly r.
		c.queue = nil
		return fmt.Errorf("%w: conn %d: %v", ErrBusy, c.id, err)
	}
	c.running = true
	return nil
}

// drain handles c's requests one at a time, in the order they arrived, until
// the queue is empty or the connection closed. A run of SENDs counts as one:
// its replies are all queued before the next request is handled.
func (g *Gateway) drain(c *conn) {
	for {
		r, sends, late, ok := c.next()
		if !ok {
			g.applyLate(c, c.session.Load(), late)
			return
		}
		if sends != nil {
			g.handleSends(c, sends)
			continue
		}
		g.handle(c, r)
	}
}

// next pops the oldest request. When it is a SEND of a logged-in connection,
// it pops the SENDs queued right behind it too, up to logicrpc.MaxSendBatch in
// all, and returns them all, r first, in sends (nil for any other request):
// a client that pipelines its sends, or flushes its outbox after a
// reconnect, then pays one round trip to logic per run instead of one per
// message. When there is no request it clears running under the same lock,
// so enqueue never leaves a request without a worker. Once c has closed it
// returns, in late, the positions onClose left for this worker to hand to
// applyLate (keepLate).
func (c *conn) next() (r request, sends, late []request, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.queue) == 0 {
		if c.closed {
			late = c.queue
		}
		c.running = false
		c.queue = nil // hold no buffer while idle
		return request{}, nil, late, false
	}
	n := c.sendRun()
	r = c.queue[0]
	if n > 0 {
		sends = make([]request, n)
		copy(sends, c.queue[:n])
	}
	n = max(n, 1)
	clear(c.queue[:n])
	c.queue = c.queue[n:]
	return r, sends, nil, true
}

// sendRun is how many requests at the head of c's queue go to logic as one
// run of SENDs: the SENDs there, once logged in (the session is never unset
// after), else 0. The caller holds c.mu on a non-empty queue.
func (c *conn) sendRun() int {
	if c.queue[0].op != protocol.Op_SEND || c.session.Load() == nil {
		return 0
	}
	n := 1
	for n < len(c.queue) && n < logicrpc.MaxSendBatch && c.queue[n].op == protocol.Op_SEND {
		n++
	}
	return n
}

// handle runs one request against logic and writes its reply.
func (g *Gateway) handle(c *conn, r request) {
	ctx, cancel := context.WithTimeout(g.rpcCtx, g.cfg.RequestTimeout)
	defer cancel()
	if r.op == protocol.Op_LOGIN {
		g.login(ctx, c, r)
		return
	}
	resp, err := g.call(ctx, c, r)
	if err != nil {
		g.replyError(c, r, err)
		return
	}
	frame := codec.EncodeFrame(codec.ReplyOp(r.op), 0, r.id, resp)
	_ = c.write(frame, g.afterReply(c, resp))
}

// handleSends runs sends, a run of SENDs from next, through the gateway's
// SendRuns batcher (one RequestTimeout for all) and writes each reply in order,
// as handle would have written it. A call that fails whole (a timeout, logic
// down, the call refused) answers every SEND with that error.
func (g *Gateway) handleSends(c *conn, sends []request) {
	if g.sendsOld.active() {
		for _, r := range sends {
			g.handle(c, r)
		}
		return
	}
	ctx, cancel := context.WithTimeout(g.rpcCtx, g.cfg.RequestTimeout)
	defer cancel()
	reqs := make([]*protocol.SendReq, len(sends))
	for i, r := range sends {
		reqs[i] = r.body.(*protocol.SendReq)
	}
	out, err := g.sends.Do(ctx, &logicrpc.SendRun{Session: c.session.Load(), Reqs: reqs})
	if rpcerr.UnknownMethod(err) {
		// A logic older than SendRuns (a rolling upgrade): the SENDs go one
		// call each, and so do the next minute's.
		g.sendsOld.refused(g.log)
		for _, r := range sends {
			g.handle(c, r)
		}
		return
	}
	if err != nil {
		g.replyErrors(c, sends, err)
		return
	}
	for i, r := range sends {
		switch o := out[i]; {
		case o.GetErr() != nil:
			g.replyError(c, r, o.Err)
		case o.GetResp() != nil:
			frame := codec.EncodeFrame(protocol.Op_SEND_ACK, 0, r.id, o.Resp)
			_ = c.write(frame, g.afterReply(c, o.Resp))
		default:
			g.replyError(c, r, fmt.Errorf("%w: send %d of %d of conn %d", ErrNoReply, i,
				len(sends), c.id))
		}
	}
}

// call dispatches a request other than LOGIN to logic. Identity always comes
// from the connection's session, never from the payload.
func (g *Gateway) call(ctx context.Context, c *conn, r request) (codec.Body, error) {
	if r.op == protocol.Op_REGISTER {
		info := &logicrpc.ConnInfo{Gateway: g.pushAddr, ConnId: c.id, RemoteAddr: r.remote}
		return g.logic.Register(ctx, r.body.(*protocol.RegisterReq), info)
	}
	sess := c.session.Load()
	if sess == nil {
		return nil, bizError(common.ErrorCode_UNAUTHENTICATED, "log in first")
	}
	switch req := r.body.(type) {
	case *protocol.SendReq:
		return g.logic.Send(ctx, sess, req)
	case *protocol.SyncReq:
		return g.logic.Sync(ctx, sess, req)
	case *protocol.GetUserReq:
		return g.logic.GetUser(ctx, sess, req)
	case *protocol.DeliveredReq:
		return g.logic.Delivered(ctx, sess, req)
	case *protocol.SyncConvsReq:
		return g.logic.SyncConvs(ctx, sess, req)
	case *protocol.MarkReadReq:
		return g.logic.MarkRead(ctx, sess, req)
	case *protocol.ChangePasswordReq:
		return g.changePassword(ctx, c, sess, req)
	}
	return g.callAccount(ctx, sess, r)
}

// callAccount is call for the account and session requests. Logic closes
// the other connections a LOGOUT, CHANGE_PASSWORD, SIGN_OUT_DEVICE or
// DELETE_ACCOUNT revokes through Kick; afterReply closes this one after a
// LOGOUT or DELETE_ACCOUNT.
func (g *Gateway) callAccount(ctx context.Context, sess *logicrpc.Session,
	r request) (codec.Body, error) {
	switch req := r.body.(type) {
	case *protocol.LogoutReq:
		return g.logic.Logout(ctx, sess, req)
	case *protocol.RefreshReq:
		return g.logic.Refresh(ctx, sess, req)
	case *protocol.UpdateProfileReq:
		return g.logic.UpdateProfile(ctx, sess, req)
	case *protocol.ListDevicesReq:
		return g.logic.ListDevices(ctx, sess, req)
	case *protocol.SignOutDeviceReq:
		return g.logic.SignOutDevice(ctx, sess, req)
	case *protocol.SearchUsersReq:
		return g.logic.SearchUsers(ctx, sess, req)
	case *protocol.BlockReq:
		return g.logic.Block(ctx, sess, req)
	case *protocol.DeleteAccountReq:
		return g.logic.DeleteAccount(ctx, sess, req)
	}
	return g.callFeature(ctx, sess, r)
}

// callFeature is call for groups, message changes, presence and
// notification settings.
func (g *Gateway) callFeature(ctx context.Context, sess *logicrpc.Session,
	r request) (codec.Body, error) {
	switch req := r.body.(type) {
	case *protocol.CreateGroupReq:
		return g.logic.CreateGroup(ctx, sess, req)
	case *protocol.ManageGroupReq:
		return g.logic.ManageGroup(ctx, sess, req)
	case *protocol.GetGroupReq:
		return g.logic.GetGroup(ctx, sess, req)
	case *protocol.RecallReq:
		return g.logic.Recall(ctx, sess, req)
	case *protocol.EditReq:
		return g.logic.Edit(ctx, sess, req)
	case *protocol.TypingReq:
		return g.logic.Typing(ctx, sess, req)
	case *protocol.ReadCountsReq:
		return g.logic.ReadCounts(ctx, sess, req)
	case *protocol.GetPresenceReq:
		return g.logic.GetPresence(ctx, sess, req)
	case *protocol.WatchPresenceReq:
		return g.logic.WatchPresence(ctx, sess, req)
	case *protocol.SetPushTokenReq:
		return g.logic.SetPushToken(ctx, sess, req)
	case *protocol.MuteConvReq:
		return g.logic.MuteConv(ctx, sess, req)
	case *protocol.SetDNDReq:
		return g.logic.SetDND(ctx, sess, req)
	case *protocol.GetSettingsReq:
		return g.logic.GetSettings(ctx, sess, req)
	case *protocol.ClearConvReq:
		return g.logic.ClearConv(ctx, sess, req)
	case *protocol.ReactReq:
		return g.logic.React(ctx, sess, req)
	case *protocol.PinReq:
		return g.logic.Pin(ctx, sess, req)
	case *protocol.UploadReq:
		return g.logic.Upload(ctx, sess, req)
	case *protocol.DownloadReq:
		return g.logic.Download(ctx, sess, req)
	case *protocol.SearchMessagesReq:
		return g.logic.SearchMessages(ctx, sess, req)
	}
	return nil, bizError(common.ErrorCode_UNSUPPORTED, "unsupported request")
}

// login authenticates c. On success the connection joins the registry and
// its LOGIN_ACK is queued under c.mu, so no push can overtake the ack.
func (g *Gateway) login(ctx context.Context, c *conn, r request) {
	if c.session.Load() != nil {
		g.replyError(c, r, bizError(common.ErrorCode_ALREADY_LOGGED_IN, "already logged in"))
		return
	}
	req := r.body.(*protocol.LoginReq)
	info := &logicrpc.ConnInfo{Gateway: g.pushAddr, ConnId: c.id, RemoteAddr: r.remote}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	flight, open := g.startLogin(c, cancel)
	if !open {
		return // closed meanwhile: the LOGIN is dropped, as a queued request is
	}
	resp, err := g.callLogin(ctx, req, info)
	if err == nil && resp == nil {
		err = fmt.Errorf("%w: login of conn %d", ErrNoReply, c.id)
	}
	if err != nil {
		// Kicks held for c are moot: it is not logged in as anyone.
		g.endLogin(c, flight)
		if errors.Is(err, context.Canceled) {
			// onClose cancelled the LOGIN while it waited in the batcher
			// (a call once out runs detached): logic never saw it and no
			// one is left to answer, so nothing failed.
			g.log.Debug().Int64("conn", c.id).Msg("login dropped: connection closed")
			return
		}
		g.loginFailed(c, r, err)
		return
	}
	sess := &logicrpc.Session{
		UserId: resp.UserId, DeviceId: loginDevice(req, resp), Gateway: g.pushAddr, ConnId: c.id,
		RemoteAddr: r.remote, TokenGen: tokengen.Generation(resp.Token),
	}
	resp.HeartbeatIntervalMs = int32(g.cfg.HeartbeatInterval.Milliseconds())
	// Before the session is visible, so the loop never sees a session
	// without its expiry.
	g.setTokenExpiry(c, resp.TokenExpiresMs)
	ack := codec.EncodeFrame(protocol.Op_LOGIN_ACK, 0, r.id, resp)
	g.completeLogin(c, sess, ack, flight)
}

// changePassword changes the password of sess's user. Logic revokes every
// token of the user, this device's included, and issues this device new ones
// of its new generation; c goes on as a session of that generation, else
// logic would refuse its next call as signed out. Only c's worker calls
// logic with c's session, and it is the caller, so no call of c is out with
// the old one.
func (g *Gateway) changePassword(ctx context.Context, c *conn, sess *logicrpc.Session,
	req *protocol.ChangePasswordReq) (codec.Body, error) {
	resp, err := g.logic.ChangePassword(ctx, sess, req)
	if err != nil || resp == nil {
		return resp, err
	}
	renewed := *sess
	renewed.TokenGen = tokengen.Generation(resp.Token)
	c.session.Store(&renewed)
	return resp, nil
}

// loginDevice returns the device a successful LOGIN made c: the one logic
// resolved, which for a token login is the token's device whatever the
// request named.
//
// TODO: a logic older than LoginResp.device_id (a rolling upgrade) leaves it
// empty; the device the request named, or the default, stands in, so a token
// login without device_id then logs out and refreshes the wrong device until
// logic is upgraded.
func loginDevice(req *protocol.LoginReq, resp *protocol.LoginResp) string {
	switch {
	case resp.DeviceId != "":
		return resp.DeviceId
	case req.DeviceId != "":
		return req.DeviceId
	}
	return defaultDevice
}

// completeLogin marks c logged in as sess, registers it and queues its LOGIN_ACK, all
// under c.mu: onClose then either sees the session (and removes the route)
// or completeLogin sees the close (and removes it itself), never neither.
// Then it ends flight, c's LOGIN in flight, and applies the kicks it held,
// so that a client kicked while logging in reads its LOGIN_ACK, then CLOSE.
//
// When c closed first, the positions it had queued behind the LOGIN
// (keepLate) are sent as sess: logic logged the client in, so they are
// that user's as much as those of a connection that saw its LOGIN_ACK.
func (g *Gateway) completeLogin(c *conn, sess *logicrpc.Session, ack []byte,
	flight *loginFlight) {
	c.mu.Lock()
	if c.closed {
		late := c.queue
		c.queue = nil // next hands the worker nothing more
		c.mu.Unlock()
		g.endLogin(c, flight)
		// Logic recorded a route for a connection that is already gone.
		g.disc.disconnect(g, []*logicrpc.Session{sess})
		g.applyLate(c, sess, late)
		return
	}
	c.session.Store(sess)
	g.conns.add(c)
	_ = c.writeLocked(ack, nil, g.writeDone)
	c.mu.Unlock()
	g.log.Debug().Int64("conn", c.id).Int64("user", sess.UserId).Msg("logged in")
	// Only now, after conns.add: a Kick that finds the flight ended must
	// find c registered (kickTarget).
	g.applyHeldKicks(c, sess, g.endLogin(c, flight))
}

// loginFailed answers a failed LOGIN; the third client-caused failure closes
// the connection with LOGIN_FAILED after the error reply. A token of a
// device signed out since it was issued (logic marks its TOKEN_INVALID,
// BizError.signed_out) closes it at once with SIGNED_OUT: the client would
// otherwise go on to a password it keeps and sign the device back in. An
// ACCOUNT_SUSPENDED closes it with ACCOUNT_SUSPENDED, which tells even a
// client that does not know the code to stay away.
func (g *Gateway) loginFailed(c *conn, r request, err error) {
	reason, detail := protocol.CloseReason_LOGIN_FAILED, "failed logins"
	biz, _ := errors.AsType[*common.BizError](err)
	switch {
	case biz != nil && biz.Code == common.ErrorCode_ACCOUNT_SUSPENDED:
		reason, detail = protocol.CloseReason_ACCOUNT_SUSPENDED, "account suspended"
	case !countsAsFailedLogin(err):
		g.replyError(c, r, err)
		return
	default:
		c.failedLogins++
		if biz.GetSignedOut() {
			reason, detail = protocol.CloseReason_SIGNED_OUT, "signed out"
		} else if c.failedLogins < maxFailedLogins {
			g.replyError(c, r, err)
			return
		}
	}
	resp, _ := errorResp(err)
	frame := codec.EncodeFrame(protocol.Op_LOGIN_ACK, codec.FlagError, r.id, resp)
	_ = c.write(frame, func(gnet.Conn, error) error {
		g.closeOnLoop(c, reason, detail)
		return nil
	})
}

// replyError answers r with an ErrorResp; errors that are not the client's
// are logged (sampled) with the ids, never sent. A TOKEN_INVALID closes c
// with SIGNED_OUT after it (afterError).
func (g *Gateway) replyError(c *conn, r request, err error) {
	resp, internal := errorResp(err)
	if internal {
		g.logCallFailed(c, r.op, err).Msg("logic call failed")
	}
	frame := codec.EncodeFrame(codec.ReplyOp(r.op), codec.FlagError, r.id, resp)
	cb := g.afterError(c, r.op, resp, markedSignedOut(err))
	if r.op == protocol.Op_LOGIN && c.session.Load() == nil {
		cb = g.loginRefused(c) // afterError closes nothing for a LOGIN
	}
	_ = c.write(frame, cb)
}

// markedSignedOut reports whether logic marked err, a TOKEN_INVALID, as
// refusing a signed-out device (BizError.signed_out).
func markedSignedOut(err error) bool {
	biz, ok := errors.AsType[*common.BizError](err)
	return ok && biz.GetSignedOut() // the getter reads through a nil biz
}

// replyErrors is replyError for every request of rs, which failed together
// in one call to logic: it is logged once.
func (g *Gateway) replyErrors(c *conn, rs []request, err error) {
	resp, internal := errorResp(err)
	if internal {
		g.logCallFailed(c, rs[0].op, err).Int("requests", len(rs)).Msg("logic call failed")
	}
	for _, r := range rs {
		frame := codec.EncodeFrame(codec.ReplyOp(r.op), codec.FlagError, r.id, resp)
		_ = c.write(frame, g.afterError(c, r.op, resp, markedSignedOut(err)))
	}
}

// logCallFailed starts the sampled warning of a failed call of op on c.
func (g *Gateway) logCallFailed(c *conn, op protocol.Op, err error) *zerolog.Event {
	ev := g.warn.Warn().Err(err).Int64("conn", c.id).Stringer("op", op)
	if s := c.session.Load(); s != nil {
		ev = ev.Int64("user", s.UserId)
	}
	return ev
}

// write queues frame to the client unless the connection has closed. frame
// must not change afterwards. cb runs on the loop after the write.
func (c *conn) write(frame []byte, cb gnet.AsyncCallback) error {
	return c.writeShared(frame, nil, cb)
}

// writeShared is write with wsHeader, the WebSocket header of frame, built
// by the caller when it sends the same frame to many connections; nil builds
// it here when c speaks WebSocket. Neither is copied: header and frame go
// out with one writev.
func (c *conn) writeShared(frame, wsHeader []byte, cb gnet.AsyncCallback) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%w: conn %d", ErrConnClosed, c.id)
	}
	return c.writeLocked(frame, wsHeader, cb)
}

// writeLocked is writeShared for a caller holding c.mu on an open c.
func (c *conn) writeLocked(frame, wsHeader []byte, cb gnet.AsyncCallback) error {
	if len(frame) > 3 {
		c.loop.framesOut[frame[3]].Add(1) // byte 3 of the header is the opcode
	}
	if !c.ws {
		return c.gc.AsyncWrite(frame, cb)
	}
	if wsHeader == nil {
		wsHeader = appendWSHeader(make([]byte, 0, 10), ws.OpBinary, len(frame))
	}
	// A fresh slice per connection: gnet's writev reslices its elements
	// after a partial write.
	return c.gc.AsyncWritev([][]byte{wsHeader, frame}, cb)
}

// writeBatch writes b, n PUSH frames already framed for the connection's
// transport, in one asynchronous write.
func (c *conn) writeBatch(b []byte, n int, cb gnet.AsyncCallback) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%w: conn %d", ErrConnClosed, c.id)
	}
	c.loop.framesOut[byte(protocol.Op_PUSH)].Add(uint64(n))
	return c.gc.AsyncWrite(b, cb)
}

// afterWrite runs on the loop after every asynchronous write and closes a
// client whose unsent output passed the high-water mark: the outbound buffer
// has no limit of its own.
func (g *Gateway) afterWrite(gc gnet.Conn, err error) error {
	if err != nil {
		return nil
	}
	if gc.OutboundBuffered() <= g.cfg.OutboundHighWater {
		return nil
	}
	if c, ok := gc.Context().(*conn); ok {
		g.closeOnLoop(c, protocol.CloseReason_SLOW_CONSUMER,
			fmt.Sprintf("%d bytes pending", gc.OutboundBuffered()))
	}
	return nil
}
