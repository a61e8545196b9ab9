package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// chatter keeps a logged-in client sending while a test abuses the gateway,
// and reports how many sends were acked in order.
type chatter struct {
	stop chan struct{}
	done chan struct{}
	acks int
	err  error
}

func startChatter(t *testing.T, h *harness) *chatter {
	t.Helper()
	c := h.dial(t)
	c.login("bob", 1)
	ch := &chatter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ch.done)
		for id := uint32(2); ; id++ {
			select {
			case <-ch.stop:
				return
			default:
			}
			c.writeRaw(codec.EncodeFrame(protocol.Op_SEND, 0, id,
				&protocol.SendReq{ToUserId: 1, Content: []byte("still here")}))
			f, err := c.tryRead(5 * time.Second)
			if err == nil && (f.Op != protocol.Op_SEND_ACK || f.RequestID != id) {
				err = errors.New("reply out of step")
			}
			if err != nil {
				ch.err = err
				return
			}
			ch.acks++
			time.Sleep(10 * time.Millisecond) // well under the frame rate
		}
	}()
	return ch
}

// finish stops the chatter and fails the test unless every send was acked.
func (ch *chatter) finish(t *testing.T) {
	t.Helper()
	close(ch.stop)
	<-ch.done
	if ch.err != nil || ch.acks == 0 {
		t.Fatalf("chatting client: %d acks, then %v", ch.acks, ch.err)
	}
}

// expectClosedBy reads until the stream ends and returns the reason of the
// CLOSE frame seen, or UNKNOWN if the stream ended without one.
func expectClosedBy(t *testing.T, conn net.Conn) protocol.CloseReason {
	t.Helper()
	c := &testClient{t: t, conn: conn}
	for {
		f, err := c.tryRead(5 * time.Second)
		if err != nil {
			if !isEOF(err) && !errors.Is(err, syscall.ECONNRESET) &&
				!errors.Is(err, codec.ErrBadMagic) {
				t.Fatalf("stream ended with %v, want a close", err)
			}
			return protocol.CloseReason_UNKNOWN
		}
		if f.Op == protocol.Op_CLOSE {
			var msg protocol.CloseMsg
			if err := codec.ReadBody(f.body, &msg); err != nil {
				t.Fatalf("close body: %v", err)
			}
			c.expectEOF()
			return msg.Reason
		}
	}
}

func TestGateway_SurvivesHostileClients(t *testing.T) {
	h := startGateway(t, Config{LoginTimeout: 500 * time.Millisecond,
		HeartbeatInterval: time.Second})
	ch := startChatter(t, h)
	rng := rand.New(rand.NewPCG(1, 2))
	hugeLen := codec.EncodeFrame(protocol.Op_LOGIN, 0, 1, nil)
	binary.BigEndian.PutUint32(hugeLen[10:14], 0xffffffff) // a 4 GiB body

	cases := []struct {
		name   string
		abuse  func(c *testClient)
		reason protocol.CloseReason // UNKNOWN: any close will do
	}{
		{name: "4 GiB length prefix", reason: protocol.CloseReason_FRAME_TOO_LARGE,
			abuse: func(c *testClient) { c.writeRaw(hugeLen) }},
		{name: "one byte at a time, too slowly", reason: protocol.CloseReason_LOGIN_TIMEOUT,
			abuse: func(c *testClient) {
				login := codec.EncodeFrame(protocol.Op_LOGIN, 0, 1,
					&protocol.LoginReq{Username: "alice", Password: "pw"})
				for _, b := range login[:6] {
					if _, err := c.conn.Write([]byte{b}); err != nil {
						return // closed already: the deadline passed
					}
					time.Sleep(200 * time.Millisecond)
				}
			}},
		{name: "WebSocket upgrade one byte at a time", // no CLOSE in an HTTP exchange
			abuse: func(c *testClient) {
				req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
				for i := range len(req) {
					if _, err := c.conn.Write([]byte{req[i]}); err != nil {
						return // closed already: the deadline passed
					}
					time.Sleep(100 * time.Millisecond)
				}
			}},
	}
	for i := range 20 {
		junk := make([]byte, 1+rng.IntN(4096))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		if i%2 == 0 {
			junk[0] = byte(codec.Magic >> 8) // get past the sniffing, into the decoder
		}
		cases = append(cases, struct {
			name   string
			abuse  func(c *testClient)
			reason protocol.CloseReason
		}{name: "random bytes", abuse: func(c *testClient) { _, _ = c.conn.Write(junk) }})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t)
			tc.abuse(c)
			got := expectClosedBy(t, c.conn)
			if tc.reason != protocol.CloseReason_UNKNOWN && got != tc.reason {
				t.Fatalf("closed with %v, want %v", got, tc.reason)
			}
		})
	}
	ch.finish(t)
}

