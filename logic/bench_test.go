package logic

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// benchStores runs fn on SQLite and, when RESONANCE_TEST_MYSQL_DSN is set,
// on MySQL/MariaDB with a unique table prefix.
func benchStores(b *testing.B, fn func(b *testing.B, e *env)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, newEnv(b, sqliteConfig(b))) })
	b.Run("mysql", func(b *testing.B) {
		dsn := os.Getenv("RESONANCE_TEST_MYSQL_DSN")
		if dsn == "" {
			b.Skip("RESONANCE_TEST_MYSQL_DSN not set")
		}
		fn(b, newEnv(b, Config{DBDriver: DriverMySQL, DBDSN: dsn,
			TablePrefix: "b" + randHex(b, 4) + "_"}))
	})
}

// BenchmarkService_Send measures one Send end to end from one sender:
// dedupe lookup, peer check and the seq transaction with its outbox row (on
// SQLite synchronous=FULL in WAL mode, one fsync per message). The ack does
// not wait for JetStream: the publish runs behind it, batched.
func BenchmarkService_Send(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
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
		b.StopTimer()
		e.waitPublished(b, uint64(i))
	})
}

// BenchmarkService_SendParallel measures Sends from concurrent senders, each
// in a conversation of its own (one conversation serializes on its row
// lock), and waits for every event to reach the stream.
func BenchmarkService_SendParallel(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		const pairs = 32
		users := make([]int64, 2*pairs)
		for i := range users {
			users[i] = e.register(b, fmt.Sprintf("user%d", i))
		}
		var next, sent atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			p := int(next.Add(1)-1) % pairs
			sess, to := session(users[2*p], int64(p)), users[2*p+1]
			for pb.Next() {
				// Unique across goroutines, which may share a pair.
				req := textReq("p"+strconv.FormatInt(sent.Add(1), 10), to)
				if _, err := e.svc.Send(context.Background(), sess, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		e.waitPublished(b, uint64(sent.Load()))
		if n := e.svc.stats.batches.Load(); n > 0 {
			b.ReportMetric(float64(e.svc.stats.batchedWrites.Load())/float64(n), "writes/commit")
		}
	})
}

// BenchmarkService_TokenLogin measures what a reconnect storm costs logic per
// device: the disconnect of its connection and the token login of the new
// one (token check, device and user read, route), from concurrent callers
// over 1,000 devices of 100 users.
func BenchmarkService_TokenLogin(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		const users, devices = 100, 1000
		ctx := context.Background()
		type device struct {
			token string
			id    string
			user  int64
			conn  atomic.Int64
		}
		devs := make([]*device, devices)
		for u := range users {
			name := fmt.Sprintf("user%d", u)
			user := e.register(b, name)
			for d := range devices / users {
				dv := &device{id: fmt.Sprintf("dev%d", d), user: user}
				resp, err := e.svc.Login(ctx, &protocol.LoginReq{Username: name,
					Password: testPassword, DeviceId: dv.id}, &logicrpc.ConnInfo{Gateway: "gw-1:9000"})
				if err != nil {
					b.Fatal(err)
				}
				dv.token = resp.Token
				devs[u*(devices/users)+d] = dv
			}
		}
		var next, conns atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				dv := devs[int(next.Add(1))%devices]
				conn := conns.Add(1)
				if old := dv.conn.Swap(conn); old != 0 {
					_ = e.svc.Disconnect(ctx, &logicrpc.Session{UserId: dv.user,
						DeviceId: dv.id, Gateway: "gw-1:9000", ConnId: old})
				}
				_, err := e.svc.Login(ctx, &protocol.LoginReq{Token: dv.token, DeviceId: dv.id},
					&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: conn})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
