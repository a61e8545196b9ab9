package logic

import (
	"strconv"
	"testing"
	"time"
)

func TestKnownAddrs_ExpiresAndStaysBounded(t *testing.T) {
	k := newKnownAddrs(100, time.Hour)
	now := time.Unix(1_000_000, 0)
	k.now = func() time.Time { return now }
	k.add("alice", "198.51.100.7")
	if !k.has("alice", "198.51.100.7") || k.has("alice", "203.0.113.1") || k.has("bob", "198.51.100.7") {
		t.Fatal("has: want only alice at 198.51.100.7")
	}
	now = now.Add(time.Hour)
	if k.has("alice", "198.51.100.7") {
		t.Fatal("a sign-in an hour old is still known with a one-hour ttl")
	}
	for i := range 1000 {
		k.add("user"+strconv.Itoa(i), "203.0.113.1")
		if len(k.at) > 100 {
			t.Fatalf("%d pairs after %d adds, bound 100", len(k.at), i+1)
		}
	}
	if !k.has("user999", "203.0.113.1") {
		t.Fatal("the latest sign-in was evicted")
	}
}
