// Package app wires the roles into a running system: all three in one process
// on embedded defaults, or one role alone against MySQL, Redis and NATS. It is
// the only package that imports more than one role; the roles themselves meet
// only through kitex_gen, codec and internal.
package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/resonance-im/resonance/gateway"
	"github.com/resonance-im/resonance/internal/logx"
	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/logic"
	"github.com/resonance-im/resonance/task"
)

// Role names what a process runs.
type Role string

// The roles a process can run.
const (
	RoleAll     Role = "all"
	RoleGateway Role = "gateway"
	RoleLogic   Role = "logic"
	RoleTask    Role = "task"
)

// Has reports whether a process of role r runs the part named by part.
func (r Role) Has(part Role) bool { return r == RoleAll || r == part }

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("app: invalid configuration")

// Config is the whole configuration of a process. Zero values mean the
// defaults documented on each flag (see Bind).
type Config struct {
	Role      Role
	DataDir   string // embedded NATS, SQLite file and the generated token key; default "data"
	Prefix    string // Redis keys and NATS names; default "resonance"
	LogLevel  string // debug, info, warn, error; default info
	LogFormat string // "console" or "json"; default console for all, json for one role

	NATSURL string // external NATS; empty runs NATS embedded (all only)
	// NATSListen is the loopback address of the embedded NATS (all without
	// NATSURL); default 127.0.0.1:0, a free port picked at start.
	NATSListen string
	// RedisAddr is the external Redis of routes, presence watches and the
	// gateway registry: one address, or comma-separated seed addresses of a
	// Redis Cluster; empty keeps them in process (all only).
	RedisAddr string
	// RedisCluster treats a single RedisAddr as a seed of a Redis Cluster
	// (several addresses always are).
	RedisCluster  bool
	RedisPassword string
	RedisDB       int // database number of a standalone Redis; must be 0 for a cluster

	LogicListen   string   // logic's Kitex address; default 127.0.0.1:0 for all, :7100 alone
	LogicAddrs    []string // logic addresses a gateway calls; all: the local logic
	PushListen    string   // gateway's push Kitex address; default 127.0.0.1:0 for all, :7200
	PushAdvertise string   // push address task dials; default the bound push address

	// InternalSecret is required on every call to logic's Kitex port and to
	// the gateway's push port, and sent by their callers, the gateway's logic
	// client and task's push clients (internal/rpcauth); empty: no check.
	InternalSecret string
	// InsecureInternal lets logic's and the push port listen beyond
	// loopback without InternalSecret, for a private network the operator
	// trusts; validate refuses that otherwise.
	InsecureInternal bool

	// MaxProcs is the process's GOMAXPROCS; zero takes the GOMAXPROCS
	// environment variable, or else Procs' default.
	MaxProcs int

	HTTPListen string // metrics, health and pprof; empty disables
	Pprof      bool   // serve /debug/pprof/ on HTTPListen
	// AdminToken turns on the operator's /admin/ endpoints on HTTPListen in
	// a process that runs logic (suspend, reset a password, sign out; see
	// admin.go); a request must carry it as "Authorization: Bearer
	// <token>". At least minAdminToken bytes; empty (the default): off.
	AdminToken string
	// AdminTokenFile names a file holding AdminToken instead (its
	// surrounding white space trimmed), so that the token is in neither
	// the process list nor its environment; not together with AdminToken.
	AdminTokenFile string
	// AdminAllowRemote lets /admin/ be served on an HTTPListen beyond
	// loopback. The token travels in the clear over plain HTTP, so
	// validateAdmin refuses that otherwise; set it only behind a TLS proxy.
	AdminAllowRemote bool
	// adminToken is the token in effect, AdminToken's or the file's; set
	// by Validate.
	adminToken string
	// AfterRestore says the store was just restored from a backup: before
	// logic serves it, every conversation's seqs move past those of the
	// messages lost with it (logic.MoveSeqsPastRestore). For one start only;
	// a server started on a directory `resonance backup` made does it by
	// itself (restoreMark).
	AfterRestore bool
	// DrainDelay is how long Stop keeps serving after /readyz turns
	// unready, before the gateway sends its clients away: time for a load
	// balancer's readiness probe to take the instance out of rotation, so
	// that no new client lands on it while it drains. Default 0.
	DrainDelay time.Duration

	// WebListen serves the browser chat app (clients/web) on this address;
	// default 127.0.0.1:8080 for all, empty (off) for a lone gateway. When
	// the gateway has an Origin allow-list, the app's own origins are added
	// to it (webui.Origins). A port in use is logged, not fatal: the app is
	// a convenience beside the gateway.
	WebListen string
	// WebWSURL is the WebSocket URL the web app is told to dial; default
	// ws://<gateway host>:<gateway port>/, with the page's host for a
	// gateway that binds every interface.
	WebWSURL string

	Logic   logic.Config
	Gateway gateway.Config
	Task    task.Config
}

