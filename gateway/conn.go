package gateway

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// conn is the gateway's state of one client connection. It is kept small and
// holds no buffer while idle: bytes of a partial frame wait in gnet's own
// inbound buffer, and the request queue is dropped whenever it empties.
type conn struct {
	gc   gnet.Conn
	loop *loopState
	id   int64

	// Owned by the event loop goroutine.
	wheelPrev, wheelNext *conn
	wheelSlot            int32
	closing              bool     // a close is under way; ignore further frames
	mode                 connMode // what the first bytes said the client speaks
	// loginsQueued counts the LOGINs queued and not yet refused: while one
	// is, the worker decides auth. It stops at 255, so it may run out
	// before the LOGINs do, erring towards the smaller pre-login limit.
	loginsQueued uint8
	// refusal, when set, is the reason the connection was over a limit at
	// open; it is closed with it as soon as its first bytes say how to
	// frame the CLOSE (a WebSocket client needs its handshake first).
	refusal    closeReason8
	lastActive int64 // gateway clock, ms; the heartbeat "touch"
	// authDeadline is, on the gateway clock in ms, when the connection must
	// have logged in, and once it has, when its access token runs out
	// (math.MaxInt64: never). One field serves both to keep conn small.
	// The loop sets it at open; workers move it at LOGIN and REFRESH; the
	// loop reads it when a wheel slot comes due.
	authDeadline atomic.Int64
	wsr          wsReader

	// session is set once, by the worker, when LOGIN succeeds; read anywhere.
	session atomic.Pointer[logicrpc.Session]

	mu sync.Mutex
	// closed is set by OnClose; after it no write is queued to gc, which also
	// keeps writes off a poller that has been shut down.
	closed bool
	// ws is set, on the loop, once the WebSocket handshake is done; writers
	// off the loop read it under mu to wrap their frames.
	ws           bool
	running      bool  // a worker is draining queue
	failedLogins uint8 // only the draining worker touches it
	// frameBudget belongs to the loop, not to mu: it sits here only to fill
	// the padding after the flags. It is what the client may still send, in
	// thousandths of a frame, refilled from lastActive on each read.
	frameBudget int32
	// queue is the FIFO of decoded requests, at most MaxPending; once
	// closed, the positions keepLate left for the running worker.
	queue []request
}

// closeReason8 is a CloseReason in one byte, to keep conn small; every
// reason fits.
type closeReason8 uint8

// loopState is what the gateway keeps per gnet event loop. Only that loop's
// goroutine touches it, except sweepQueued.
type loopState struct {
	el    gnet.EventLoop
	wheel *wheel
	// out gathers the frames the loop answers itself during one callback, so
	// that they leave in one write.
	out         []byte
	sweepQueued atomic.Bool
	sweep       gnet.Runnable
	// frames counts frames by opcode, per loop so that loops never share a
	// counter's cache line; Stats sums them. Writers off the loop add too,
	// hence atomics.
	framesIn, framesOut [256]atomic.Uint64
	// proxied holds the client addresses trusted proxies named, by
	// connection (see proxy.go); nil until the first.
	proxied map[*conn]string
}

// admit returns the state of el, creating it on first use, and whether a
// new connection may stay: not once the gateway is draining. Checking
// draining under loopsMu means a connection is either refused or on a loop
// that closeAll will visit. A refused one still gets the state, to count
// the CLOSE frame it is sent.
func (g *Gateway) admit(el gnet.EventLoop) (*loopState, bool) {
	g.loopsMu.Lock()
	defer g.loopsMu.Unlock()
	if ls, ok := g.loops[el]; ok {
		return ls, !g.draining
	}
	ls := &loopState{el: el, wheel: newWheel(g.cfg, g.nowMs())}
	ls.sweep = gnet.RunnableFunc(func(_ context.Context) error {
		ls.sweepQueued.Store(false)
		g.sweepLoop(ls)
		return nil
	})
	g.loops[el] = ls
	return ls, !g.draining
}

