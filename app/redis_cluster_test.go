package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/internal/redistest"
	"github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestStart_RedisClusterMode starts a lone gateway, which needs only Redis,
// on the test cluster: as a cluster it registers there; a standalone client
// on a cluster node is refused at start.
func TestStart_RedisClusterMode(t *testing.T) {
	cluster := redistest.SharedCluster(t)
	rdb := cluster.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	// The gateway's logic client dials lazily; point it at a port of ours.
	logicLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logicLn.Close() })

	cases := []struct {
		name    string
		addr    string
		flag    bool
		wantErr string // part of the start error; empty: starts
	}{
		{name: "all seeds", addr: strings.Join(cluster.Addrs, ",")},
		{name: "one seed and the flag", addr: cluster.Addrs[1], flag: true},
		{name: "one seed without the flag", addr: cluster.Addrs[0],
			wantErr: "is a Redis Cluster node: set --redis-cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t, RoleGateway)
			cfg.RedisAddr, cfg.RedisCluster = tc.addr, tc.flag
			cfg.LogicAddrs = []string{logicLn.Addr().String()}
			t.Cleanup(func() { deleteRedisKeys(t, cfg, cfg.Prefix+":") })
			if tc.wantErr != "" {
				startFails(t, cfg, tc.wantErr)
				return
			}
			startSystem(t, cfg)
			snap, err := registry.NewRedis(rdb, cfg.Prefix+":", 0).Snapshot(context.Background())
			if err != nil || len(snap.Live) != 1 {
				t.Fatalf("registry = %+v, %v; want the gateway live", snap, err)
			}
		})
	}
}

// startFails checks that cfg does not start, with ErrConfig saying want.
func startFails(t *testing.T, cfg Config, want string) {
	t.Helper()
	cfg.Gateway.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sys, err := Start(ctx, cfg, testLog(t))
	if err == nil {
		sys.Stop()
		t.Fatalf("started; want an error saying %q", want)
	}
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
		t.Fatalf("start error %v, want ErrConfig saying %q", err, want)
	}
}

// TestEndToEnd_ExternalRedisCluster runs each role alone on MariaDB, NATS
// and a Redis Cluster of three masters: chat and presence as on one Redis,
// then two users whose keys lie on different masters.
func TestEndToEnd_ExternalRedisCluster(t *testing.T) {
	dsn, natsURL := os.Getenv(envMySQL), os.Getenv(envNATS)
	if dsn == "" || natsURL == "" {
		t.Skipf("set %s and %s to run against real services", envMySQL, envNATS)
	}
	cluster := redistest.SharedCluster(t)
	svc := services{dsn: dsn, natsURL: natsURL, redisAddr: strings.Join(cluster.Addrs, ",")}
	addr, prefix := startExternal(t, svc, func(cfg *Config) {
		cfg.Task.PresenceWindow = 200 * time.Millisecond
		// The last case registers users until it finds one on another master.
		cfg.Logic.RegisterAddrLimit = ratelimit.Config{Burst: 100, Per: time.Millisecond}
	})
	rdb := cluster.Client()
	t.Cleanup(func() { _ = rdb.Close() })

	t.Run("chat", func(t *testing.T) { testChat(t, addr.String()) })
	t.Run("presence", func(t *testing.T) { testNotify(t, addr) })
	t.Run("routes and watches across masters", func(t *testing.T) {
		testAcrossMasters(t, addr.String(), rdb, prefix+":")
	})
}