// Bind defines the flags of role on fs, writing into c. Only the settings the
// role uses are defined, so `resonance gateway --help` lists gateway settings.
func (c *Config) Bind(fs *flag.FlagSet, role Role) {
	c.Role = role
	fs.StringVar(&c.DataDir, "data-dir", "data", dataDirUsage(role))
	prefixUsage := "prefix of Redis keys and NATS stream names"
	if role == RoleGateway {
		prefixUsage = "prefix of the gateway registry's Redis key"
	}
	fs.StringVar(&c.Prefix, "prefix", "resonance", prefixUsage)
	fs.StringVar(&c.LogLevel, "log-level", "info", logx.Levels+" (any case)")
	fs.StringVar(&c.LogFormat, "log-format", "",
		"console or json (default "+defaultFor(role, logConsole, logJSON)+")")
	fs.StringVar(&c.HTTPListen, "http-listen", defaultFor(role, "127.0.0.1:9100", "0.0.0.0:9100"),
		"address of /metrics, /healthz and /readyz; empty disables")
	fs.BoolVar(&c.Pprof, "pprof", false,
		"serve /debug/pprof/ on --http-listen, to clients on this host only (tunnel to it)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 0, "how long to go on serving at shutdown "+
		"after /readyz turns unready, for load balancers to stop routing here (counts in "+
		"the shutdown's grace period)")
	procsUsage := "the CPUs plus 4"
	if role.Has(RoleGateway) {
		procsUsage = "the CPUs plus one per event loop (one per CPU) plus 4"
	}
	fs.IntVar(&c.MaxProcs, "max-procs", 0, "Go processors (GOMAXPROCS) (default: the GOMAXPROCS "+
		"environment variable, or else "+procsUsage+", for the threads that block in system calls)")

	switch role {
	case RoleAll:
		fs.StringVar(&c.NATSURL, "nats-url", "", "external NATS URL; empty embeds NATS")
		fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:0",
			"loopback address of the embedded NATS (without --nats-url); port 0 picks a free one")
	case RoleLogic, RoleTask:
		fs.StringVar(&c.NATSURL, "nats-url", "", "NATS URL, or comma-separated URLs (required)")
	}
	bindRedis(fs, c, role)
	// Every role serves or calls an internal Kitex port.
	fs.StringVar(&c.InternalSecret, "internal-secret", "",
		"shared secret of the internal Kitex calls (gateway to logic, task to gateway); "+
			"required when logic's or the push port listens beyond loopback")
	fs.BoolVar(&c.InsecureInternal, "insecure-internal", false,
		"allow logic's and the push port beyond loopback without --internal-secret "+
			"(only on a private network you trust)")
	if role.Has(RoleLogic) {
		bindLogic(fs, c, role)
	}
	if role.Has(RoleGateway) {
		bindGateway(fs, c, role)
	}
	bindEphemeral(fs, c, role)
	if role.Has(RoleTask) {
		fs.IntVar(&c.Task.Workers, "task-workers", 0,
			"push workers; a conversation's events go to one, in order (default 64)")
		fs.DurationVar(&c.Task.LeaseTTL, "task-lease-ttl", 0,
			"how long a dead instance keeps its partitions; same on all (default 10s)")
		fs.IntVar(&c.Task.MaxDeliver, "task-max-deliver", 0, "delivery attempts before dead-lettering (default 10)")
		fs.DurationVar(&c.Task.PushTimeout, "task-push-timeout", 0,
			"timeout of one push to a gateway, waiting behind its calls in flight included "+
				"(default 3s)")
		fs.DurationVar(&c.Task.RegistryRefresh, "task-registry-refresh", 0,
			"period of reading the gateway registry (default 2s)")
		fs.Func("task-reorder-window", "how long an event ahead of its conversation's seq "+
			"waits for the missing ones before it is pushed anyway (default 200ms; 0 disables)",
			func(s string) error {
				d, err := time.ParseDuration(s)
				if err != nil || d < 0 {
					return fmt.Errorf("want a duration such as 200ms, got %q", s)
				}
				if d == 0 {
					d = -1 // task.Config: zero takes the default, negative is off
				}
				c.Task.ReorderWindow = d
				return nil
			})
		bindNotify(fs, c, role)
	}
}

