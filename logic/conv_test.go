package logic

import (
	"errors"
	"testing"
)

func TestParseP2P(t *testing.T) {
	cases := []struct {
		name     string
		convID   string
		low      int64
		high     int64
		wantBad  bool
		wantPeer int64 // peer of user 3, 0 when forbidden
	}{
		{name: "canonical", convID: "p2p:3:7", low: 3, high: 7, wantPeer: 7},
		{name: "other pair", convID: "p2p:4:7", low: 4, high: 7},
		{name: "high first", convID: "p2p:7:3", wantBad: true},
		{name: "self", convID: "p2p:3:3", wantBad: true},
		{name: "leading zero", convID: "p2p:03:7", wantBad: true},
		{name: "plus sign", convID: "p2p:+3:7", wantBad: true},
		{name: "zero id", convID: "p2p:0:7", wantBad: true},
		{name: "negative", convID: "p2p:-1:7", wantBad: true},
		{name: "three parts", convID: "p2p:3:7:9", wantBad: true},
		{name: "group", convID: "group:3", wantBad: true},
		{name: "empty", convID: "", wantBad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			low, high, err := parseP2P(tc.convID)
			if tc.wantBad {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("err = %v, want ErrBadRequest", err)
				}
				return
			}
			if err != nil || low != tc.low || high != tc.high {
				t.Fatalf("parse = %d, %d, %v", low, high, err)
			}
			peer, err := peerOf(tc.convID, 3)
			forbidden := errors.Is(err, ErrForbidden)
			if tc.wantPeer == 0 && !forbidden || tc.wantPeer != 0 && peer != tc.wantPeer {
				t.Fatalf("peerOf(3) = %d, %v; want %d", peer, err, tc.wantPeer)
			}
		})
	}
}

func TestDSNs(t *testing.T) {
	const sqlitePragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)" +
		"&_pragma=temp_store(MEMORY)"
	cases := []struct {
		name string
		got  string
		want string
	}{
		{name: "mysql bare", got: mysqlDSN("u@tcp(h:1)/db"), want: "u@tcp(h:1)/db?parseTime=true"},
		{name: "mysql with params", got: mysqlDSN("u@tcp(h:1)/db?charset=utf8mb4"),
			want: "u@tcp(h:1)/db?charset=utf8mb4&parseTime=true"},
		{name: "mysql already set", got: mysqlDSN("u@/db?parseTime=false"),
			want: "u@/db?parseTime=false"},
		{name: "sqlite path", got: sqliteDSN("d/r.db"),
			want: "d/r.db?" + sqlitePragmas},
		{name: "sqlite with params", got: sqliteDSN("r.db?mode=rwc"),
			want: "r.db?mode=rwc&" + sqlitePragmas},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}
