package client_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// scriptedServer accepts one connection, writes out to it and keeps it open
// until the test ends.
func scriptedServer(t *testing.T, out []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		_, _ = conn.Write(out)
		accepted <- conn
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		if conn, ok := <-accepted; ok {
			_ = conn.Close()
		}
	})
	return ln.Addr().String()
}

func TestClient_MalformedFramesEndConnection(t *testing.T) {
	badFieldType := []byte{0xa5, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30}
	rawFrame := func(op protocol.Op, body []byte) []byte {
		f := make([]byte, codec.HeaderSize, codec.HeaderSize+len(body))
		codec.PutHeader(f, codec.Header{Op: op, BodyLen: uint32(len(body))})
		return append(f, body...)
	}
	tests := []struct {
		name string
		out  []byte
	}{
		{name: "bad magic", out: []byte("HTTP/1.1 400 Bad Request\r\n\r\n")},
		{name: "push with a bad field type", out: rawFrame(protocol.Op_PUSH, badFieldType)},
		{name: "push without a message", out: rawFrame(protocol.Op_PUSH, nil)},
		{name: "close with a truncated body", out: rawFrame(protocol.Op_CLOSE, []byte{0x08, 0x00})},
		{name: "request op from the server", out: rawFrame(protocol.Op_SEND, nil)},
		{name: "body over MaxBody", out: rawFrame(protocol.Op_PUSH, make([]byte, 100))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, scriptedServer(t, tt.out), client.Options{MaxBody: 64})
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("connection not ended")
			}
			if !errors.Is(c.Err(), client.ErrProtocol) {
				t.Fatalf("Err() = %v, want ErrProtocol", c.Err())
			}
		})
	}
}
