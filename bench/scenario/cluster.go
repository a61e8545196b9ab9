package scenario

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Roles of the cluster, in the order Chaos kills them; roleAll is the whole
// system in one process on its embedded defaults.
const (
	roleTask    = "task"
	roleLogic   = "logic"
	roleGateway = "gateway"
	roleAll     = "all"
)

// readyTimeout bounds the wait for a started role to accept connections.
const readyTimeout = 30 * time.Second

// cluster runs the instances of one resonance deployment as child
// processes on loopback ports chosen at start, so that an instance restarts
// on the same addresses and its peers find it again.
type cluster struct {
	bin    string
	dir    string // scratch directory: data dirs and one log file per instance
	secret string
	env    ChaosServices
	prefix string
	// roleArgs are extra flags of every instance of a role.
	roleArgs map[string][]string

	instances  map[string]*instance // by name
	logicAddrs []string             // every logic instance, for the gateways
	// first is the first gateway; gatewayAddrs and gatewayAddr mirror its
	// client addresses (see instance) for Chaos, which runs one gateway.
	first        *instance
	gatewayAddrs [2]string
	gatewayAddr  string

	mu    sync.Mutex
	procs map[string]*proc // by instance name
}

// topology is how many instances of each role a cluster runs. all runs
// alone: a cluster of one process on embedded defaults.
type topology struct {
	logic, task, gateway, all int
}

// embedded says whether the cluster is the one process of topology.all,
// which needs none of the shared services.
func (t topology) embedded() bool { return t.all > 0 }

// instance is one process of the cluster and the addresses it keeps across
// restarts. Each has its own metrics port: the default one would be shared.
type instance struct {
	name string // its role, with "-<n>" when the role has several instances
	role string
	http string
	// listen is logic's Kitex address or the gateway's push address (all's
	// too, whose logic address is logic).
	listen string
	logic  string
	// clientAddrs are the client addresses a gateway alternates between at
	// each start, so that a restart never waits for its old port; clients
	// know both (SessionConfig.Fallbacks). client is the current one.
	clientAddrs [2]string
	client      string
	starts      int
}

// proc is one running role; exited is closed once it has been reaped.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// newClusterOf plans the instances of top and picks their ports; it starts
// nothing.
func newClusterOf(bin, dir, prefix string, env ChaosServices,
	top topology) (*cluster, error) {
	// Ports per instance: logic 2, task 1, gateway 4, all 5.
	ports, err := freePorts(2*top.logic + top.task + 4*top.gateway + 5*top.all)
	if err != nil {
		return nil, err
	}
	c := &cluster{
		bin: bin, dir: dir, env: env, prefix: prefix,
		secret:    "chaos-" + prefix + "-" + prefix,
		instances: make(map[string]*instance),
		procs:     make(map[string]*proc),
	}
	take := func() string {
		p := ports[0]
		ports = ports[1:]
		return p
	}
	for _, r := range []struct {
		role string
		n    int
	}{{roleLogic, top.logic}, {roleTask, top.task}, {roleGateway, top.gateway},
		{roleAll, top.all}} {
		for _, name := range instanceNames(r.role, r.n) {
			in := &instance{name: name, role: r.role, http: take()}
			switch r.role {
			case roleLogic:
				in.listen = take()
				c.logicAddrs = append(c.logicAddrs, in.listen)
			case roleGateway:
				in.listen, in.clientAddrs = take(), [2]string{take(), take()}
			case roleAll:
				in.logic, in.listen = take(), take()
				in.clientAddrs = [2]string{take(), take()}
			}
			c.instances[name] = in
		}
	}
	names := c.names(roleGateway)
	if top.embedded() {
		names = c.names(roleAll)
	}
	if len(names) > 0 {
		c.first = c.instances[names[0]]
		c.gatewayAddrs = c.first.clientAddrs
	}
	return c, nil
}

// instanceNames names the n instances of role: the role alone for one,
// "<role>-1".."<role>-n" for several.
func instanceNames(role string, n int) []string {
	if n == 1 {
		return []string{role}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", role, i+1)
	}
	return names
}

