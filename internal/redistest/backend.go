package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvAddr names the variable holding the address of a standalone Redis for
// integration tests (make test-integration sets it).
const EnvAddr = "RESONANCE_TEST_REDIS_ADDR"

// startTimeout bounds starting the shared cluster; on a loaded two-core
// machine redis-cli's join alone takes about two seconds.
const startTimeout = 30 * time.Second

// Backend is a Redis deployment a conformance case runs on.
type Backend struct {
	// Name is the subtest name: "redis" or "redis-cluster".
	Name string
	// Open returns a client of the deployment, closed when t ends, or skips
	// t saying why the deployment is not available.
	Open func(t testing.TB) redis.UniversalClient
}

// Backends returns the deployments a Redis store is tested on: the
// standalone Redis at EnvAddr, and the cluster shared by the test binary
// (SharedCluster; its package's TestMain must call Main).
func Backends() []Backend {
	return []Backend{
		{Name: "redis", Open: openStandalone},
		{Name: "redis-cluster", Open: openCluster},
	}
}

func openStandalone(t testing.TB) redis.UniversalClient {
	t.Helper()
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		t.Skip(EnvAddr + " not set")
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func openCluster(t testing.TB) redis.UniversalClient {
	t.Helper()
	rdb := SharedCluster(t).Client()
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// shared is the cluster of one test binary, started by the first test that
// asks for it and stopped by Main after the last.
var shared struct {
	mu      sync.Mutex
	inMain  bool
	dir     string
	cluster *Cluster
	err     error
}

// Main runs the tests of a package that uses SharedCluster (directly or
// through Backends) and then stops the cluster, if one was started. Call it
// from TestMain: os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	return code
}

// SharedCluster returns the cluster the tests of this binary share,
// starting it on the first call (a start takes a few seconds, too long to
// repeat per test). It skips t when redis-server or redis-cli is missing
// and fails it when the cluster does not come up. Tests keep apart by key
// prefix (KeyPrefix).
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("redistest: call redistest.Main from TestMain to use the shared cluster")
	}
	if shared.cluster == nil && shared.err == nil {
		shared.cluster, shared.err = startShared()
	}
	if errors.Is(shared.err, ErrUnavailable) {
		t.Skipf("no Redis Cluster: %v", shared.err)
	}
	if shared.err != nil {
		t.Fatalf("start Redis Cluster: %v", shared.err)
	}
	return shared.cluster
}

// startShared starts the shared cluster. Called with shared.mu held.
func startShared() (*Cluster, error) {
	dir, err := os.MkdirTemp("", "resonance-redis-cluster-")
	if err != nil {
		return nil, err
	}
	shared.dir = dir
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return StartCluster(ctx, dir)
}

// KeyPrefix returns a prefix no other test uses, "resonance-test-<hex>:",
// and deletes the keys under it on rdb when t ends.
func KeyPrefix(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	prefix := "resonance-test-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := DeleteKeys(ctx, rdb, prefix); err != nil {
			t.Errorf("cleanup %s*: %v", prefix, err)
		}
	})
	return prefix
}

// DeleteKeys deletes the keys under prefix. On a cluster it scans every
// master and deletes key by key: one DEL of keys in several slots would fail
// with CROSSSLOT.
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return deleteOnNode(ctx, m, prefix)
		})
	}
	return deleteOnNode(ctx, rdb, prefix)
}

func deleteOnNode(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil || len(keys) == 0 {
		return err
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
	return err
}
