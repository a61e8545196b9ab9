// Command resonance runs the Resonance IM server: all roles in one process
// (the default), or one role alone, plus a terminal chat client.
//
//	resonance [all]   gateway, logic and task on embedded NATS, SQLite and routes
//	resonance gateway client connections (TCP) and the push service
//	resonance logic   accounts, messages and sync (Kitex)
//	resonance task    delivery from NATS JetStream to gateways
//	resonance chat    a terminal chat client
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/resonance-im/resonance/app"
	"github.com/resonance-im/resonance/client/chat"
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
  probe     GET a health URL, exit 0 on 200 (for container health checks)

Every flag can also be set as RESONANCE_<FLAG> in the environment (dashes as
underscores) or as a key of the YAML file given by --config.
Run 'resonance <command> --help' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	cmd := "all"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "all", "gateway", "logic", "task":
		return serve(app.Role(cmd), args, stderr)
	case "chat":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
	case "help", "-h", "--help":
		fmt.Fprint(stderr, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "resonance: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func serve(role app.Role, args []string, stderr io.Writer) int {
	var cfg app.Config
	fs := flag.NewFlagSet("resonance "+string(role), flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Bind(fs, role)
	if err := config.Load(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "resonance:", err)
		return 2
	}
	format := cfg.LogFormat
	if format == "" && role != app.RoleAll {
		format = "json"
	}
	log := logx.New(stderr, cfg.LogLevel, format != "json")
	logx.RouteKitex(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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

// probe is the container health check: images without a shell or curl run
// the binary itself.
func probe(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("resonance probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:9100/readyz", "URL to GET")
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
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
