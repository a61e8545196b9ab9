package chat

import (
	"bytes"
	"context"
	"errors"
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
	want := []string{"* logged in", "! connection lost: EOF",
		"! still offline (attempt 2): client: dial tcp", "* logged in", "! connection lost: EOF"}
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

// A long outage prints the loss, then only the retries whose error changes
// or whose number is a power of two, and one line when back online.
func TestChat_LongOutageIsToldSparingly(t *testing.T) {
	var out bytes.Buffer
	s := &session{out: &out}
	login := &protocol.LoginResp{Username: "ann", UserId: 1}
	refused := errors.New("dial tcp 127.0.0.1:7000: connect: connection refused")
	events := []client.Event{
		{Kind: client.EventConnected, Login: login, Addr: "gw"},
		{Kind: client.EventDisconnected, Err: io.EOF, RetryIn: time.Second},
	}
	for range 10 { // attempts 2 to 11
		events = append(events, client.Event{Kind: client.EventDisconnected, Err: refused,
			RetryIn: 5 * time.Second})
	}
	events = append(events, client.Event{Kind: client.EventConnected, Login: login, Addr: "gw"})
	for _, e := range events {
		s.onEvent(e)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"* logged in as ann (id 1) at gw",
		"! connection lost: EOF; reconnecting in 1s",
		"! still offline (attempt 2): " + refused.Error() + "; reconnecting in 5s",
		"! still offline (attempt 4): ",
		"! still offline (attempt 8): ",
		"* logged in as ann (id 1) at gw; back online after 10 failed attempts",
	}
	if len(got) != len(want) {
		t.Fatalf("printed %d lines, want %d:\n%s", len(got), len(want), out.String())
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("line %d = %q, want it to start %q", i, got[i], want[i])
		}
	}
}

// A reconnect at the first try says the client is back online, without
// counting "0 failed attempts"; one failed retry is told in the singular.
func TestChat_QuickReconnectCountsNoFailure(t *testing.T) {
	var out bytes.Buffer
	s := &session{out: &out}
	login := &protocol.LoginResp{Username: "ann", UserId: 1}
	lost := client.Event{Kind: client.EventDisconnected, Err: io.EOF, RetryIn: time.Second}
	back := client.Event{Kind: client.EventConnected, Login: login, Addr: "gw"}
	for _, e := range []client.Event{back, lost, back, lost, lost, back} {
		s.onEvent(e)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, want := range map[int]string{
		2: "* logged in as ann (id 1) at gw; back online",
		5: "* logged in as ann (id 1) at gw; back online after 1 failed attempt",
	} {
		if i >= len(got) || got[i] != want {
			t.Fatalf("line %d of\n%s\nis not %q", i, out.String(), want)
		}
	}
}