// dataDirUsage says what role keeps in the data dir. Roles that keep
// nothing there still take the flag, so that one configuration file or
// environment can serve every role.
func dataDirUsage(role Role) string {
	switch role {
	case RoleAll:
		return "directory of embedded NATS, the SQLite file and the generated token key; " +
			"one process at a time"
	case RoleLogic:
		return "directory of the SQLite file (unless --db-dsn) and the generated token key " +
			"(unless --token-secret); one process at a time"
	}
	return "not used by " + string(role) + " alone (accepted so that one configuration serves " +
		"every role)"
}

func bindLogic(fs *flag.FlagSet, c *Config, role Role) {
	fs.StringVar(&c.AdminToken, "admin-token", "",
		"bearer token of the operator's /admin/ endpoints on --http-listen (at least 24 bytes; "+
			"empty disables them)")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", "",
		"file holding --admin-token instead, kept out of the process list (mode 0600)")
	fs.BoolVar(&c.AdminAllowRemote, "admin-allow-remote", false,
		"serve /admin/ on an --http-listen beyond loopback: the token travels in the clear, so "+
			"put a TLS proxy in front")
	fs.BoolVar(&c.AfterRestore, "after-restore", false, "the store was just restored from a "+
		"backup: move every conversation's seqs past the messages lost with it, which devices "+
		"may hold (this start only; a data dir made by resonance backup needs no flag)")
	fs.StringVar(&c.LogicListen, "logic-listen", defaultFor(role, "127.0.0.1:0", "0.0.0.0:7100"),
		"address of logic's Kitex service")
	fs.StringVar(&c.Logic.DBDriver, "db-driver", "sqlite", "sqlite or mysql")
	fs.StringVar(&c.Logic.DBDSN, "db-dsn", "", "SQLite file (default <data-dir>/resonance.db) or MySQL DSN")
	fs.StringVar(&c.Logic.TablePrefix, "db-table-prefix", "", "prefix of every table name")
	fs.StringVar(&c.Logic.TokenSecret, "token-secret", "",
		"HMAC key of tokens, the same on every logic instance (default: generated into <data-dir>)")
	fs.DurationVar(&c.Logic.TokenTTL, "token-ttl", 0, "access token lifetime (default 1h)")
	fs.DurationVar(&c.Logic.RefreshTTL, "refresh-ttl", 0, "refresh token lifetime (default 720h)")
	fs.IntVar(&c.Logic.MaxContent, "max-content", 0, "largest message content in bytes (default 16384)")
	fs.IntVar(&c.Logic.MaxGroupMembers, "max-group-members", 0, "largest group, owner included (default 500)")
	fs.DurationVar(&c.Logic.RecallWindow, "recall-window", 0, "how long a sender may recall a message (default 2m)")
	fs.DurationVar(&c.Logic.EditWindow, "edit-window", 0, "how long a sender may edit a message (default 24h)")
	fs.StringVar(&c.Logic.FileDir, "file-dir", "",
		"directory of uploaded files' bytes (default: <dir of the SQLite file>/files on SQLite; "+
			"in the database, in chunks, on MySQL)")
	fs.Int64Var(&c.Logic.MaxFileSize, "max-file-size", 0,
		"largest upload in bytes (default 26214400)")
	fs.IntVar(&c.Logic.MaxUploads, "max-uploads", 0, "unfinished uploads per user (default 10)")
	fs.DurationVar(&c.Logic.FileRetention, "file-retention", 0,
		"how long unfinished uploads and files no message names are kept (default 24h)")
	limitFlag(fs, &c.Logic.UploadLimit, "upload-limit", "uploads started per user (default 20/3s)")
	limitFlag(fs, &c.Logic.MessageSearchLimit, "message-search-limit",
		"message search pages per user (default 20/1s)")
	limitFlag(fs, &c.Logic.PinLimit, "pin-limit", "pins and unpins per user (default 20/3s)")
	limitFlag(fs, &c.Logic.LoginAccountLimit, "login-account-limit",
		"password attempts per username: BURST/PERIOD, one back per PERIOD (default 10/30s)")
	limitFlag(fs, &c.Logic.LoginAddrLimit, "login-addr-limit",
		"password attempts per client address (default 30/2s)")
	limitFlag(fs, &c.Logic.RegisterAddrLimit, "register-addr-limit",
		"registrations per client address (default 30/10s)")
	fs.IntVar(&c.Logic.HashMemoryKiB, "hash-memory-kib", 0,
		"argon2id memory of a new password hash in KiB (default 19456); lower is for benchmarks "+
			"and tests only")
	fs.IntVar(&c.Logic.HashTime, "hash-time", 0,
		"argon2id passes of a new password hash (default 2); lower is for benchmarks and tests only")
}