// testAcrossMasters has alice, on two devices, watch and chat with bob,
// whose route key is on another master than alice's, and whose watchers'
// set is on another master than alice's watch set. It then reads what task
// read: both users' routes in one pipeline, and bob's watchers.
func testAcrossMasters(t *testing.T, addr string, rdb *redis.ClusterClient, prefix string) {
	suffix := time.Now().UnixNano() % 1_000_000_000
	aliceName := fmt.Sprintf("ann%d", suffix)
	aliceID := registerOnly(t, addr, aliceName)
	bobName, bobID := registerApart(t, addr, rdb, prefix, aliceID, fmt.Sprintf("ben%d-", suffix))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	alice := loginNotify(t, addr, aliceName, "phone")
	alicePC := loginNotify(t, addr, aliceName, "desktop")
	if _, err := alice.WatchPresence(ctx, []int64{bobID}); err != nil {
		t.Fatalf("alice watches bob: %v", err)
	}
	bobIs := func(online bool) func(*protocol.Notify) bool {
		return func(n *protocol.Notify) bool {
			return n.Presence != nil && n.Presence.UserId == bobID && n.Presence.Online == online
		}
	}
	bob := loginNotify(t, addr, bobName, "laptop")
	expectNotify(t, alice, "bob online", bobIs(true))

	ack, err := alice.Send(ctx, client.SendParams{ToUserID: bobID, Text: "across slots"})
	if err != nil {
		t.Fatalf("alice send: %v", err)
	}
	expectPush(t, bob.user, ack.MsgId, "across slots")
	expectPush(t, alicePC.user, ack.MsgId, "across slots")
	reply, err := bob.Send(ctx, client.SendParams{ToUserID: aliceID, Text: "got it"})
	if err != nil {
		t.Fatalf("bob send: %v", err)
	}
	expectPush(t, alice.user, reply.MsgId, "got it")
	expectPush(t, alicePC.user, reply.MsgId, "got it")

	routes, err := route.NewRedis(rdb, prefix, 0).Lookup(ctx, []int64{aliceID, bobID})
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	var devices []string
	for _, r := range routes {
		devices = append(devices, strconv.FormatInt(r.UserID, 10)+"/"+r.DeviceID)
	}
	slices.Sort(devices)
	want := []string{fmt.Sprint(aliceID, "/desktop"), fmt.Sprint(aliceID, "/phone"),
		fmt.Sprint(bobID, "/laptop")}
	slices.Sort(want)
	if !slices.Equal(devices, want) {
		t.Fatalf("routes %v, want %v", devices, want)
	}
	watchers, err := route.NewRedisWatches(rdb, prefix, 0).Watchers(ctx, bobID)
	if err != nil || !slices.Equal(watchers, []int64{aliceID}) {
		t.Fatalf("watchers of bob = %v, %v; want alice %d", watchers, err, aliceID)
	}

	bob.Close()
	expectNotify(t, alice, "bob offline", bobIs(false))
	expectNotify(t, alicePC, "bob offline", bobIs(false))
}

// registerApart registers users named namePrefix+<n> until one, bob, has
// his route key on another master than alice's route key, and his watchers'
// set on another master than alice's watch set, and returns him. Ids come
// from the database, so the test cannot pick them; with three masters a
// user qualifies with a chance near 4/9.
func registerApart(t *testing.T, addr string, rdb *redis.ClusterClient, prefix string,
	aliceID int64, namePrefix string) (string, int64) {
	t.Helper()
	key := func(kind string, id int64) string {
		return prefix + kind + ":" + strconv.FormatInt(id, 10)
	}
	for n := range 20 {
		name := namePrefix + strconv.Itoa(n)
		id := registerOnly(t, addr, name)
		if masterOf(t, rdb, key("route", aliceID)) != masterOf(t, rdb, key("route", id)) &&
			masterOf(t, rdb, key("watching", aliceID)) != masterOf(t, rdb, key("watchers", id)) {
			return name, id
		}
	}
	t.Fatal("none of 20 users has its keys on other masters than alice's")
	return "", 0
}

// masterOf returns the address of the master that holds key.
func masterOf(t *testing.T, rdb *redis.ClusterClient, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := rdb.MasterForKey(ctx, key)
	if err != nil {
		t.Fatalf("master of %s: %v", key, err)
	}
	return m.Options().Addr
}
