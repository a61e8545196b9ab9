package gateway

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// maxFrameRate keeps a connection's frame budget (two seconds' worth, in
// thousandths of a frame) within an int32.
const maxFrameRate = 1_000_000

// refusalGraceMs is how long a connection refused at open may take to send
// its first bytes (so that its CLOSE can be framed) before it is closed
// without them.
const refusalGraceMs = 2000

// maxBodyBeforeLogin is the largest frame body a connection may send before
// its first LOGIN (g.maxBody).
const maxBodyBeforeLogin = 4 << 10

// numCloseReasons bounds the close counters; CloseReason values above it are
// counted as UNKNOWN.
const numCloseReasons = 16

// Stats is a snapshot of the gateway's counters. Counters only grow, except
// Open.
type Stats struct {
	// Open is the number of client connections open now, refused ones
	// included until they close.
	Open int64
	// Accepted counts every connection accepted since New.
	Accepted uint64
	// Upgrades counts successful WebSocket handshakes.
	Upgrades uint64
	// HandshakesRefused counts HTTP requests on the client port answered with
	// an error status: malformed, too long, not an upgrade, Origin refused.
	HandshakesRefused uint64
	// Closes counts server-side closes by the reason sent in their CLOSE
	// frame; reasons never used are absent. Closes the client began are in
	// ClientCloses and ConnErrors instead.
	Closes map[protocol.CloseReason]uint64
	// ClientCloses counts connections the client ended before the server
	// began a close: it closed the socket or sent a WebSocket close frame.
	ClientCloses uint64
	// ConnErrors counts connections whose socket failed before the server
	// began a close: reset by the peer, or a write to a peer gone away.
	ConnErrors uint64
	// FramesIn and FramesOut count frames by opcode, from and to clients;
	// opcodes never seen are absent.
	FramesIn, FramesOut map[protocol.Op]uint64
	// SendBatches counts SendRuns calls to logic, each carrying the runs of
	// SENDs that connections had queued; BatchedSends counts the SENDs in
	// them. Their ratio is the coalescing.
	SendBatches, BatchedSends uint64
	// SendBatchFallbacks counts SendRuns calls a logic without it refused
	// (an older release): their SENDs went as one Send each.
	SendBatchFallbacks uint64
	// LatePositionsDropped counts the DELIVERED and MARK_READ requests
	// (one each, whatever positions a DELIVERED carries) that connections
	// had queued when they closed and that logic did not confirm: the queue
	// for them was full, the shutdown deadline passed first, or their call
	// failed (logic unreachable, timed out, in error, or still shedding
	// after the retries), or the connection closed before the LOGIN they
	// were queued behind completed. One logic refused as invalid is not
	// counted.
	LatePositionsDropped uint64
}

// gatewayStats holds the counters behind Stats. Each is one atomic: they are
// bumped from every event loop and worker.
type gatewayStats struct {
	open                 atomic.Int64
	accepted             atomic.Uint64
	upgrades             atomic.Uint64
	handshakesRefused    atomic.Uint64
	closes               [numCloseReasons]atomic.Uint64
	clientCloses         atomic.Uint64
	connErrors           atomic.Uint64
	sendBatches          atomic.Uint64
	batchedSends         atomic.Uint64
	sendFallbacks        atomic.Uint64
	latePositionsDropped atomic.Uint64
}

// Stats returns the current counters. It may be called from any goroutine at
// any time; the lead exports them as metrics.
func (g *Gateway) Stats() Stats {
	st := &g.stats
	s := Stats{
		Open:                 st.open.Load(),
		Accepted:             st.accepted.Load(),
		Upgrades:             st.upgrades.Load(),
		HandshakesRefused:    st.handshakesRefused.Load(),
		Closes:               make(map[protocol.CloseReason]uint64),
		ClientCloses:         st.clientCloses.Load(),
		ConnErrors:           st.connErrors.Load(),
		SendBatches:          st.sendBatches.Load(),
		BatchedSends:         st.batchedSends.Load(),
		SendBatchFallbacks:   st.sendFallbacks.Load(),
		LatePositionsDropped: st.latePositionsDropped.Load(),
	}
	for i := range st.closes {
		if n := st.closes[i].Load(); n > 0 {
			s.Closes[protocol.CloseReason(i)] = n
		}
	}
	s.FramesIn, s.FramesOut = g.frameCounts()
	return s
}

