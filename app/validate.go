package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/config"
	"github.com/resonance-im/resonance/internal/logx"
	"github.com/resonance-im/resonance/logic"
)

// Load defines role's flags on fs and returns the configuration they give:
// the flags' defaults overridden by the file, the environment and args, in
// that order (internal/config), then validated; an error names where a
// value it refuses came from when not from args. An argument that is not a
// flag is an error, not the end of the flags: whatever followed it would be
// dropped without a word. With -h it returns flag.ErrHelp.
func Load(fs *flag.FlagSet, role Role, args []string) (Config, error) {
	var c Config
	c.Bind(fs, role)
	origins, err := config.LoadOrigins(fs, args)
	if err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: %s takes flags only", fs.Arg(0), role)
	}
	// A value refused below may not be on the command line: the error
	// names the variable or file it came from.
	if err := checkNegative(fs); err != nil {
		return c, origins.Explain(err)
	}
	return c, origins.Explain(c.Validate())
}

// negativeMeans reports whether a negative value of the numeric flag name
// means something: no limit, never, off. Every other numeric flag refuses
// negative values, which would otherwise be taken for the default or worse.
func negativeMeans(name string) bool {
	switch name {
	case "max-conns", "accept-rate", "accept-addr-rate", "frame-rate", "notify-window",
		"presence-recheck":
		return true
	}
	return false
}

// checkNegative refuses a negative value of every numeric flag of fs but
// those of negativeMeans, whether it came from the file, the environment
// or the command line.
func checkNegative(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if err != nil || !ok || negativeMeans(f.Name) {
			return
		}
		negative := false
		switch v := g.Get().(type) {
		case int:
			negative = v < 0
		case int64:
			negative = v < 0
		case time.Duration:
			negative = v < 0
		}
		if negative {
			err = fmt.Errorf("%w: --%s %s: must not be negative", ErrConfig, f.Name, f.Value)
		}
	})
	return err
}

// Validate checks the whole configuration before anything starts, so that
// a mistake is reported at once instead of after the parts before it
// started: every setting the role uses, and the rules the parts' own
// constructors apply. Start calls it too.
func (c *Config) Validate() error {
	switch c.Role {
	case RoleAll, RoleGateway, RoleLogic, RoleTask:
	default:
		return fmt.Errorf("%w: unknown role %q", ErrConfig, c.Role)
	}
	if c.Role == RoleLogic || c.Role == RoleTask {
		// Alone, a role shares state with the others only through these.
		if c.NATSURL == "" {
			return fmt.Errorf("%w: %s needs --nats-url (embedded NATS is for all)", ErrConfig,
				c.Role)
		}
		if c.RedisAddr == "" {
			return fmt.Errorf("%w: %s needs --redis-addr (in-process routes are for all)",
				ErrConfig, c.Role)
		}
	}
	if c.DrainDelay < 0 {
		return fmt.Errorf("%w: --drain-delay %v: want 0 (the default) or more", ErrConfig,
			c.DrainDelay)
	}
	if c.MaxProcs < 0 {
		return fmt.Errorf("%w: --max-procs %d: want 0 (the default) or more", ErrConfig, c.MaxProcs)
	}
	if c.usesDataDir() && c.DataDir == "" {
		return fmt.Errorf("%w: --data-dir is empty (embedded NATS, SQLite or the token key "+
			"need it)", ErrConfig)
	}
	checks := []func() error{c.validateLog, c.validateAddrs, c.validateURLs, c.validateNotify,
		c.validateRedis, c.validateInternal, c.validateMaxBody, c.validateTimeouts,
		c.validateAdmin, c.validateParts}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// Log formats.
const (
	logConsole = "console"
	logJSON    = "json"
)

func (c *Config) validateLog() error {
	if _, err := logx.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("%w: --log-level %q: want %s", ErrConfig, c.LogLevel, logx.Levels)
	}
	if c.LogFormat != "" && !strings.EqualFold(c.LogFormat, logConsole) &&
		!strings.EqualFold(c.LogFormat, logJSON) {
		return fmt.Errorf("%w: --log-format %q: want %s or %s", ErrConfig, c.LogFormat, logConsole,
			logJSON)
	}
	return nil
}

// Logger returns the logger the configuration asks for, writing to w: JSON
// lines for a role alone and console lines for all unless --log-format says
// otherwise. Call it on a validated Config.
func (c *Config) Logger(w io.Writer) zerolog.Logger {
	level, _ := logx.ParseLevel(c.LogLevel)
	jsonLines := c.Role != RoleAll
	if c.LogFormat != "" {
		jsonLines = strings.EqualFold(c.LogFormat, logJSON)
	}
	return logx.New(w, level, !jsonLines)
}