// onOpen registers a new connection with its loop's wheel. While shutting
// down it answers with CLOSE SERVER_SHUTDOWN instead: gnet cannot stop
// accepting without stopping the engine. (A WebSocket client then reads a
// frame where it expects HTTP; it fails its handshake and reconnects, which
// is what it should do anyway.)
func (g *Gateway) onOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	ls, admitted := g.admit(gc.EventLoop())
	if !admitted {
		reason := protocol.CloseReason_SERVER_SHUTDOWN
		g.countClose(reason)
		ls.framesOut[byte(protocol.Op_CLOSE)].Add(1)
		return closeFrame(reason, closeMessage(reason)), gnet.Close
	}
	now := g.nowMs()
	c := &conn{gc: gc, loop: ls, id: g.nextConnID(), lastActive: now,
		frameBudget: frameBurst(g.cfg.FrameRate)}
	c.authDeadline.Store(now + g.cfg.LoginTimeout.Milliseconds())
	proxy := g.trusted(gc.RemoteAddr())
	c.refusal = closeReason8(g.admitConn(now, gc.RemoteAddr(), proxy))
	c.wheelSlot = notQueued
	c.loop.wheel.add(c, g.deadline(c))
	if proxy {
		c.mode = modeProxy
	}
	gc.SetContext(c)
	return nil, gnet.None
}

// onClose releases a connection. A logged-in one leaves the registry and its
// route is removed through logic.Disconnect, off the loop (disconnect.go).
// A close the server did not begin is counted here, by how it ended.
func (g *Gateway) onClose(gc gnet.Conn, err error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.None
	}
	g.stats.open.Add(-1)
	if !c.closing {
		g.countPeerClose(err)
	}
	c.loop.wheel.remove(c)
	delete(c.loop.proxied, c)
	c.wsr.release()
	c.mu.Lock()
	c.closed = true
	sess := c.session.Load()
	late := c.keepLate()
	c.mu.Unlock()
	if f, ok := g.loginFlights.LoadAndDelete(c.id); ok {
		// A token LOGIN of c still queued in the batcher is never sent:
		// logic would record a route for a connection gone. One already
		// sent runs on; completeLogin removes the route it made.
		f.(*loginFlight).cancel()
	}

	ev := g.log.Debug().Int64("conn", c.id).AnErr("cause", err)
	if sess != nil {
		ev = ev.Int64("user", sess.UserId)
		g.conns.remove(c.id)
		g.disc.submit(g, sess)
	}
	g.applyLate(c, sess, late)
	ev.Msg("connection closed")
	return gnet.None
}

// onTraffic handles every complete frame buffered for gc. Bytes of a partial
// frame stay in gnet's buffer until more arrive. Nothing here blocks:
// requests are decoded (which copies their strings out of gnet's buffer) and
// queued for the workers.
func (g *Gateway) onTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok || c.closing {
		_, _ = gc.Discard(-1)
		return gnet.None
	}
	now := g.nowMs()
	c.refillFrames(now, g.cfg.FrameRate)
	c.lastActive = now
	buf, _ := gc.Peek(-1)
	action, consumed := g.readConn(c, buf)
	// Discard(0) would drop everything, so only discard what was consumed.
	if consumed > 0 {
		_, _ = gc.Discard(consumed)
	}
	g.flushOut(c)
	// A client that sends but never reads fills the outbound buffer with our
	// replies; it is as slow a consumer as one that does not read pushes.
	if action == gnet.None && gc.OutboundBuffered() > g.cfg.OutboundHighWater {
		g.beginClose(c, protocol.CloseReason_SLOW_CONSUMER, "replies pending")
		return gnet.Close
	}
	return action
}