// frameCounts sums the per-loop frame counters.
func (g *Gateway) frameCounts() (in, out map[protocol.Op]uint64) {
	in, out = make(map[protocol.Op]uint64), make(map[protocol.Op]uint64)
	g.loopsMu.Lock()
	defer g.loopsMu.Unlock()
	for _, ls := range g.loops {
		for op := range ls.framesIn {
			if n := ls.framesIn[op].Load(); n > 0 {
				in[protocol.Op(op)] += n
			}
			if n := ls.framesOut[op].Load(); n > 0 {
				out[protocol.Op(op)] += n
			}
		}
	}
	return in, out
}

func (g *Gateway) countClose(reason protocol.CloseReason) {
	if reason < 0 || reason >= numCloseReasons {
		reason = protocol.CloseReason_UNKNOWN
	}
	g.stats.closes[reason].Add(1)
}

// countPeerClose counts a close the server did not begin, by the error gnet
// closed the socket with: the end of the stream is the client closing, any
// other error a failed socket. nil is gnet closing it on its own (the
// engine stopping), which neither counter claims.
func (g *Gateway) countPeerClose(err error) {
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		g.stats.clientCloses.Add(1)
	default:
		g.stats.connErrors.Add(1)
	}
}

// admitConn counts a new connection from peer and returns OVERLOADED when
// it is over the connection cap, its address's accept rate or the
// gateway's, else UNKNOWN (admitted). The address is checked before the
// gateway's rate, so that what one address is refused costs the others
// nothing; a trusted proxy's address is not checked.
func (g *Gateway) admitConn(nowMs int64, peer net.Addr, proxy bool) protocol.CloseReason {
	g.stats.accepted.Add(1)
	open := g.stats.open.Add(1)
	if g.cfg.MaxConns > 0 && open > int64(g.cfg.MaxConns) {
		return protocol.CloseReason_OVERLOADED
	}
	if g.cfg.AcceptAddrRate > 0 && !proxy {
		if key, ok := addrKey(peer); ok &&
			!g.addrAccepts.take(key, nowMs, int64(g.cfg.AcceptAddrRate)) {
			return protocol.CloseReason_OVERLOADED
		}
	}
	if g.cfg.AcceptRate > 0 && !g.accepts.take(nowMs, int64(g.cfg.AcceptRate)) {
		return protocol.CloseReason_OVERLOADED
	}
	return protocol.CloseReason_UNKNOWN
}

// tokenBucket is the accept-rate limiter shared by all event loops. New
// connections are rare next to frames, so one mutex is cheap enough.
type tokenBucket struct {
	mu     sync.Mutex
	budget int64 // thousandths of a token
	at     int64 // gateway clock of the last refill, ms
	primed bool
}

// take spends one token of a bucket refilled at rate per second with a
// burst of one second's worth.
func (b *tokenBucket) take(nowMs, rate int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	burst := rate * 1000
	if !b.primed {
		b.budget, b.at, b.primed = burst, nowMs, true
	}
	b.budget = min(b.budget+(nowMs-b.at)*rate, burst)
	b.at = nowMs
	if b.budget < 1000 {
		return false
	}
	b.budget -= 1000
	return true
}

// frameBurst is the full frame budget of a connection: two seconds' worth,
// so a client may burst after a quiet spell (a reconnect's sync, a queue of
// unsent messages) without being closed.
func frameBurst(rate int) int32 { return int32(2 * max(rate, 0) * 1000) }

// refillFrames adds the budget earned since the connection's last read. It
// runs on the loop before lastActive moves to now, which spares a field.
func (c *conn) refillFrames(nowMs int64, rate int) {
	if rate <= 0 {
		return
	}
	// Compare in int64: a long quiet spell would overflow the int32 budget.
	earned := int64(c.frameBudget) + (nowMs-c.lastActive)*int64(rate)
	c.frameBudget = int32(min(earned, int64(frameBurst(rate))))
}

// spendFrame takes one frame from the budget; false means the client is
// over its rate.
func (c *conn) spendFrame(rate int) bool {
	if rate <= 0 {
		return true
	}
	if c.frameBudget < 1000 {
		return false
	}
	c.frameBudget -= 1000
	return true
}
