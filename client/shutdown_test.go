package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Shutdown reads the CLOSE the server sent before it saw the client's end,
// while the reader was held back by a full Messages channel: Err reports
// that close and the pushes before it arrive. Close drops what the reader
// has not yet handed on and reports ErrClosed, so a tally made after it
// (the bench's) took the receiver's missing messages for lost.
func TestClient_ShutdownReadsTheCloseOnItsWay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ended := make(chan struct{})
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			close(ended)
			return
		}
		defer conn.Close()
		var out []byte
		for seq := int64(1); seq <= 2; seq++ {
			out = codec.AppendFrame(out, protocol.Op_PUSH, 0, 0, &protocol.PushMsg{
				Message: &common.Message{MsgId: seq, ConvId: "c", Seq: seq}})
		}
		out = codec.AppendFrame(out, protocol.Op_CLOSE, 0, 0,
			&protocol.CloseMsg{Reason: protocol.CloseReason_SLOW_CONSUMER})
		_, _ = conn.Write(out)
		// As the gateway: read to the client's end, then close.
		_, _ = io.Copy(io.Discard, conn)
		close(ended)
	}()

	// One push fits the channel; the reader holds the second, the CLOSE
	// behind it.
	c, err := client.Dial(context.Background(), ln.Addr().String(),
		client.Options{PushBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- c.Shutdown(ctx) }()
	<-ended

	var got int
	for range c.Messages() {
		got++
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	var ce *client.CloseError
	if !errors.As(c.Err(), &ce) || ce.Reason != protocol.CloseReason_SLOW_CONSUMER {
		t.Fatalf("Err = %v after %d pushes, want the SLOW_CONSUMER close", c.Err(), got)
	}
	if got != 2 {
		t.Fatalf("%d pushes, want 2", got)
	}
}