// readConn consumes what it can of buf according to the connection's mode,
// sniffing the mode from the first bytes, and returns the bytes consumed.
func (g *Gateway) readConn(c *conn, buf []byte) (gnet.Action, int) {
	consumed := 0
	if c.mode == modeProxy {
		n, err := g.proxyHeader(c, buf)
		if err != nil {
			g.beginClose(c, protocol.CloseReason_PROTOCOL_ERROR, err.Error())
			return gnet.Close, len(buf)
		}
		if c.mode == modeProxy {
			return gnet.None, 0 // the header is incomplete
		}
		consumed = n
	}
	if c.mode == modeSniff {
		if c.mode = sniff(buf[consumed:]); c.mode == modeSniff {
			return gnet.None, consumed
		}
	}
	if c.mode == modeHandshake {
		action, n := g.handshake(c, buf[consumed:])
		consumed += n
		if action != gnet.None || c.mode == modeHandshake {
			return action, consumed
		}
	}
	if c.refusal != 0 {
		g.beginClose(c, protocol.CloseReason(c.refusal), "over a connection limit at open")
		return gnet.Close, len(buf)
	}
	var action gnet.Action
	n := 0
	if c.mode == modeWS {
		action, n = g.readWS(c, buf[consumed:])
	} else {
		action, n = g.readFrames(c, buf[consumed:])
	}
	return action, consumed + n
}

// readFrames dispatches every complete protocol frame at the front of buf
// (raw TCP mode) and returns the bytes consumed.
func (g *Gateway) readFrames(c *conn, buf []byte) (gnet.Action, int) {
	action, consumed := gnet.None, 0
	for action == gnet.None {
		// Per frame: a LOGIN dispatched here lifts the limit for the next.
		dec := codec.Decoder{MaxBody: g.maxBody(c)}
		h, body, n, err := dec.Decode(buf[consumed:])
		if err != nil {
			g.beginClose(c, frameErrorReason(err), err.Error())
			return gnet.Close, consumed
		}
		if n == 0 {
			break
		}
		consumed += n
		if !c.spendFrame(g.cfg.FrameRate) {
			g.beginClose(c, protocol.CloseReason_RATE_LIMITED, "frame rate")
			return gnet.Close, consumed
		}
		action = g.dispatch(c, h, body)
	}
	return action, consumed
}

// maxBody is the largest frame body c may send now: MaxBody once it has
// logged in or while a LOGIN of it is queued, so that requests may be
// pipelined behind it, and otherwise (a refused LOGIN included)
// maxBodyBeforeLogin, which fits any LOGIN or REGISTER. gnet holds the
// bytes of a partial frame until it is whole; without the smaller limit a
// client that never logs in could make the gateway hold MaxBody (twice
// that, as gnet's buffer grows) until the login deadline, on every
// connection it opens.
func (g *Gateway) maxBody(c *conn) int {
	if c.loginsQueued > 0 || c.session.Load() != nil {
		return g.cfg.MaxBody
	}
	return min(g.cfg.MaxBody, maxBodyBeforeLogin)
}

// onTick queues a wheel sweep on every event loop, so that each sweep runs on
// its loop's goroutine without locks. It returns the wheel's tick.
func (g *Gateway) onTick() (time.Duration, gnet.Action) {
	g.loopsMu.Lock()
	for _, ls := range g.loops {
		// Skip a loop whose previous sweep has not run yet: queueing more
		// would only pile work on a loop that is already behind.
		if ls.sweepQueued.CompareAndSwap(false, true) {
			if err := ls.el.Execute(context.Background(), ls.sweep); err != nil {
				ls.sweepQueued.Store(false)
			}
		}
	}
	g.loopsMu.Unlock()
	return tickFor(g.cfg), gnet.None
}