func TestGateway_ConnectChurnWhileChatting(t *testing.T) {
	h := startGateway(t, Config{AcceptRate: -1})
	ch := startChatter(t, h)
	const workers, perWorker = 4, 500
	var wg sync.WaitGroup
	var talkers atomic.Int64
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				conn, err := net.DialTimeout("tcp", h.gw.Addr().String(), 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				// Some say something and hear the answer before leaving, so
				// the gateway surely accepted them; the rest leave at once.
				if (w+i)%3 == 0 {
					if err := heartbeatOnce(conn); err != nil {
						errs <- err
						_ = conn.Close()
						return
					}
					talkers.Add(1)
				}
				_ = conn.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("churn: %v", err)
	}
	ch.finish(t)
	// Only the chatter stays open once the gateway has seen every close.
	testwait.For(t, 10*time.Second, "churned connections to close", func() bool {
		return h.gw.Stats().Open == 1
	})
	// A connection closed at once may never be accepted: when the listen
	// backlog is full the kernel drops it after the client saw it connect.
	// Those that were answered were accepted, and nothing more than was dialed.
	st := h.gw.Stats()
	if lo, hi := uint64(talkers.Load())+1, uint64(workers*perWorker+1); st.Accepted < lo || st.Accepted > hi {
		t.Fatalf("accepted %d, want between %d and %d", st.Accepted, lo, hi)
	}
}

// heartbeatOnce sends a HEARTBEAT on a fresh connection and reads its ack.
func heartbeatOnce(conn net.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(codec.EncodeFrame(protocol.Op_HEARTBEAT, 0, 1, nil)); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	var hdr [codec.HeaderSize]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fmt.Errorf("heartbeat ack: %w", err)
	}
	h, err := codec.Decoder{}.DecodeHeader(hdr[:])
	if err != nil {
		return fmt.Errorf("heartbeat ack: %w", err)
	}
	if h.Op != protocol.Op_HEARTBEAT_ACK {
		return fmt.Errorf("heartbeat answered with %v", h.Op)
	}
	return nil
}

func TestGateway_ConnectionLimits(t *testing.T) {
	t.Run("connection cap", func(t *testing.T) {
		h := startGateway(t, Config{MaxConns: 2})
		a, b := h.dial(t), h.dial(t)
		a.login("alice", 1)
		b.login("bob", 1)
		over := h.dial(t)
		over.send(protocol.Op_HEARTBEAT, 1, nil)
		msg := over.expectClose(protocol.CloseReason_OVERLOADED)
		if msg.ReconnectAfterMs <= 0 {
			t.Fatalf("reconnect after %d, want a delay", msg.ReconnectAfterMs)
		}
		// A WebSocket client over the cap gets its handshake, then the reason.
		overWS := h.dialWS(t)
		overWS.expectClose(protocol.CloseReason_OVERLOADED, wsStatusTryAgainLater)
		// The admitted ones are unaffected.
		a.send(protocol.Op_HEARTBEAT, 2, nil)
		a.expectReply(protocol.Op_HEARTBEAT_ACK, 2, &protocol.HeartbeatResp{})
		if n := h.gw.Stats().Closes[protocol.CloseReason_OVERLOADED]; n != 2 {
			t.Fatalf("OVERLOADED closes %d, want 2", n)
		}
	})
	t.Run("accept rate", func(t *testing.T) {
		h := startGateway(t, Config{AcceptRate: 3})
		refused := 0
		for range 10 { // far faster than 3 per second
			c := h.dial(t)
			c.send(protocol.Op_HEARTBEAT, 1, nil)
			if f := c.read(); f.Op == protocol.Op_CLOSE {
				refused++
			}
		}
		// A burst of 3, and at most one more earned while dialing.
		if refused < 6 {
			t.Fatalf("%d of 10 quick connections refused, want at least 6", refused)
		}
	})
	t.Run("frame rate", func(t *testing.T) {
		h := startGateway(t, Config{FrameRate: 10})
		c := h.dial(t)
		var burst []byte
		for i := uint32(1); i <= 100; i++ {
			burst = codec.AppendFrame(burst, protocol.Op_HEARTBEAT, 0, i, nil)
		}
		c.writeRaw(burst)
		if got := expectClosedBy(t, c.conn); got != protocol.CloseReason_RATE_LIMITED {
			t.Fatalf("closed with %v, want RATE_LIMITED", got)
		}
	})
}

func TestWS_ClosesSlowConsumer(t *testing.T) {
	h := startGateway(t, Config{OutboundHighWater: 64 << 10})
	c := h.dialWS(t)
	c.login("alice", 1)
	target := []*pushrpc.Target{{ConnId: h.logic.connOf("alice").ConnId, UserId: 1}}
	big := &protocol.PushMsg{Message: &common.Message{Content: make([]byte, 32<<10)}}
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, big)

	// The client never reads. The gateway must give up on it after the high
	// water mark plus what the socket buffers hold, long before 400 pushes.
	cli := h.pushClient(t)
	for i := 0; ; i++ {
		if i == 400 {
			t.Fatal("slow consumer still connected after 400 pushes")
		}
		resp, err := cli.Push(context.Background(), &pushrpc.PushReq{Targets: target, Frame: frame})
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		if len(resp.MissingConns) == 1 {
			break
		}
	}
	if n := h.gw.Stats().Closes[protocol.CloseReason_SLOW_CONSUMER]; n != 1 {
		t.Fatalf("SLOW_CONSUMER closes %d, want 1", n)
	}
}

