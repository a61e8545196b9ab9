package logic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/mqtest"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// testArgon keeps hashing in the microseconds so tests stay fast.
var testArgon = argonParams{memoryKiB: 64, time: 1, threads: 1, saltLen: 16, keyLen: 32}

const testPassword = "correct horse"

// env is one Service on a real store and an embedded JetStream.
type env struct {
	svc    *Service
	db     *gorm.DB
	js     jetstream.JetStream
	names  mq.Names
	routes *route.Memory
	cfg    Config
	deps   Deps
}

// forEachStore runs fn against SQLite and, when RESONANCE_TEST_MYSQL_DSN is
// set, against MySQL/MariaDB with a unique table prefix.
func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		cfg := Config{DBDriver: DriverSQLite, DBDSN: filepath.Join(t.TempDir(), "logic.db")}
		fn(t, newEnv(t, cfg))
	})
	t.Run("mysql", func(t *testing.T) {
		dsn := os.Getenv("RESONANCE_TEST_MYSQL_DSN")
		if dsn == "" {
			t.Skip("RESONANCE_TEST_MYSQL_DSN not set")
		}
		cfg := Config{DBDriver: DriverMySQL, DBDSN: dsn, TablePrefix: "t" + randHex(t, 4) + "_"}
		fn(t, newEnv(t, cfg))
	})
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, func(*Deps) {})
}

// newEnvWith is newEnv with the Service's Deps changed by setup first, as a
// test that wraps the route table does; env.routes stays the table wrapped.
func newEnvWith(t testing.TB, cfg Config, setup func(*Deps)) *env {
	t.Helper()
	ctx := context.Background()
	cfg.TokenSecret = "test-secret-" + randHex(t, 8)
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	t.Cleanup(func() { dropTables(t, db, cfg); closeDB(db) })

	js, names := mqtest.JetStream(t, "test")
	routes := route.NewMemory(time.Minute)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	deps := Deps{Log: log, JS: js, MQ: names, Routes: routes}
	setup(&deps)
	svc, err := newService(ctx, cfg, db, deps, testArgon)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Registered last, so it runs before the store and NATS close.
	t.Cleanup(func() { _ = svc.Stop() })
	return &env{svc: svc, db: db, js: js, names: names, routes: routes, cfg: cfg, deps: deps}
}

// restart plays a logic process restart: it stops e's Service and starts
// another on the same store and stream, whose relay publishes what the first
// left in the outbox.
func (e *env) restart(t *testing.T) {
	t.Helper()
	if err := e.svc.Stop(); err != nil {
		t.Fatal(err)
	}
	svc, err := newService(context.Background(), e.cfg, e.db, e.deps, testArgon)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	e.svc = svc
}

// outboxLen returns how many outbox rows wait for publishing.
func (e *env) outboxLen(t testing.TB) int64 {
	t.Helper()
	var n int64
	if err := e.db.Model(&outboxRow{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// waitPublished waits until the outbox is empty and the stream holds want
// events.
func (e *env) waitPublished(t testing.TB, want uint64) {
	t.Helper()
	testwait.For(t, 10*time.Second, fmt.Sprintf("outbox drained into %d events", want), func() bool {
		return e.outboxLen(t) == 0 && e.streamMsgs(t) == want
	})
}

func dropTables(t testing.TB, db *gorm.DB, cfg Config) {
	t.Helper()
	if cfg.DBDriver != DriverMySQL {
		return // SQLite lives in t.TempDir
	}
	err := db.Migrator().DropTable(&messageRow{}, &convRow{}, &userRow{}, &memberRow{},
		&deliveredRow{}, &outboxRow{}, &deviceRow{}, &blockRow{},
		&pushTokenRow{}, &muteRow{}, &settingsRow{}, &reactionRow{},
		&fileRow{}, &fileRefRow{}, &fileChunkRow{})
	if err != nil {
		t.Errorf("drop tables %s*: %v", cfg.TablePrefix, err)
	}
}

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// register creates a user and returns its id.
func (e *env) register(t testing.TB, name string) int64 {
	t.Helper()
	resp, err := e.svc.Register(context.Background(),
		&protocol.RegisterReq{Username: name, Password: testPassword}, testConn)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return resp.UserId
}

// phoneToken logs name in with its password on the device "phone" and
// returns the access token.
func (e *env) phoneToken(t testing.TB, name string) string {
	t.Helper()
	resp, err := e.svc.Login(context.Background(), &protocol.LoginReq{Username: name,
		Password: testPassword, DeviceId: "phone"}, testConn)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return resp.Token
}

// testConn is a connection that gives no client address, so registrations
// through it are not limited.
var testConn = &logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 1}

// session returns a logged-in session of user on a made-up connection.
func session(user, conn int64) *logicrpc.Session {
	return &logicrpc.Session{UserId: user, DeviceId: "phone", Gateway: "gw-1:9000", ConnId: conn}
}

// wantCode fails t unless err is a BizError with code.
func wantCode(t *testing.T, err error, code common.ErrorCode) {
	t.Helper()
	if code == common.ErrorCode_OK {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	var biz *common.BizError
	if !errors.As(err, &biz) {
		t.Fatalf("err = %v (%T), want BizError %s", err, err, code)
	}
	if biz.Code != code {
		t.Fatalf("code = %s (%q), want %s", biz.Code, biz.Message, code)
	}
}

// streamMsgs returns how many events the stream holds.
func (e *env) streamMsgs(t testing.TB) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), e.names.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// countMessages returns how many messages the store holds.
func (e *env) countMessages(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := e.db.Model(&messageRow{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// listenLocal listens on a loopback port the system picks; the caller (or
// Serve, given it) closes the listener.
func listenLocal(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
