// Command resonance runs the Resonance IM server: all roles in one process
// (the default), or one role alone, plus a terminal chat client.
//
//	resonance [all]   gateway, logic and task on embedded NATS, SQLite and routes
//	resonance gateway client connections (TCP) and the push service
//	resonance logic   accounts, messages and sync (Kitex)
//	resonance task    delivery from NATS JetStream to gateways
//	resonance chat    a terminal chat client
//	resonance probe   GET a health URL, exit 0 on 200 (container health checks)
//	resonance backup  copy an embedded data dir while the server runs
//	resonance version print the build: version, VCS revision and time, Go
//	resonance admin   suspend, reset or sign out an account (the /admin/ endpoints)
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/app"
	"github.com/resonance-im/resonance/client/chat"
	"github.com/resonance-im/resonance/internal/buildinfo"
	"github.com/resonance-im/resonance/internal/config"
	"github.com/resonance-im/resonance/internal/logx"
)

const usage = `usage: resonance [command] [flags]

commands:
  all       run gateway, logic and task in one process (default)
  gateway   run the gateway alone
  logic     run logic alone
  task      run task alone
  chat      terminal chat client (resonance chat --help)
  probe     GET a health URL, exit 0 on 200 (resonance probe [URL])
  backup    copy an embedded data dir while the server runs (resonance backup --to DIR)
  version   print the build: version, revision, time and Go version
  admin     show, suspend, unsuspend, reset-password or sign-out USERNAME (resonance admin -h)

Every flag of all, gateway, logic and task can also be set as RESONANCE_<FLAG>
in the environment (dashes as underscores) or as a key of the YAML file given
by --config; chat reads only its password (RESONANCE_PASSWORD) and the
server's address (RESONANCE_ADDR) from the environment, admin only its token
(RESONANCE_ADMIN_TOKEN_FILE, or else RESONANCE_ADMIN_TOKEN).
Run 'resonance help <command>' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// stopSignals end the servers and the chat client in an orderly way.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

func run(args []string, stderr io.Writer) int {
	cmd := "all"
	// A lone -h or --help asks what the command can do, so it lists the
	// commands (chat among them) rather than the flags of the default one.
	loneHelp := len(args) == 1 && (args[0] == "-h" || args[0] == "--help")
	loneVersion := len(args) == 1 && (args[0] == "-version" || args[0] == "--version")
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || loneHelp || loneVersion) {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "all", "gateway", "logic", "task":
		return serve(app.Role(cmd), args, stderr)
	case "chat":
		ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
		defer stop()
		if err := chat.Run(ctx, args, os.Stdin, os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
			if !errors.Is(err, chat.ErrReported) { // else printed already
				fmt.Fprintln(stderr, err)
			}
			return 1
		}
		return 0
	case "probe":
		return probe(args, stderr)
	case "backup":
		return backup(args, stderr)
	case "version", "-version", "--version":
		return version(args, stderr)
	case "admin":
		return admin(args, os.Stdout, stderr)
	case "help", "-h", "--help":
		return help(args, stderr)
	default:
		fmt.Fprintf(stderr, "resonance: unknown command %q\n"+
			"run 'resonance help' for commands\n", cmd)
		return 2
	}
}

// version prints the build. It takes no flags but -h, which every command
// the usage lists answers ('resonance help version').
func version(args []string, stderr io.Writer) int {
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Fprintln(stderr, "usage: resonance version\n\n"+
			"prints the build: version, revision, time and Go version")
		return 0
	case len(args) > 0:
		fmt.Fprintf(stderr, "resonance version: unexpected argument %q\n", args[0])
		return 2
	}
	fmt.Fprintln(os.Stdout, "resonance", buildinfo.Read())
	return 0
}

// help prints the commands, or with a command's name that command's flags.
func help(args []string, stderr io.Writer) int {
	switch {
	case len(args) == 0 || len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Fprint(stderr, usage)
		return 0
	case len(args) == 1 && args[0] != "help" && !strings.HasPrefix(args[0], "-"):
		return run([]string{args[0], "-h"}, stderr)
	}
	fmt.Fprintf(stderr, "resonance help: unexpected argument %q: help takes one command's name\n",
		args[len(args)-1])
	return 2
}

// everyRoleFlags returns a flag set of the flags of fs and of every role: a
// RESONANCE_ variable this role does not read is another role's, not a
// misspelling, when one environment serves them all (deploy/k8s's
// ConfigMap).
func everyRoleFlags(fs *flag.FlagSet) *flag.FlagSet {
	every := flag.NewFlagSet("every role", flag.ContinueOnError)
	add := func(f *flag.Flag) {
		if every.Lookup(f.Name) == nil {
			every.Var(f.Value, f.Name, f.Usage)
		}
	}
	fs.VisitAll(add)
	for _, role := range []app.Role{app.RoleAll, app.RoleGateway, app.RoleLogic, app.RoleTask} {
		rf := flag.NewFlagSet(string(role), flag.ContinueOnError)
		var cfg app.Config
		cfg.Bind(rf, role)
		rf.VisitAll(add)
	}
	return every
}

func serve(role app.Role, args []string, stderr io.Writer) int {
	fs := newCommandFlags(string(role), "[flags]")
	cfg, err := app.Load(fs.FlagSet, role, args)
	if !errors.Is(err, flag.ErrHelp) {
		// Before a failure too, which a misspelled variable may explain.
		for _, w := range config.UnknownEnv(everyRoleFlags(fs.FlagSet), os.Environ()) {
			fmt.Fprintf(stderr, "resonance %s: warning: %s\n", role, w)
		}
	}
	if code, done := fs.failed(err, stderr); done {
		return code
	}
	log := cfg.Logger(stderr)
	logx.RouteKitex(log)
	setProcs(&cfg, log)

	// SIGHUP too, as a closed terminal sends: Go's default would end the
	// process at once, without the shutdown that loses nothing.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	sys, err := app.Start(startCtx, cfg, log)
	cancel()
	if err != nil {
		log.Error().Err(err).Str("role", string(role)).Msg("start failed")
		return 1
	}
	code := 0
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case err := <-sys.Errors():
		log.Error().Err(err).Msg("a part stopped; shutting down")
		code = 1
	}
	sys.Stop()
	log.Info().Msg("stopped")
	return code
}

// setProcs sets GOMAXPROCS as cfg.Procs says (see app/procs.go), unless
// the GOMAXPROCS environment variable does and --max-procs is not given.
func setProcs(cfg *app.Config, log zerolog.Logger) {
	fromEnv := os.Getenv("GOMAXPROCS") != ""
	if cfg.MaxProcs == 0 && fromEnv {
		// The operator's processors stand for the CPUs the process may use,
		// but no more than the machine has: one event loop each. Left to
		// the gateway, runtime.NumCPU would count a whole host's CPUs in a
		// container limited to a few.
		procs := runtime.GOMAXPROCS(0)
		cfg.Gateway.NumEventLoop = cmp.Or(cfg.Gateway.NumEventLoop, min(procs, runtime.NumCPU()))
		log.Info().Int("procs", procs).Msg("GOMAXPROCS from the environment")
		return
	}
	// Unless the environment set it, the runtime's GOMAXPROCS is the number
	// of CPUs the process may use.
	cpus := runtime.GOMAXPROCS(0)
	// One event loop per usable CPU, counted before GOMAXPROCS grows: the
	// gateway's own default, runtime.NumCPU, would count a whole host's
	// CPUs in a container limited to a few.
	cfg.Gateway.NumEventLoop = cmp.Or(cfg.Gateway.NumEventLoop, cpus)
	procs := cfg.Procs(cpus)
	runtime.GOMAXPROCS(procs)
	ev := log.Info().Int("procs", procs)
	if !fromEnv {
		ev = ev.Int("cpus", cpus)
	}
	ev.Msg("GOMAXPROCS")
}

// probe is the container health check: images without a shell or curl run
// the binary itself. The URL is an argument or --url.
func probe(args []string, stderr io.Writer) int {
	fs := newCommandFlags("probe", "[flags] [URL]")
	url := fs.String("url", defaultProbeURL, "URL to GET, instead of the argument")
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	pos, err := parseInterspersed(fs.FlagSet, args)
	if err == nil {
		*url, err = probeURL(fs.FlagSet, *url, pos)
	}
	if err == nil && *timeout <= 0 {
		// http.Client takes 0 for no timeout: a hung server would hang the
		// health check with it.
		err = fmt.Errorf("--timeout %v: must be positive", *timeout)
	}
	if code, done := fs.failed(err, stderr); done {
		return code
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get(*url)
	if err != nil {
		fmt.Fprintln(stderr, "probe:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "probe: %s: %s\n", *url, resp.Status)
		return 1
	}
	return 0
}

// backup copies a data dir (app.Backup) and prints what it copied.
func backup(args []string, stderr io.Writer) int {
	fs := newCommandFlags("backup", "--to DIR [flags]")
	var b app.Backup
	fs.StringVar(&b.DataDir, "data-dir", "data", "the server's data dir")
	fs.StringVar(&b.DBPath, "db-dsn", "",
		"the server's SQLite file, when it was given one (default DATA-DIR/resonance.db)")
	fs.StringVar(&b.FileDir, "file-dir", "",
		"the server's --file-dir, when it was given one (default files beside the SQLite file)")
	fs.StringVar(&b.To, "to", "",
		"the directory to create, laid out as a data dir: --data-dir DIR runs a server on it")
	pos, err := parseInterspersed(fs.FlagSet, args)
	switch {
	case err != nil:
	case len(pos) > 0:
		err = fmt.Errorf("unexpected argument %q: give the target as --to", pos[0])
	case b.To == "":
		err = errors.New("--to is required")
	}
	if code, done := fs.failed(err, stderr); done {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	rep, err := b.Run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "resonance", err)
		return 1
	}
	key := "token key"
	if !rep.TokenKey {
		key = "no token key (the server takes --token-secret)"
	}
	fmt.Fprintf(stderr, "backup of %s in %s: store %.1f MiB (%d users, %d messages), "+
		"%d files %.1f MiB, %s\n", b.DataDir, b.To, mib(rep.DBBytes), rep.Users, rep.Messages,
		rep.Files, mib(rep.FileBytes), key)
	return 0
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// defaultProbeURL is the readiness endpoint of --http-listen's default.
const defaultProbeURL = "http://127.0.0.1:9100/readyz"

// probeURL picks the URL from the arguments of probe: at most one, and not
// together with --url, which would leave one of the two ignored.
func probeURL(fs *flag.FlagSet, flagURL string, pos []string) (string, error) {
	urlSet := false
	fs.Visit(func(f *flag.Flag) { urlSet = urlSet || f.Name == "url" })
	switch {
	case len(pos) > 1:
		return "", fmt.Errorf("unexpected argument %q: probe takes one URL", pos[1])
	case len(pos) == 1 && urlSet:
		return "", fmt.Errorf("URL %q given both as an argument and with --url", pos[0])
	case len(pos) == 1:
		return pos[0], nil
	}
	return flagURL, nil
}

// commandFlags is the flag set of one command. It reports its own errors
// (failed): flag's habit of printing the whole flag list before a one-line
// mistake buries the mistake.
type commandFlags struct {
	*flag.FlagSet
	cmd      string // "all", "probe", ...
	synopsis string // what follows the command in its usage line
}

func newCommandFlags(cmd, synopsis string) *commandFlags {
	fs := flag.NewFlagSet("resonance "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &commandFlags{FlagSet: fs, cmd: cmd, synopsis: synopsis}
}

// failed reports how parsing ended: for -h the flag list (exit code 0), for
// an error the error and where to read the flags (exit code 2). done says
// whether the command should exit with code.
func (c *commandFlags) failed(err error, stderr io.Writer) (code int, done bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stderr, "usage: resonance %s %s\n\nflags:\n", c.cmd, c.synopsis)
		c.SetOutput(stderr)
		c.PrintDefaults()
		return 0, true
	default:
		fmt.Fprintf(stderr, "resonance %s: %v\nrun 'resonance %s -h' for flags\n",
			c.cmd, err, c.cmd)
		return 2, true
	}
}

// parseInterspersed parses args with fs, letting flags come after
// arguments as well as before, and returns the arguments. Everything after
// "--" is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
