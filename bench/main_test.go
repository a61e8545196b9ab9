package main

import (
	"context"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client/clienttest"
)

func TestDispatch(t *testing.T) {
	s, err := clienttest.Start(clienttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "no scenario", args: nil, wantCode: 2, wantErr: "usage: bench"},
		{name: "unknown scenario", args: []string{"nope"}, wantCode: 2,
			wantErr: `unknown scenario "nope"`},
		{name: "bad flag", args: []string{"smoke", "--bogus"}, wantCode: 2, wantErr: "bogus"},
		{name: "bad config", args: []string{"smoke", "--users", "1"}, wantCode: 2,
			wantErr: "at least 2"},
		{name: "group bad config", args: []string{"group", "--size", "1"}, wantCode: 2,
			wantErr: "at least 2 members"},
		{name: "idle bad config", args: []string{"idle", "--conns", "0"}, wantCode: 2,
			wantErr: "positive connection count"},
		{name: "connect bad config", args: []string{"connect", "--conns", "0"}, wantCode: 2,
			wantErr: "positive connection count"},
		{name: "connect lists differ", args: []string{"connect", "--addr", "a:1,b:2",
			"--pid", "7"}, wantCode: 2, wantErr: "--pid lists 1 values for 2 gateways"},
		{name: "connect cluster and addr", args: []string{"connect", "--cluster-gateways", "2",
			"--addr", "a:1"}, wantCode: 2, wantErr: "drop --addr"},
		{
			name: "connect passes",
			args: []string{"connect", "--addr", s.Addr(), "--conns", "20", "--hold", "0s",
				"--relogin", "--json"},
			wantCode: 0,
			wantOut:  `"scenario": "connect"`,
		},
		{
			name:     "smoke passes",
			args:     []string{"smoke", "--addr", s.Addr(), "--users", "3", "--messages", "4"},
			wantCode: 0,
			wantOut:  "smoke: users=3 messages=12 acked=12 delivered=12 lost=0 duplicated=0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := dispatch(context.Background(), tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) ||
				!strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("stdout %q, stderr %q", out.String(), errOut.String())
			}
		})
	}
}