// emptyPositionsFrame is a DELIVERED frame whose body is one list of empty
// ConvPos structs, one byte each on the wire, filling size bytes.
func emptyPositionsFrame(id uint32, size int) []byte {
	body := []byte{15, 0, 1, 12, 0, 0, 0, 0} // list field 1 of structs, count below
	n := size - len(body) - 1                // the struct's final stop byte
	binary.BigEndian.PutUint32(body[4:], uint32(n))
	body = append(body, make([]byte, n+1)...) // each element is a lone stop byte
	frame := make([]byte, codec.HeaderSize, codec.HeaderSize+len(body))
	codec.PutHeader(frame, codec.Header{Op: protocol.Op_DELIVERED, RequestID: id,
		BodyLen: uint32(len(body))})
	return append(frame, body...)
}

func TestGateway_RefusesDeliveredOverLimitOnLoop(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("alice", 1)

	// 64 KiB of empty positions decode to some 2 MiB of structs: they must
	// be refused before they are queued, let alone sent to logic.
	c.writeRaw(emptyPositionsFrame(2, codec.DefaultMaxBody))
	c.expectError(protocol.Op_DELIVERED_ACK, 2, common.ErrorCode_TOO_LARGE)
	if got, _ := h.logic.reported(); len(got) != 0 {
		t.Fatalf("logic was handed %d positions, want none", len(got))
	}

	// Before login, logging in comes first, as for any request.
	early := h.dial(t)
	early.writeRaw(emptyPositionsFrame(4, maxBodyBeforeLogin))
	early.expectError(protocol.Op_DELIVERED_ACK, 4, common.ErrorCode_UNAUTHENTICATED)

	// The connection goes on, and a full DELIVERED still reaches logic.
	full := make([]*protocol.ConvPos, maxDeliveredPositions)
	for i := range full {
		full[i] = &protocol.ConvPos{ConvId: "p2p:1:2", Seq: int64(i + 1)}
	}
	c.send(protocol.Op_DELIVERED, 3, &protocol.DeliveredReq{Positions: full})
	c.expectReply(protocol.Op_DELIVERED_ACK, 3, &protocol.DeliveredResp{})
	if got, _ := h.logic.reported(); len(got) != maxDeliveredPositions {
		t.Fatalf("logic was handed %d positions, want %d", len(got), maxDeliveredPositions)
	}
}

// Until a connection has sent its LOGIN, a frame may not be larger than a
// LOGIN needs: a client that has not said who it is cannot make the gateway
// hold MaxBody for it until the login deadline, 64 KiB times every
// connection an address can open. Requests pipelined behind the LOGIN may
// be as large as ever.
func TestGateway_LimitsFramesBeforeLogin(t *testing.T) {
	h := startGateway(t, Config{})
	big := make([]byte, maxBodyBeforeLogin+1)
	register := codec.EncodeFrame(protocol.Op_REGISTER, 0, 1,
		&protocol.RegisterReq{Username: "mallory", Password: string(big)})

	t.Run("tcp", func(t *testing.T) {
		c := h.dial(t)
		c.writeRaw(register[:codec.HeaderSize]) // the header alone must do
		c.expectClose(protocol.CloseReason_FRAME_TOO_LARGE)
	})
	t.Run("websocket", func(t *testing.T) {
		c := h.dialWS(t)
		c.writeFrame(ws.OpBinary, true, register)
		c.expectClose(protocol.CloseReason_FRAME_TOO_LARGE, ws.StatusMessageTooBig)
	})
	t.Run("pipelined behind LOGIN", func(t *testing.T) {
		c := h.dial(t)
		login := codec.EncodeFrame(protocol.Op_LOGIN, 0, 1,
			&protocol.LoginReq{Username: "alice", Password: "pw"})
		send := codec.EncodeFrame(protocol.Op_SEND, 0, 2,
			&protocol.SendReq{ToUserId: 2, Content: big})
		c.writeRaw(append(login, send...))
		c.expectReply(protocol.Op_LOGIN_ACK, 1, &protocol.LoginResp{})
		c.expectReply(protocol.Op_SEND_ACK, 2, &protocol.SendResp{})
	})
	// A refused LOGIN leaves the connection as unknown as before it: one
	// bad password must not buy the rest of the login deadline at MaxBody.
	t.Run("after a failed LOGIN", func(t *testing.T) {
		c := h.dial(t)
		c.send(protocol.Op_LOGIN, 1, &protocol.LoginReq{Username: "alice", Password: "nope"})
		c.expectError(protocol.Op_LOGIN_ACK, 1, common.ErrorCode_INVALID_CREDENTIALS)
		c.writeRaw(register[:codec.HeaderSize])
		c.expectClose(protocol.CloseReason_FRAME_TOO_LARGE)
	})
}