// validateAddrs parses every host:port the role listens on or dials.
func (c *Config) validateAddrs() error {
	addrs := append(c.listenAddrs(),
		namedAddr{"--push-advertise", c.PushAdvertise, c.Role.Has(RoleGateway)})
	for _, a := range addrs {
		if !a.used || a.addr == "" {
			continue
		}
		if err := checkHostPort(a.addr); err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrConfig, a.flag, a.addr, err)
		}
	}
	if c.embedsNATS() && c.NATSListen != "" {
		host, _, _ := net.SplitHostPort(c.NATSListen)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%w: --nats-listen %q: the embedded NATS listens on a loopback IP "+
				"only (127.0.0.1, ::1)", ErrConfig, c.NATSListen)
		}
	}
	for _, a := range c.LogicAddrs {
		if err := checkHostPort(a); err != nil {
			return fmt.Errorf("%w: --logic-addrs %q: %v", ErrConfig, a, err)
		}
	}
	return nil
}

// namedAddr is an address of the configuration, the flag that sets it, and
// whether the role uses it.
type namedAddr struct {
	flag, addr string
	used       bool
}

// listenAddrs are the addresses the role listens on.
func (c *Config) listenAddrs() []namedAddr {
	return []namedAddr{
		{"--addr", c.Gateway.Addr, c.Role.Has(RoleGateway)},
		{"--logic-listen", c.LogicListen, c.Role.Has(RoleLogic)},
		{"--push-listen", c.PushListen, c.Role.Has(RoleGateway)},
		{"--http-listen", c.HTTPListen, true},
		{"--web-listen", c.WebListen, c.Role.Has(RoleGateway)},
		{"--nats-listen", c.NATSListen, c.embedsNATS()},
	}
}

// checkPortsFree binds, and lets go at once, every fixed port the role
// listens on, so that a port another process holds is reported before
// anything starts: the gateway's listener comes last, after the data dir,
// NATS, logic and task. Another process may still take a port in between;
// the listener's own error reports that.
func (c *Config) checkPortsFree() error {
	for _, a := range c.listenAddrs() {
		if !a.used || a.addr == "" || a.flag == "--web-listen" {
			continue // the web app's port taken is not fatal: the chat runs without it
		}
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "0" {
			continue
		}
		ln, err := net.Listen("tcp", a.addr)
		if opErr := (*net.OpError)(nil); errors.As(err, &opErr) {
			err = opErr.Err // without "listen tcp ADDR", which the flag names already
		}
		if err != nil {
			return fmt.Errorf("%w: %s %s: %v", ErrConfig, a.flag, a.addr, err)
		}
		_ = ln.Close()
	}
	return nil
}

// checkHostPort accepts host:port with a numeric port, as net.Listen and
// net.Dial will want it.
func checkHostPort(addr string) error {
	if _, err := strconv.ParseUint(addr, 10, 16); err == nil {
		// A port alone, as one moving a port may give it: Go's words for it
		// ("missing port in address") say the opposite of what is missing.
		return fmt.Errorf("a port alone; want host:port, 127.0.0.1:%s (this machine only) "+
			"or :%s (every interface)", addr, addr)
	}
	_, port, err := net.SplitHostPort(addr)
	if ae := (*net.AddrError)(nil); errors.As(err, &ae) {
		return errors.New(ae.Err) // the rest of its message repeats addr
	} else if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// validateURLs parses the URLs the role dials or hands out. Their values
// are named without credentials.
func (c *Config) validateURLs() error {
	if c.Role.Has(RoleLogic) || c.Role.Has(RoleTask) {
		for _, raw := range splitList(c.NATSURL) {
			if err := checkNATSURL(raw); err != nil {
				return fmt.Errorf("%w: --nats-url: %v", ErrConfig, err)
			}
		}
	}
	if c.Role.Has(RoleGateway) && c.WebWSURL != "" {
		u, err := url.Parse(c.WebWSURL)
		if err != nil || u.Scheme != "ws" && u.Scheme != "wss" || u.Host == "" {
			return fmt.Errorf("%w: --web-ws-url %q: want a ws:// or wss:// URL", ErrConfig,
				c.WebWSURL)
		}
	}
	return nil
}

// checkNATSURL accepts one server URL as the NATS client reads it: a
// nats, tls, ws or wss URL, or host:port alone.
func checkNATSURL(raw string) error {
	withScheme := raw
	if !strings.Contains(raw, "://") {
		withScheme = "nats://" + raw
	}
	u, err := url.Parse(withScheme)
	if err != nil {
		return errors.New("an entry is not a URL") // the value may hold a password
	}
	switch {
	case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
		return fmt.Errorf("%q: want a nats, tls, ws or wss URL", u.Redacted())
	case u.Hostname() == "":
		return fmt.Errorf("%q names no host", u.Redacted())
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return fmt.Errorf("%q: port %q is not a number from 0 to 65535", u.Redacted(), p)
		}
	}
	return nil
}

