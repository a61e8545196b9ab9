package chat

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A connection lost is told once; each retry that fails after it says the
// client is still offline, with an error that names the address once.
func TestChat_RetriesWhileOfflineAreNotNewLosses(t *testing.T) {
	var out bytes.Buffer
	s := &session{out: &out}
	// A port free a moment ago, to be refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = client.Dial(context.Background(), addr, client.Options{})
	if err == nil {
		t.Skip("the port was taken meanwhile")
	}
	login := &protocol.LoginResp{Username: "ann", UserId: 1}
	for _, e := range []client.Event{
		{Kind: client.EventConnected, Login: login, Addr: addr},
		{Kind: client.EventDisconnected, Err: io.EOF, RetryIn: time.Second},
		{Kind: client.EventDisconnected, Err: err, RetryIn: 2 * time.Second},
		{Kind: client.EventConnected, Login: login, Addr: addr},
		{Kind: client.EventDisconnected, Err: io.EOF, RetryIn: time.Second},
	} {
		s.onEvent(e)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"* logged in", "! connection lost: EOF", "! still offline: client: dial tcp",
		"* logged in", "! connection lost: EOF"}
	if len(got) != len(want) {
		t.Fatalf("printed:\n%s", out.String())
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("line %d = %q, want it to start %q", i, got[i], want[i])
		}
	}
	if strings.Count(got[2], addr) != 1 {
		t.Fatalf("the address named more than once: %q", got[2])
	}
}
