package redistest

import (
	"context"
	"os"
	"strconv"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestSharedCluster_SpreadsKeysAndDeletes checks what the Redis suites rely
// on: three masters that each own slots, and DeleteKeys clearing a prefix
// whose keys lie on all of them.
func TestSharedCluster_SpreadsKeysAndDeletes(t *testing.T) {
	c := SharedCluster(t)
	rdb := c.Client()
	t.Cleanup(func() { _ = rdb.Close() }) // after KeyPrefix's cleanup
	ctx := context.Background()
	prefix := KeyPrefix(t, rdb)

	owners := map[string]int{}
	for i := range 30 {
		key := prefix + strconv.Itoa(i)
		if err := rdb.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		m, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		owners[m.Options().Addr]++
	}
	if len(owners) != masters {
		t.Fatalf("30 keys on masters %v, want all %d", owners, masters)
	}

	if err := DeleteKeys(ctx, rdb, prefix); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if n, err := rdb.Exists(ctx, prefix+strconv.Itoa(i)).Result(); err != nil || n != 0 {
			t.Fatalf("key %d after DeleteKeys: exists %d, %v", i, n, err)
		}
	}
}