// freePorts returns n loopback addresses that were free a moment ago. All
// listeners stay open until every port is picked, so the n are distinct.
func freePorts(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("chaos: pick a port: %w", err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// args returns the command line of in. Gateways register in Redis and call
// every logic instance; all uses nothing but its data directory.
func (c *cluster) args(in *instance) []string {
	args := []string{in.role, "--prefix", c.prefix, "--data-dir", filepath.Join(c.dir, in.name),
		"--log-level", "warn"}
	if in.role == roleAll {
		args = append(args, "--addr", in.client, "--logic-listen", in.logic,
			"--push-listen", in.listen, "--web-listen", "")
		return append(args, c.roleArgs[in.role]...)
	}
	args = append(args, "--redis-addr", c.env.RedisAddr)
	switch in.role {
	case roleLogic:
		args = append(args, "--nats-url", c.env.NATSURL,
			"--db-driver", "mysql", "--db-dsn", c.env.MySQLDSN,
			"--db-table-prefix", c.prefix+"_", "--logic-listen", in.listen)
	case roleTask:
		args = append(args, "--nats-url", c.env.NATSURL)
	case roleGateway:
		args = append(args, "--addr", in.client, "--push-listen", in.listen,
			"--logic-addrs", strings.Join(c.logicAddrs, ","))
	}
	return append(args, c.roleArgs[in.role]...)
}

// start runs the instance named name and waits until it accepts
// connections.
func (c *cluster) start(ctx context.Context, name string) error {
	in := c.instances[name]
	if in == nil {
		return fmt.Errorf("%w: no instance %q", ErrBadConfig, name)
	}
	if in.role == roleGateway || in.role == roleAll {
		in.starts++
		in.client = in.clientAddrs[(in.starts-1)%2]
		if in == c.first {
			c.gatewayAddr = in.client
		}
	}
	if err := os.MkdirAll(filepath.Join(c.dir, name), 0o755); err != nil {
		return fmt.Errorf("chaos: start %s: %w", name, err)
	}
	logf, err := os.OpenFile(c.logPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: start %s: %w", name, err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(c.bin, c.args(in)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Settings every role may not define go through the environment, which
	// a role applies only to the flags it has: the shared token secret, and
	// a metrics port of its own.
	cmd.Env = append(os.Environ(), "RESONANCE_TOKEN_SECRET="+c.secret,
		"RESONANCE_HTTP_LISTEN="+in.http)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	return c.waitReady(ctx, in, p.exited)
}

// readyAddr is the address that answers once in is up. task serves only
// its metrics port.
func (in *instance) readyAddr() string {
	switch in.role {
	case roleLogic:
		return in.listen
	case roleGateway, roleAll:
		return in.client
	}
	return in.http
}

// waitReady polls in's address until it accepts a connection; an instance
// that exits first fails with its log's tail.
func (c *cluster) waitReady(ctx context.Context, in *instance, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		conn, err := net.DialTimeout("tcp", in.readyAddr(), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%w: %s exited at start:\n%s", errRoleDown, in.name,
				c.logTail(in.name))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s not ready within %s:\n%s", errRoleDown, in.name,
				readyTimeout, c.logTail(in.name))
		}
	}
}

// kill sends SIGKILL to the instance named name and waits for it to be gone.
func (c *cluster) kill(name string) {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop kills every instance, gateways first; it is safe to call more than
// once.
func (c *cluster) stop() {
	for _, role := range []string{roleGateway, roleTask, roleLogic, roleAll} {
		for _, name := range c.names(role) {
			c.kill(name)
		}
	}
}

// names lists the instances of role in name order.
func (c *cluster) names(role string) []string {
	var out []string
	for name, in := range c.instances {
		if in.role == role {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (c *cluster) logPath(name string) string {
	return filepath.Join(c.dir, name+".log")
}

// logTail returns the last lines of an instance's log, for failure reports.
func (c *cluster) logTail(name string) string {
	b, err := os.ReadFile(c.logPath(name))
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	lines = lines[max(0, len(lines)-20):]
	return "  " + strings.ReplaceAll(string(bytes.Join(lines, []byte("\n"))), "\n", "\n  ")
}

// buildBinary builds the resonance command of this module into dir.
func buildBinary(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("chaos: find the module: %w", err)
	}
	bin := filepath.Join(dir, "resonance")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = strings.TrimSpace(string(out))
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build: %w\n%s", err, msg)
	}
	return bin, nil
}
