package scenario

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Roles of the cluster, in the order Chaos kills them.
const (
	roleTask    = "task"
	roleLogic   = "logic"
	roleGateway = "gateway"
)

// readyTimeout bounds the wait for a started role to accept connections.
const readyTimeout = 30 * time.Second

// cluster runs the roles of one resonance deployment as child processes on
// loopback ports chosen at start, so that a role restarts on the same
// addresses and its peers find it again.
type cluster struct {
	bin    string
	dir    string // scratch directory: data dirs and one log file per role
	secret string
	env    ChaosServices
	prefix string

	logicAddr, pushAddr string
	// gatewayAddrs are the client addresses the gateway alternates between
	// at each start: gnet binds without SO_REUSEADDR, so a killed gateway's
	// port stays taken while its connections sit in TIME_WAIT (a minute).
	// Clients know both (SessionConfig.Fallbacks).
	gatewayAddrs [2]string
	gatewayAddr  string // the current one
	// httpAddrs gives every role its own metrics port: the default one would
	// be shared by all three processes.
	httpAddrs map[string]string

	gatewayStarts int

	mu    sync.Mutex
	procs map[string]*proc
}

// proc is one running role; exited is closed once it has been reaped.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func newCluster(bin, dir, prefix string, env ChaosServices) (*cluster, error) {
	ports, err := freePorts(7)
	if err != nil {
		return nil, err
	}
	return &cluster{
		bin: bin, dir: dir, env: env, prefix: prefix,
		secret:       "chaos-" + prefix + "-" + prefix,
		logicAddr:    ports[0],
		gatewayAddrs: [2]string{ports[1], ports[6]},
		pushAddr:     ports[2],
		httpAddrs: map[string]string{roleLogic: ports[3], roleTask: ports[4],
			roleGateway: ports[5]},
		procs: make(map[string]*proc),
	}, nil
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

// args returns the command line of role.
func (c *cluster) args(role string) []string {
	args := []string{role, "--prefix", c.prefix, "--data-dir", filepath.Join(c.dir, role),
		"--log-level", "warn"}
	switch role {
	case roleLogic:
		args = append(args, "--nats-url", c.env.NATSURL, "--redis-addr", c.env.RedisAddr,
			"--db-driver", "mysql", "--db-dsn", c.env.MySQLDSN,
			"--db-table-prefix", c.prefix+"_", "--logic-listen", c.logicAddr)
	case roleTask:
		args = append(args, "--nats-url", c.env.NATSURL, "--redis-addr", c.env.RedisAddr)
	case roleGateway:
		args = append(args, "--addr", c.gatewayAddr, "--push-listen", c.pushAddr,
			"--logic-addrs", c.logicAddr)
	}
	return args
}

// start runs role and waits until it accepts connections.
func (c *cluster) start(ctx context.Context, role string) error {
	if role == roleGateway {
		c.gatewayStarts++
		c.gatewayAddr = c.gatewayAddrs[(c.gatewayStarts-1)%2]
	}
	if err := os.MkdirAll(filepath.Join(c.dir, role), 0o755); err != nil {
		return fmt.Errorf("chaos: start %s: %w", role, err)
	}
	logf, err := os.OpenFile(c.logPath(role), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: start %s: %w", role, err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(c.bin, c.args(role)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Settings every role may not define go through the environment, which
	// a role applies only to the flags it has: the shared token secret, and
	// a metrics port of its own.
	cmd.Env = append(os.Environ(), "RESONANCE_TOKEN_SECRET="+c.secret,
		"RESONANCE_HTTP_LISTEN="+c.httpAddrs[role])
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start %s: %w", role, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	c.mu.Lock()
	c.procs[role] = p
	c.mu.Unlock()
	return c.waitReady(ctx, role, p.exited)
}

// readyAddr is the address that answers once role is up. task serves only
// its metrics port.
func (c *cluster) readyAddr(role string) string {
	switch role {
	case roleLogic:
		return c.logicAddr
	case roleGateway:
		return c.gatewayAddr
	}
	return c.httpAddrs[role]
}

// waitReady polls role's address until it accepts a connection; a role
// that exits first fails with its log's tail.
func (c *cluster) waitReady(ctx context.Context, role string, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		conn, err := net.DialTimeout("tcp", c.readyAddr(role), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%w: %s exited at start:\n%s", errRoleDown, role, c.logTail(role))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s not ready within %s:\n%s", errRoleDown, role,
				readyTimeout, c.logTail(role))
		}
	}
}

// kill sends SIGKILL to role and waits for it to be gone.
func (c *cluster) kill(role string) {
	c.mu.Lock()
	p := c.procs[role]
	delete(c.procs, role)
	c.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop kills every role; it is safe to call more than once.
func (c *cluster) stop() {
	for _, role := range []string{roleGateway, roleTask, roleLogic} {
		c.kill(role)
	}
}

func (c *cluster) logPath(role string) string {
	return filepath.Join(c.dir, role+".log")
}

// logTail returns the last lines of role's log, for failure reports.
func (c *cluster) logTail(role string) string {
	b, err := os.ReadFile(c.logPath(role))
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