// dispatch handles one decoded frame on the loop.
func (g *Gateway) dispatch(c *conn, h codec.Header, body []byte) gnet.Action {
	c.loop.framesIn[byte(h.Op)].Add(1)
	// A client that sends server-side opcodes (PUSH, CLOSE, any *_ACK) has
	// lost track of the protocol; answering UNSUPPORTED would let it go on out
	// of step, so it is closed with PROTOCOL_ERROR like a malformed frame.
	if !codec.IsRequest(h.Op) {
		g.beginClose(c, protocol.CloseReason_PROTOCOL_ERROR, "opcode not allowed from a client")
		return gnet.Close
	}
	if h.Op == protocol.Op_HEARTBEAT {
		return g.heartbeat(c, h, body)
	}
	r, err := decodeRequest(h, body)
	// A well-formed frame over a limit leaves the stream in step: it is
	// answered, after the login check as any request is.
	overLimit := errors.Is(err, codec.ErrTooManyElems)
	if err != nil && !overLimit {
		g.beginClose(c, protocol.CloseReason_PROTOCOL_ERROR, err.Error())
		return gnet.Close
	}
	// Fast refusal before login. Once a LOGIN is queued the worker decides,
	// so that a client may pipeline LOGIN and SEND without waiting.
	if c.session.Load() == nil && c.loginsQueued == 0 && needsLogin(h.Op) {
		g.appendError(c, h, bizError(common.ErrorCode_UNAUTHENTICATED, "log in first"))
		return gnet.None
	}
	if overLimit {
		g.appendError(c, h, bizError(common.ErrorCode_TOO_LARGE, "too many elements"))
		return gnet.None
	}
	if h.Op == protocol.Op_LOGIN || h.Op == protocol.Op_REGISTER {
		r.remote = g.remoteOf(c)
	}
	if err := g.enqueue(c, r); err != nil {
		g.appendError(c, h, err)
	} else if h.Op == protocol.Op_LOGIN && c.loginsQueued < math.MaxUint8 {
		c.loginsQueued++
	}
	return gnet.None
}

// loginRefused is the write callback of a refused LOGIN's reply: on the
// loop, it counts the LOGIN out of loginsQueued, so that a connection whose
// every LOGIN failed is held to maxBodyBeforeLogin again, not to MaxBody
// until its login deadline for the price of one bad password.
func (g *Gateway) loginRefused(c *conn) gnet.AsyncCallback {
	return func(gc gnet.Conn, err error) error {
		if c.loginsQueued > 0 {
			c.loginsQueued--
		}
		return g.writeDone(gc, err)
	}
}

// heartbeat answers HEARTBEAT on the loop: it needs no backend.
func (g *Gateway) heartbeat(c *conn, h codec.Header, body []byte) gnet.Action {
	var req protocol.HeartbeatReq
	if err := codec.ReadBody(body, &req); err != nil {
		g.beginClose(c, protocol.CloseReason_PROTOCOL_ERROR, err.Error())
		return gnet.Close
	}
	resp := protocol.HeartbeatResp{ServerTimeMs: time.Now().UnixMilli()}
	c.appendOut(protocol.Op_HEARTBEAT_ACK, 0, h.RequestID, &resp)
	return gnet.None
}

// appendError queues an ErrorResp reply to h in the loop's output.
func (g *Gateway) appendError(c *conn, h codec.Header, err error) {
	resp, _ := errorResp(err)
	c.appendOut(codec.ReplyOp(h.Op), codec.FlagError, h.RequestID, resp)
}

// appendOut encodes a frame into the loop's output for c, inside a binary
// WebSocket message when c speaks WebSocket. It runs on the loop.
func (c *conn) appendOut(op protocol.Op, flags codec.Flags, id uint32, body codec.Body) {
	ls := c.loop
	ls.framesOut[byte(op)].Add(1)
	if c.mode == modeWS {
		ls.out = appendWSHeader(ls.out, ws.OpBinary, codec.FrameLen(body))
	}
	ls.out = codec.AppendFrame(ls.out, op, flags, id, body)
}

// flushOut writes what the loop gathered for c in one write.
func (g *Gateway) flushOut(c *conn) {
	ls := c.loop
	if len(ls.out) == 0 {
		return
	}
	_, _ = c.gc.Write(ls.out)
	// The buffer is reused by the next callback; drop it if a burst grew it
	// far past the usual size, so one burst does not pin memory.
	if cap(ls.out) > 1<<20 {
		ls.out = nil
	} else {
		ls.out = ls.out[:0]
	}
}

// closeCause says why and how a connection is closed.
type closeCause struct {
	reason  protocol.CloseReason
	message string        // for the client; empty means closeMessage(reason)
	wsCode  ws.StatusCode // WebSocket close code; 0 means wsStatusForReason
	detail  string        // for the log only
}

