package logic

import (
	"testing"
	"time"
)

// FuzzTokenVerify checks that verify never panics and that every token it
// accepts is exactly the one issue would write for its claims: one spelling
// per token, nothing smuggled past the signature.
func FuzzTokenVerify(f *testing.F) {
	ts := tokenSigner{secret: []byte("fuzz"), ttl: time.Hour}
	now := time.UnixMilli(1_700_000_000_000)
	good, _ := ts.issue(tokenClaims{UserID: 7, DeviceID: "phone", Generation: 3}, now)
	f.Add(good)
	f.Add(flipLast(good))
	f.Add("")
	f.Add(".")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ts.verify(token, now)
		if err != nil {
			return
		}
		again, _ := ts.issue(c, c.Expires.Add(-ts.ttl))
		if again != token {
			t.Fatalf("accepted %q, which re-issues as %q", token, again)
		}
	})
}

// FuzzParseP2P checks that every accepted conversation id is the canonical
// spelling of its pair.
func FuzzParseP2P(f *testing.F) {
	for _, s := range []string{"p2p:1:2", "p2p:2:1", "p2p:01:2", "p2p:1:2:3", "p2p:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, convID string) {
		low, high, err := parseP2P(convID)
		if err == nil && (p2pConvID(low, high) != convID || low >= high || low <= 0) {
			t.Fatalf("accepted %q as %d, %d", convID, low, high)
		}
	})
}