func bindGateway(fs *flag.FlagSet, c *Config, role Role) {
	fs.StringVar(&c.Gateway.Addr, "addr", "0.0.0.0:7000", "client address (TCP)")
	fs.StringVar(&c.PushListen, "push-listen", defaultFor(role, "127.0.0.1:0", "0.0.0.0:7200"),
		"address of the gateway's push Kitex service")
	fs.StringVar(&c.PushAdvertise, "push-advertise", "", "push address that task dials (default the bound one)")
	fs.DurationVar(&c.Gateway.RegisterTTL, "register-ttl", 0,
		"lifetime of the push address in the gateway registry, refreshed every third (default 15s)")
	if role == RoleGateway {
		fs.Func("logic-addrs", "comma-separated logic addresses (default 127.0.0.1:7100)", func(s string) error {
			c.LogicAddrs = splitList(s)
			return nil
		})
	}
	fs.DurationVar(&c.Gateway.LoginTimeout, "login-timeout", 0,
		"time to log in after connecting (default 10s)")
	fs.DurationVar(&c.Gateway.HeartbeatInterval, "heartbeat-interval", 0,
		"heartbeat period told to clients (default 30s)")
	fs.DurationVar(&c.Gateway.HeartbeatTimeout, "heartbeat-timeout", 0,
		"silence that closes a connection (default 3x interval)")
	fs.IntVar(&c.Gateway.MaxBody, "max-body", 0, "largest frame body in bytes (default 65536)")
	fs.IntVar(&c.Gateway.Workers, "gateway-workers", 0, "concurrent logic calls (default 1024)")
	fs.IntVar(&c.Gateway.MaxPending, "max-pending", 0, "requests queued per connection (default 64)")
	fs.IntVar(&c.Gateway.OutboundHighWater, "outbound-high-water", 0,
		"bytes pending to a client before it is closed as a slow consumer (default 4 MiB)")
	fs.IntVar(&c.Gateway.MaxConns, "max-conns", 0, "open connection cap, negative for none (default 100000)")
	fs.IntVar(&c.Gateway.AcceptRate, "accept-rate", 0,
		"new connections per second, negative for no limit (default 5000)")
	fs.IntVar(&c.Gateway.AcceptAddrRate, "accept-addr-rate", 0,
		"new connections per second from one client address (IPv6: one /64), negative for "+
			"no limit (default a tenth of --accept-rate)")
	fs.IntVar(&c.Gateway.FrameRate, "frame-rate", 0,
		"frames per second per connection, negative for no limit (default 200)")
	fs.Func("allowed-origins", "comma-separated WebSocket Origin allow-list (default: any); "+
		"the web app's own origins are added to a non-empty list",
		func(s string) error {
			c.Gateway.AllowedOrigins = splitList(s)
			return nil
		})
	fs.Func("trusted-proxies", "comma-separated load balancer addresses or prefixes (CIDR) "+
		"whose PROXY protocol header or X-Forwarded-For names the client (default: none)",
		func(s string) error {
			prefixes, err := parsePrefixes(splitList(s))
			c.Gateway.TrustedProxies = prefixes
			return err
		})
	fs.StringVar(&c.WebListen, "web-listen", defaultFor(role, "127.0.0.1:8080", ""),
		"address of the browser chat app; empty disables")
	fs.StringVar(&c.WebWSURL, "web-ws-url", "",
		"gateway WebSocket URL the web app dials (default ws://<gateway host>:<gateway port>/, "+
			"the page's host when --addr binds every interface)")
}

