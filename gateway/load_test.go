package gateway

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

func TestGateway_AnswersBusy(t *testing.T) {
	cases := []struct {
		name       string
		cfg        Config
		sameConn   bool // overflow on the blocked connection, or on another
		extraSends int
	}{
		{name: "per-connection queue full", cfg: Config{MaxPending: 2}, sameConn: true,
			extraSends: 3},
		{name: "worker pool full", cfg: Config{Workers: 1}, extraSends: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, tc.cfg)
			blocked := h.dial(t)
			blocked.login("alice", 1)
			// The worker that answered the LOGIN goes back to the pool only
			// after the client has its ack: with one worker, a SEND sent at
			// once could find the pool still full.
			testwait.For(t, 5*time.Second, "the login's worker back in the pool", func() bool {
				return h.gw.pool.Running() == 0
			})
			slow := &protocol.SendReq{ToUserId: 2, Content: []byte("slow")}
			blocked.send(protocol.Op_SEND, 2, slow)
			h.logic.awaitEntered(t, "the slow SEND")
			defer close(h.logic.release)

			other := blocked
			if !tc.sameConn {
				other = h.dial(t)
			}
			// Neither an unauthenticated connection nor a full queue may
			// wait: the last send must be answered BUSY while logic blocks.
			var burst []byte
			last := uint32(10 + tc.extraSends - 1)
			for id := uint32(10); id <= last; id++ {
				burst = codec.AppendFrame(burst, protocol.Op_REGISTER, 0, id,
					&protocol.RegisterReq{Username: "carol"})
			}
			other.writeRaw(burst)
			other.expectError(protocol.Op_REGISTER_ACK, last, common.ErrorCode_BUSY)
		})
	}
}

func TestGateway_ClosesSlowConsumer(t *testing.T) {
	h := startGateway(t, Config{OutboundHighWater: 64 << 10})
	c := dialSmallWindow(t, h.gw.Addr().String())
	c.login("alice", 1)
	target := []*pushrpc.Target{{ConnId: h.logic.connOf("alice").ConnId, UserId: 1}}
	big := &protocol.PushMsg{Message: &common.Message{Content: make([]byte, 32<<10)}}
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, big)

	// The client reads nothing; pushes pile up until the gateway gives up on
	// it. Bounded: 400 pushes of 32 KiB are far past any socket buffers.
	cli := h.pushClient(t)
	closed := false
	for i := 0; i < 400 && !closed; i++ {
		resp, err := cli.Push(context.Background(), &pushrpc.PushReq{Targets: target, Frame: frame})
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		closed = len(resp.MissingConns) == 1
	}
	if !closed {
		t.Fatal("slow consumer still connected after 400 pushes")
	}
	testwait.For(t, 5*time.Second, "disconnect", func() bool { return len(h.logic.disconnected()) == 1 })

	// What the client can still read ends in the close: a CLOSE frame when
	// it fitted in the socket buffer, otherwise the end of the stream.
	for {
		f, err := c.tryRead(5 * time.Second)
		if err != nil {
			if !errors.Is(err, syscall.ECONNRESET) && !isEOF(err) {
				t.Fatalf("stream ended with %v, want EOF or reset", err)
			}
			return
		}
		if f.Op == protocol.Op_CLOSE {
			var msg protocol.CloseMsg
			if err := codec.ReadBody(f.body, &msg); err != nil ||
				msg.Reason != protocol.CloseReason_SLOW_CONSUMER {
				t.Fatalf("close %+v (%v), want SLOW_CONSUMER", &msg, err)
			}
			return
		}
	}
}

// dialSmallWindow connects with a small receive buffer so that the kernel
// soon stops accepting bytes for a client that does not read.
func dialSmallWindow(t *testing.T, addr string) *testClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &testClient{t: t, conn: conn}
}