// beginClose writes the CLOSE frame for reason and marks c as closing. It
// runs on the loop; the caller then closes the socket (by returning
// gnet.Close from an event, or through closeOnLoop). It reports false if a
// close had already begun.
func (g *Gateway) beginClose(c *conn, reason protocol.CloseReason, detail string) bool {
	return g.beginCloseCause(c, closeCause{reason: reason, detail: detail})
}

// beginCloseCause is beginClose with the message and WebSocket code chosen.
func (g *Gateway) beginCloseCause(c *conn, cause closeCause) bool {
	if c.closing {
		return false
	}
	c.closing = true
	if cause.message == "" {
		cause.message = closeMessage(cause.reason)
	}
	if cause.wsCode == 0 {
		cause.wsCode = wsStatusForReason(cause.reason)
	}
	frame := closeFrame(cause.reason, cause.message)
	ls := c.loop
	switch c.mode {
	case modeWS:
		ls.out = appendWSHeader(ls.out, ws.OpBinary, len(frame))
		ls.out = append(ls.out, frame...)
		ls.out = appendWSClose(ls.out, cause.wsCode)
		ls.framesOut[byte(protocol.Op_CLOSE)].Add(1)
	case modeHandshake:
		// Mid-handshake the client expects HTTP: a frame would be garbage.
	default:
		ls.out = append(ls.out, frame...)
		ls.framesOut[byte(protocol.Op_CLOSE)].Add(1)
	}
	// Counted before the client can see the close, so a reader of Stats who
	// saw it finds it counted.
	g.countClose(cause.reason)
	// gnet's close flushes pending output before closing the socket, so the
	// frame reaches the client unless it is not reading at all.
	g.flushOut(c)
	g.logClose(c, cause.reason, cause.detail)
	return true
}

// closeOnLoop closes c with reason from a loop task that is not an event
// handler (sweep, write callback, shutdown).
func (g *Gateway) closeOnLoop(c *conn, reason protocol.CloseReason, detail string) {
	if g.beginClose(c, reason, detail) {
		_ = c.loop.el.Close(c.gc)
	}
}

func (g *Gateway) logClose(c *conn, reason protocol.CloseReason, detail string) {
	ev := g.log.Debug().Int64("conn", c.id).Stringer("reason", reason)
	if s := c.session.Load(); s != nil {
		ev = ev.Int64("user", s.UserId)
	}
	ev.Str("detail", detail).Msg("closing connection")
}

// deadline returns when c expires if it stays silent, on the gateway clock.
func (g *Gateway) deadline(c *conn) int64 {
	dl, _ := g.deadlineReason(c)
	return dl
}

func (g *Gateway) deadlineReason(c *conn) (int64, protocol.CloseReason) {
	if c.refusal != 0 {
		// A refused client that sends nothing must not hold its slot for the
		// whole login deadline.
		// A refused connection never logs in: authDeadline is still its
		// login deadline.
		loginMs := g.cfg.LoginTimeout.Milliseconds()
		grace := min(loginMs, refusalGraceMs)
		return c.authDeadline.Load() - loginMs + grace, protocol.CloseReason(c.refusal)
	}
	hb := c.lastActive + g.cfg.HeartbeatTimeout.Milliseconds()
	if c.session.Load() != nil {
		if exp := c.authDeadline.Load(); exp < hb {
			return exp, protocol.CloseReason_TOKEN_EXPIRED
		}
		return hb, protocol.CloseReason_HEARTBEAT_TIMEOUT
	}
	if login := c.authDeadline.Load(); login <= hb {
		return login, protocol.CloseReason_LOGIN_TIMEOUT
	}
	return hb, protocol.CloseReason_HEARTBEAT_TIMEOUT
}

// sweepLoop expires the due connections of one loop; it runs on that loop.
func (g *Gateway) sweepLoop(ls *loopState) {
	ls.wheel.sweep(g.nowMs(), g.deadline, func(c *conn) {
		_, reason := g.deadlineReason(c)
		g.closeOnLoop(c, reason, "deadline passed")
	})
}

// needsLogin reports whether op is refused before a successful login.
func needsLogin(op protocol.Op) bool {
	return op != protocol.Op_REGISTER && op != protocol.Op_LOGIN
}
