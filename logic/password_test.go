package logic

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/mqtest"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// newWithConfig starts a Service through New (not newService), so the cost
// comes from cfg, and returns it with what it logged.
func newWithConfig(t *testing.T, cfg Config) (*Service, *bytes.Buffer) {
	t.Helper()
	ctx := context.Background()
	cfg.DBDriver, cfg.DBDSN = DriverSQLite, filepath.Join(t.TempDir(), "logic.db")
	cfg.TokenSecret = "test-secret-" + randHex(t, 8)
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	t.Cleanup(func() { closeDB(db) })
	js, names := mqtest.JetStream(t, "test")
	var logs bytes.Buffer
	svc, err := New(ctx, cfg, db, Deps{Log: zerolog.New(&logs), JS: js, MQ: names,
		Routes: route.NewMemory(time.Minute)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return svc, &logs
}

func TestNew_HashCostFromConfigWarnsAndOldHashesVerify(t *testing.T) {
	svc, logs := newWithConfig(t, Config{HashMemoryKiB: 64, HashTime: 1})
	if !strings.Contains(logs.String(), "for benchmarks and tests only") {
		t.Fatalf("no warning about the cheap cost in %q", logs.String())
	}
	ctx := context.Background()
	_, err := svc.Register(ctx, &protocol.RegisterReq{Username: "alice", Password: testPassword},
		testConn)
	if err != nil {
		t.Fatal(err)
	}
	u, err := svc.findUser(ctx, "alice", 0)
	if err != nil || u == nil {
		t.Fatalf("find alice: %v", err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %s, want the configured cost", u.PasswordHash)
	}

	// A hash written under another cost (an earlier configuration) still
	// verifies: the cost is read from the hash.
	older, err := newHasher(argonParams{memoryKiB: 128, time: 3, threads: 1, saltLen: 16,
		keyLen: 32}, 1)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := older.hash(ctx, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := svc.hash.verify(ctx, testPassword, stored); !ok || err != nil {
		t.Fatalf("verify an older-cost hash = %v, %v", ok, err)
	}
}

func TestNew_DefaultHashCostDoesNotWarn(t *testing.T) {
	svc, logs := newWithConfig(t, Config{})
	if logs.Len() != 0 {
		t.Fatalf("logged %q at the default cost", logs.String())
	}
	if svc.hash.params != defaultArgon {
		t.Fatalf("params %+v, want %+v", svc.hash.params, defaultArgon)
	}
}

func TestConfig_RejectsHashCostOutOfRange(t *testing.T) {
	cases := []struct {
		name      string
		memoryKiB int
		time      int
	}{
		{name: "memory under one lane", memoryKiB: 4},
		{name: "memory over 4 GiB", memoryKiB: 4<<20 + 1},
		{name: "too many passes", time: 1025},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{TokenSecret: "k", HashMemoryKiB: tc.memoryKiB, HashTime: tc.time}
			if err := cfg.withDefaults().validate(); !errors.Is(err, ErrBadHashCost) {
				t.Fatalf("validate = %v, want ErrBadHashCost", err)
			}
		})
	}
}
