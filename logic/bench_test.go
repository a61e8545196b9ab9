package logic

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkService_Send measures one Send end to end: dedupe lookup, peer
// check, the seq transaction on SQLite (synchronous=FULL in WAL mode, so
// one fsync per message) and the JetStream publish with its ack.
func BenchmarkService_Send(b *testing.B) {
	e := newEnv(b, sqliteConfig(b))
	alice, bob := e.register(b, "alice"), e.register(b, "bob")
	sess := session(alice, 1)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.svc.Send(ctx, sess, textReq("b"+strconv.Itoa(i), bob)); err != nil {
			b.Fatal(err)
		}
	}
}