// limitFlag defines a rate limit flag written as BURST/PERIOD, e.g. 30/2s:
// a burst of 30, then one more every 2s. Load tests from one address raise
// it (e.g. 100000/1ms).
func limitFlag(fs *flag.FlagSet, dst *ratelimit.Config, name, usage string) {
	fs.Func(name, usage, func(s string) error {
		burst, per, ok := strings.Cut(s, "/")
		n, err := strconv.Atoi(burst)
		if !ok || err != nil || n <= 0 {
			return fmt.Errorf("want BURST/PERIOD such as 30/2s, got %q", s)
		}
		d, err := time.ParseDuration(per)
		if err != nil || d <= 0 {
			return fmt.Errorf("want BURST/PERIOD such as 30/2s, got %q", s)
		}
		dst.Burst, dst.Per = n, d
		return nil
	})
}

func defaultFor(role Role, all, alone string) string {
	if role == RoleAll {
		return all
	}
	return alone
}

// parsePrefixes parses addresses and CIDR prefixes; an address stands for
// itself alone.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("want an address or CIDR prefix such as 10.0.0.0/8, got %q", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// usesDataDir reports whether the process keeps anything in DataDir:
// embedded NATS, logic's default SQLite file, or the generated token key.
// Only then does it create and lock the dir.
func (c *Config) usesDataDir() bool {
	if c.NATSURL == "" && (c.Role.Has(RoleLogic) || c.Role.Has(RoleTask)) {
		return true // embedded NATS
	}
	if !c.Role.Has(RoleLogic) {
		return false
	}
	sqlite := c.Logic.DBDriver == "" || c.Logic.DBDriver == logic.DriverSQLite
	return (sqlite && c.Logic.DBDSN == "") || c.Logic.TokenSecret == ""
}

// embedsNATS reports whether the process runs NATS itself: all without
// --nats-url (validate refuses a role alone without it).
func (c *Config) embedsNATS() bool {
	return c.Role == RoleAll && c.NATSURL == ""
}

// validateInternal refuses an internal Kitex port open beyond loopback
// without the secret: logic trusts the session a caller sends, so whoever
// reaches its port could send as any user, and whoever reaches a push port
// could write to any connection.
func (c *Config) validateInternal() error {
	if c.InternalSecret != "" || c.InsecureInternal {
		return nil
	}
	check := func(flag, addr string) error {
		if addr == "" || loopbackAddr(addr) {
			return nil
		}
		return fmt.Errorf("%w: %s %s is reachable beyond this host: set --internal-secret "+
			"(the same on every role), listen on loopback, or pass --insecure-internal",
			ErrConfig, flag, addr)
	}
	if c.Role.Has(RoleLogic) {
		if err := check("--logic-listen", c.LogicListen); err != nil {
			return err
		}
	}
	if c.Role.Has(RoleGateway) {
		return check("--push-listen", c.PushListen)
	}
	return nil
}

// ownInternalSecret gives all on embedded NATS its own random internal
// secret when the operator gave none (and did not pass --insecure-internal).
// Its roles call one another's ports in this process only, so none outside
// needs it; without it any local user who found the loopback ports could
// send as any user through logic's, or write to any connection through the
// push port. On an external NATS another process's task may push to this
// gateway, so the operator's --internal-secret (or none) stands.
func (c *Config) ownInternalSecret() error {
	if !c.embedsNATS() || c.InternalSecret != "" || c.InsecureInternal {
		return nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("%w: internal secret: %v", ErrConfig, err)
	}
	c.InternalSecret = hex.EncodeToString(b)
	return nil
}

// loopbackAddr reports whether a listen address binds loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false // reported by validate
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// shutdownTimeout bounds the whole ordered shutdown.
const shutdownTimeout = 15 * time.Second