// validateMaxBody refuses a frame body limit that cannot carry the largest
// message logic takes: the gateway would close every client that sends one
// (and, below a few hundred bytes, every client at REGISTER). A gateway
// alone cannot see logic's --max-content and assumes logic's default.
func (c *Config) validateMaxBody() error {
	if !c.Role.Has(RoleGateway) {
		return nil
	}
	body := c.Gateway.MaxBody
	if body == 0 {
		body = codec.DefaultMaxBody
	}
	content, contentFlag := c.Logic.MaxContent, "--max-content"
	if !c.Role.Has(RoleLogic) {
		content, contentFlag = 0, "logic's default --max-content"
	}
	if content == 0 {
		content = logic.DefaultMaxContent
	}
	if need := logic.MaxMessageBody(content); body < need {
		return fmt.Errorf("%w: --max-body %d cannot carry a message of %s %d: "+
			"it needs %d bytes with the ids around it", ErrConfig, body, contentFlag, content, need)
	}
	return nil
}

// minClientTimeout is the shortest login timeout, heartbeat interval and
// heartbeat timeout the gateway takes from its flags. A client has a
// round trip and its own timer between frames: with --heartbeat-interval
// 1ms every client was closed HEARTBEAT_TIMEOUT before its first heartbeat,
// and a login timeout that short closes each connection before its LOGIN.
const minClientTimeout = time.Second

// validateTimeouts refuses client timeouts too short for any client to
// meet; zero takes the default.
func (c *Config) validateTimeouts() error {
	if !c.Role.Has(RoleGateway) {
		return nil
	}
	timeouts := []struct {
		flag string
		d    time.Duration
	}{
		{"--login-timeout", c.Gateway.LoginTimeout},
		{"--heartbeat-interval", c.Gateway.HeartbeatInterval},
		{"--heartbeat-timeout", c.Gateway.HeartbeatTimeout},
	}
	for _, t := range timeouts {
		if t.d > 0 && t.d < minClientTimeout {
			return fmt.Errorf("%w: %s %v: under %v, clients are closed before they can meet "+
				"it", ErrConfig, t.flag, t.d, minClientTimeout)
		}
	}
	return nil
}

// validateParts applies the rules of the parts' own constructors, so that
// they fail here and not once the parts before them are running.
func (c *Config) validateParts() error {
	parts := []struct {
		part     Role
		validate func() error
	}{
		{RoleLogic, c.Logic.Validate}, {RoleTask, c.Task.Validate},
		{RoleGateway, c.Gateway.Validate},
	}
	for _, p := range parts {
		if !c.Role.Has(p.part) {
			continue
		}
		if err := p.validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

// minAdminToken is the shortest --admin-token taken: 24 random bytes are
// beyond guessing, and a short word is refused before it is exposed.
const minAdminToken = 24

// validateAdmin refuses an admin token too short to be secret, one that no
// endpoint would take, and one sent in the clear beyond loopback unless
// the operator allows it.
func (c *Config) validateAdmin() error {
	token, from, err := c.readAdminToken()
	if err != nil {
		return err
	}
	c.adminToken = token
	if token == "" {
		return nil
	}
	if len(token) < minAdminToken {
		return fmt.Errorf("%w: %s is %d bytes, want at least %d "+
			"(e.g. openssl rand -base64 32)", ErrConfig, from, len(token), minAdminToken)
	}
	if c.HTTPListen == "" {
		return fmt.Errorf("%w: --admin-token needs --http-listen, which serves /admin/",
			ErrConfig)
	}
	// The bearer token crosses plain HTTP: beyond this host anyone on the
	// path reads it, and a lone logic's --http-listen binds every
	// interface by default, for metrics.
	if !loopbackAddr(c.HTTPListen) && !c.AdminAllowRemote {
		return fmt.Errorf("%w: --admin-token serves /admin/ on --http-listen %s, reachable "+
			"beyond this host over plain HTTP: listen on loopback (e.g. --http-listen "+
			"127.0.0.1:9100), or put TLS in front and pass --admin-allow-remote",
			ErrConfig, c.HTTPListen)
	}
	return nil
}

// readAdminToken returns the admin token, from --admin-token or the file
// of --admin-token-file, and names its source for errors.
func (c *Config) readAdminToken() (token, from string, err error) {
	if c.AdminTokenFile == "" {
		return c.AdminToken, "--admin-token", nil
	}
	from = "--admin-token-file " + c.AdminTokenFile
	if c.AdminToken != "" {
		return "", from, fmt.Errorf("%w: give --admin-token or --admin-token-file, not both",
			ErrConfig)
	}
	raw, err := os.ReadFile(c.AdminTokenFile)
	if err != nil {
		return "", from, fmt.Errorf("%w: --admin-token-file: %w", ErrConfig, err)
	}
	// A file written by echo or an editor ends in a newline.
	token = strings.TrimSpace(string(raw))
	if token == "" {
		return "", from, fmt.Errorf("%w: %s is empty", ErrConfig, from)
	}
	return token, from, nil
}

// SharedFileWarning returns a warning when the file at path may be read by
// its group or by others, or "" when only its owner may (or it cannot be
// seen). A warning, not a refusal: secrets mounted into a container are
// often 0644 or 0444, where no other user is.
func SharedFileWarning(path string) string {
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("%s is mode %04o: others on this host may read the admin token "+
		"(chmod 600 it)", path, info.Mode().Perm())
}
