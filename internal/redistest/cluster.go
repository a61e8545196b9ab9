// Package redistest gives tests the Redis deployments Resonance supports: a
// standalone Redis named by RESONANCE_TEST_REDIS_ADDR, and a Redis Cluster of
// three masters started from the installed redis-server. Only tests import it.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable means this machine cannot start a cluster: redis-server
// 7.0 or later (for cluster-port) or redis-cli is not on PATH.
var ErrUnavailable = errors.New("redistest: a Redis Cluster needs redis-server 7.0+ and redis-cli")

// masters is the size of a test cluster: three is the smallest that
// redis-cli --cluster create accepts.
const masters = 3

// Cluster is a running Redis Cluster of three masters without replicas,
// listening on loopback ports, its nodes' files in a directory of the
// caller's. Stop kills it.
type Cluster struct {
	// Addrs are the masters' client addresses, host:port, in no slot order.
	Addrs []string

	dir      string
	nodes    []*node
	stopOnce sync.Once
}

// node is one redis-server process; exited closes once it has been reaped.
type node struct {
	addr   string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartCluster starts three nodes under dir on free loopback ports, joins
// them with redis-cli --cluster create and returns once every node reports
// the cluster ok and all slots covered. On error, whatever had started is
// stopped. It returns ErrUnavailable when the tools are missing.
func StartCluster(ctx context.Context, dir string) (*Cluster, error) {
	if err := checkTools(ctx); err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	for i := range masters {
		n, err := startNode(ctx, dir, i)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		c.Addrs = append(c.Addrs, n.addr)
	}
	if err := c.create(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.waitOK(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Client returns a new cluster client of c; the caller closes it.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
}

// Stop kills every node and waits until each has exited. It is idempotent.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		for _, n := range c.nodes {
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	})
}

// checkTools finds redis-server and redis-cli, and checks that the server
// knows cluster-port (7.0), which frees the test from needing port+10000.
func checkTools(ctx context.Context) error {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	out, err := exec.CommandContext(ctx, "redis-server", "--version").Output()
	if err != nil {
		return fmt.Errorf("%w: redis-server --version: %v", ErrUnavailable, err)
	}
	// "Redis server v=7.0.15 sha=..."
	_, v, _ := strings.Cut(string(out), "v=")
	major, _, _ := strings.Cut(v, ".")
	if n, err := strconv.Atoi(major); err != nil || n < 7 {
		return fmt.Errorf("%w: found %s", ErrUnavailable, strings.TrimSpace(string(out)))
	}
	return nil
}

// startNode starts node i. A port picked free may be taken before
// redis-server binds it, so a node that exits at start is tried again on
// other ports.
func startNode(ctx context.Context, dir string, i int) (*node, error) {
	var lastErr error
	for attempt := range 3 {
		nodeDir := filepath.Join(dir, fmt.Sprintf("node%d-%d", i, attempt))
		n, err := tryNode(ctx, nodeDir)
		if err == nil {
			return n, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func tryNode(ctx context.Context, nodeDir string) (*node, error) {
	if err := os.MkdirAll(nodeDir, 0o700); err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	// No persistence: the cluster lives as long as one test binary.
	conf := fmt.Sprintf("bind 127.0.0.1\nport %d\ncluster-port %d\ncluster-enabled yes\n"+
		"cluster-config-file nodes.conf\ncluster-node-timeout 5000\nsave \"\"\n"+
		"appendonly no\ndaemonize no\nlogfile redis.log\n", ports[0], ports[1])
	if err := os.WriteFile(filepath.Join(nodeDir, "redis.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("redis-server", "redis.conf")
	cmd.Dir = nodeDir
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redistest: start redis-server: %w", err)
	}
	n := &node{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), dir: nodeDir,
		cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()
	if err := n.waitPing(ctx); err != nil {
		_ = cmd.Process.Kill()
		<-n.exited
		return nil, err
	}
	return n, nil
}

// waitPing polls the node until it answers PING.
func (n *node) waitPing(ctx context.Context) error {
	rdb := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	for {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("redistest: redis-server %s exited at start: %s", n.addr, n.log())
		case <-ctx.Done():
			return fmt.Errorf("redistest: redis-server %s: %v (%w)", n.addr, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// log returns the tail of the node's log, for an error message.
func (n *node) log() string {
	raw, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	raw = bytes.TrimSpace(raw)
	if len(raw) > 500 {
		raw = raw[len(raw)-500:]
	}
	return string(raw)
}

// freePorts returns count distinct loopback ports that were free a moment
// ago; all listeners are held until the last is bound so none repeats.
func freePorts(count int) ([]int, error) {
	var ports []int
	for range count {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// create assigns the slots evenly over the nodes and joins them.
func (c *Cluster) create(ctx context.Context) error {
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("redistest: redis-cli --cluster create: %w: %s", err, out)
	}
	return nil
}

// waitOK polls every node until it knows all nodes, has every slot covered
// and reports the cluster ok, so a client's first CLUSTER SLOTS, on any
// node, sees the whole cluster.
func (c *Cluster) waitOK(ctx context.Context) error {
	want := []string{"cluster_state:ok", "cluster_slots_ok:16384",
		"cluster_known_nodes:" + strconv.Itoa(masters)}
	for _, n := range c.nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.addr})
		err := pollInfo(ctx, rdb, want)
		rdb.Close()
		if err != nil {
			return fmt.Errorf("redistest: node %s: %w", n.addr, err)
		}
	}
	return nil
}

func pollInfo(ctx context.Context, rdb *redis.Client, want []string) error {
	for {
		info, err := rdb.ClusterInfo(ctx).Result()
		if err == nil && containsAll(info, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ok: %v, last CLUSTER INFO %q (%w)", err, info, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
