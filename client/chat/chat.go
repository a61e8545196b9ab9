// Package chat is the terminal client of Resonance (`resonance chat`): one
// 1:1 conversation at a time, stdin lines sent as messages, and every message
// of the user's conversations printed once, in order, as it arrives. The
// connection, reconnects and catch-up are client.Session's.
package chat

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/resonance-im/resonance/codec"
	envcfg "github.com/resonance-im/resonance/internal/config"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

// Sentinel errors of the chat client.
var (
	// ErrReported wraps an error Run has already printed to its output.
	ErrReported = errors.New("chat: failed")
	// ErrUsage means the flags were wrong; the usage has been printed.
	ErrUsage = errors.New("chat: bad usage")
	// ErrBadCredentials means the server refused the username and password.
	ErrBadCredentials = errors.New("chat: invalid username or password")
	// ErrUnreachable means the first connection failed: a wrong address or a
	// stopped server. Later drops are retried instead.
	ErrUnreachable = errors.New("chat: cannot connect to")

	// errQuit ends the session normally (/quit, end of input, ctx done).
	errQuit = errors.New("chat: quit")
	// errFileExists refuses a /save onto an existing file, which it never
	// overwrites.
	errFileExists = errors.New("file exists; /save #<seq> <path> saves to another name")
	// errOffline fails a command while no connection to the server can be
	// had: it is not done, and not queued either (messages are).
	errOffline = errors.New("offline")
	// errNoGroup refuses a group command outside a group.
	errNoGroup = errors.New("not in a group: /group <id> or /group new")
)

// passwordEnv is read when --password is not given, so that the password
// need not appear in the process list.
const passwordEnv = envcfg.PasswordEnv

// addrEnv is the server's --addr in the environment: in a shell that set it
// for the server, chat dials the same port.
const addrEnv = envcfg.EnvPrefix + "ADDR"

type config struct {
	// addrs are the gateways: the first, then the others in turn while one
	// cannot be reached (client.SessionConfig.Fallbacks).
	addrs    []string
	user     string
	password string
	// passwordFlag is set when the password came on the command line,
	// passwordFromEnv when it came from $RESONANCE_PASSWORD.
	passwordFlag    bool
	passwordFromEnv bool
	to              string
	device          string
	register        bool
	// maxBody is the largest request body the server accepts, its
	// --max-body (client.Options.SendLimit).
	maxBody int
	// tls, when set, speaks TLS to every gateway address (--tls).
	tls *tls.Config
}

// Run runs the chat client until /quit, the end of in, a fatal error (bad
// credentials, a server close without reconnect) or ctx is done. args are
// the flags after `chat`. All output, errors included, goes to out as one
// line each. Run returns nil on a normal exit.
//
// The goroutine reading in may stay blocked in its Read after Run returns
// when in never reaches EOF (a terminal); it ends with the process.
func Run(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	cfg, err := parseFlags(args, out)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.passwordFlag {
		fmt.Fprintln(out, passwordFlagWarning)
	}
	tty := terminalOf(in)
	defer keepTerminal(tty)()
	asked := cfg.password == ""
	if err := askPassword(ctx, &cfg, tty, out); err != nil {
		return err
	}
	s := newSession(cfg, out)
	s.tty, s.ttyFd = tty != nil, -1
	if tty != nil {
		s.ttyFd = int(tty.Fd())
	}
	if err := s.login(ctx, tty, asked); err != nil {
		return err
	}
	return s.run(ctx, readLines(ctx, in, max(maxLine, cfg.maxBody), cutLineAt(in), s.next))
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var cfg config
	var addrs string
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&addrs, "addr", cmp.Or(os.Getenv(addrEnv), "127.0.0.1:7000"),
		"gateway addresses (host:port), comma-separated: the first, then the next\n"+
			"whenever one cannot be reached (default $"+addrEnv+", the server's --addr,\n"+
			"when set)")
	fs.StringVar(&cfg.user, "user", "", "your username (required)")
	fs.StringVar(&cfg.password, "password", "",
		"deprecated: your password, visible to other users of this machine (ps) and kept in\n"+
			"shell history (default $"+passwordEnv+", else asked without echo on the terminal)")
	fs.StringVar(&cfg.to, "to", "", "username to chat with (or /to later)")
	fs.StringVar(&cfg.device, "device", "",
		"device id (default derived from the host, the OS user and --user, the same every run;\n"+
			"give another to run a second client of one user at once)")
	fs.BoolVar(&cfg.register, "register", false, "register the user first if it does not exist")
	fs.IntVar(&cfg.maxBody, "max-body", codec.DefaultMaxBody,
		"the largest request body the server accepts, in bytes: its --max-body; raise it\n"+
			"with the server's --max-content to send longer lines")
	var tf tlsFlags
	fs.BoolVar(&tf.on, "tls", false,
		"speak TLS to the gateways (a load balancer in front of them ends it)")
	fs.StringVar(&tf.ca, "tls-ca", "",
		"PEM file of the certificates to trust instead of the system's (implies --tls)")
	fs.StringVar(&tf.serverName, "tls-server-name", "",
		"the name the server's certificate must hold (default the host of --addr;\n"+
			"implies --tls)")
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: resonance chat --user NAME [--to PEER] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		// The flag package has printed err above the usage already.
		return cfg, fmt.Errorf("%w: %w: %w", ErrReported, ErrUsage, err)
	}
	if fs.NArg() > 0 {
		// The flag package stops at the first argument that is not a flag:
		// every flag after it would be dropped without a word.
		return cfg, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	if cfg.maxBody <= 0 {
		return cfg, fmt.Errorf("%w: --max-body %d: want a positive size", ErrUsage, cfg.maxBody)
	}
	if cfg.password != "" {
		cfg.passwordFlag = true
	} else {
		cfg.password = os.Getenv(passwordEnv)
		cfg.passwordFromEnv = cfg.password != ""
	}
	var err error
	if cfg.tls, err = tf.config(); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	cfg.addrs = splitAddrs(addrs)
	if len(cfg.addrs) == 0 {
		fs.Usage()
		return cfg, fmt.Errorf("%w: --addr names no gateway", ErrUsage)
	}
	for _, a := range cfg.addrs {
		if _, err := strconv.ParseUint(a, 10, 16); err == nil {
			// Go's dial error would say "missing port in address".
			fmt.Fprintf(out, "! --addr %s: a port alone; want host:port, 127.0.0.1:%s\n", a, a)
			return cfg, fmt.Errorf("%w: %w: --addr %s: a port alone", ErrReported, ErrUsage, a)
		}
	}
	if cfg.user == "" {
		fs.Usage()
		return cfg, fmt.Errorf("%w: --user is required", ErrUsage)
	}
	if cfg.register && !validUsername(cfg.user) {
		// Before the password is asked for, twice on a terminal.
		fmt.Fprintf(out, "! %s cannot be a username: a username is 3 to 32 ASCII letters, "+
			"digits, '_', '.' or '-'\n", cleanArg(cfg.user))
		return cfg, fmt.Errorf("%w: %w: username %q", ErrReported, ErrUsage, cfg.user)
	}
	if cfg.device == "" {
		cfg.device = defaultDevice(cfg.user)
	}
	return cfg, nil
}

// validUsername reports whether name has the shape the server takes for a
// new account: 3 to 32 ASCII letters, digits, '_', '.' or '-'.
func validUsername(name string) bool {
	if len(name) < 3 || len(name) > 32 {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("_.-", r)
		if !ok {
			return false
		}
	}
	return true
}

// tlsFlags are the flags that ask for TLS.
type tlsFlags struct {
	on         bool
	ca         string
	serverName string
}

// config returns the TLS configuration f asks for, or nil for plain TCP.
func (f tlsFlags) config() (*tls.Config, error) {
	if !f.on && f.ca == "" && f.serverName == "" {
		return nil, nil
	}
	c := &tls.Config{ServerName: f.serverName, MinVersion: tls.VersionTLS12}
	if f.ca == "" {
		return c, nil
	}
	pem, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	c.RootCAs = x509.NewCertPool()
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", f.ca)
	}
	return c, nil
}

// splitAddrs splits a comma-separated --addr, dropping empty entries.
func splitAddrs(list string) []string {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// defaultDevice names this installation when --device is not given: the
// same on every run of one OS user on one machine as one chat user, since
// the server keeps a device, and its 30-day refresh token, per id
// (docs/protocol.md: stable across restarts). An id per run left one more
// behind at every start.
func defaultDevice(chatUser string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return deviceID(host, osUser(), chatUser)
}

// deviceID is "chat-<host label>-<hash>": the label for a person reading a
// device list, the hash of host, OS user and chat user (folded as the
// server folds it) to tell apart what the label cannot. At most 46 bytes,
// within the server's 64.
func deviceID(host, account, chatUser string) string {
	sum := sha256.Sum256([]byte(host + "\x00" + account + "\x00" + strings.ToLower(chatUser)))
	return "chat-" + hostLabel(host) + "-" + hex.EncodeToString(sum[:4])
}

// maxHostLabel bounds the host part of a device id, in bytes.
const maxHostLabel = 32

// hostLabel is the first label of host, keeping letters, digits and '-'.
func hostLabel(host string) string {
	first, _, _ := strings.Cut(host, ".")
	label := strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-') {
			return r
		}
		return -1
	}, first)
	if label == "" {
		return "host"
	}
	return label[:min(len(label), maxHostLabel)]
}

// osUser names the OS account running the client, "" when unknown.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return cmp.Or(os.Getenv("USER"), os.Getenv("USERNAME"), strconv.Itoa(os.Getuid()))
}

// maxLine bounds a typed line, or --max-body when that is larger; longer
// ones are skipped with a notice (the server's content limit is below it).
const maxLine = 256 << 10

// terminalLineLimit is the longest line the terminal driver of goos passes
// on in canonical (line-editing) mode, which the client leaves on: input
// past it is dropped without a word, so a line of exactly that length may
// be the start of a longer one. 0 where no constant states it.
//
//   - Linux (Android too) keeps 4096 bytes of a line, the newline among
//     them: it passes on 4095 and ends the line there.
//   - macOS and the BSDs with the classic driver (NetBSD, OpenBSD,
//     DragonFly) hold 1024 bytes of input (TTYHOG), the line's end among
//     them. Past it every byte is dropped, Enter too, with a bell, until
//     the user erases some: a line that comes through has at most 1023.
//   - FreeBSD sizes its input queue by the terminal's speed (1920 bytes at
//     the default 9600 baud), which only the terminal's settings tell.
//
// TODO: FreeBSD's limit follows the terminal's input speed; reading it
// (TIOCGETA) would catch a cut line there too, which now goes out as typed.
func terminalLineLimit(goos string) int {
	switch goos {
	case "linux", "android":
		return 4095
	case "darwin", "netbsd", "openbsd", "dragonfly":
		return 1023
	}
	return 0
}

// cutLineAt returns the length at which the lines of in may have been cut
// before the client read them: this system's terminalLineLimit when in is a
// terminal, 0 when lines come whole (a pipe, a file).
func cutLineAt(in io.Reader) int {
	f, ok := in.(*os.File)
	if !ok {
		return 0
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return 0
	}
	return terminalLineLimit(runtime.GOOS)
}

// readLines feeds the lines of in that are not blank to the returned
// channel, closed at EOF, as typed but for the line end (a paste of code
// keeps its indentation). A line over limit bytes is read to its end and
// replaced by a notice, not sent: it must not end the client. So is a line
// of exactly cutAt bytes (when cutAt > 0), which a terminal may have cut:
// sending it would deliver the start of a longer text as if it were whole.
//
// After each line it waits for next to say how to read the one after: a
// password must be read with the terminal's echo off, which a read already
// under way could not switch to.
func readLines(ctx context.Context, in io.Reader, limit, cutAt int,
	next <-chan readMode) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReaderSize(in, 64<<10)
		mode := readPlain
		for {
			var line string
			var err error
			if mode == readSecret {
				line, err = readSecretLine(br, in, limit)
			} else {
				line, err = readPlainLine(br, limit, cutAt)
			}
			if strings.TrimSpace(line) != "" {
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
				if err == nil {
					select {
					case mode = <-next:
					case <-ctx.Done():
						return
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return lines
}

// readPlainLine reads one line of br for readLines, a notice in its place
// when it is too long or may have been cut.
func readPlainLine(br *bufio.Reader, limit, cutAt int) (string, error) {
	line, size, err := readLine(br, limit)
	switch {
	case size > limit:
		line = fmt.Sprintf("%s%d", tooLongPrefix, size)
	case cutAt > 0 && size == cutAt:
		line = fmt.Sprintf("%s%d", mayBeCutPrefix, size)
	}
	return strings.TrimSuffix(line, "\r"), err
}

// tooLongPrefix marks the notice readLines sends for an over-long line (a
// NUL, which nobody types).
const tooLongPrefix = "\x00too long:"

// mayBeCutPrefix marks the notice readLines sends for a line the terminal
// may have cut.
const mayBeCutPrefix = "\x00may be cut:"

// readLine reads one line of br, keeping at most limit bytes of it, and
// returns its full size.
func readLine(br *bufio.Reader, limit int) (string, int, error) {
	var b []byte
	size := 0
	for {
		chunk, isPrefix, err := br.ReadLine()
		size += len(chunk)
		if len(b) < limit {
			b = append(b, chunk[:min(len(chunk), limit-len(b))]...)
		}
		if err != nil || !isPrefix {
			return string(b), size, err
		}
	}
}

// formatMessage renders a message as "[15:04:05] bob #2: text".
func formatMessage(m *common.Message, sender string) string {
	return formatLine(m, sender, messageText(m))
}

// formatLine renders a message's line with text as its text.
func formatLine(m *common.Message, sender, text string) string {
	at := time.UnixMilli(m.SendTimeMs).Format("15:04:05")
	return fmt.Sprintf("[%s] %s #%d: %s", at, sender, m.Seq, text)
}

// messageText renders a message's content with its state.
func messageText(m *common.Message) string {
	switch {
	case m.Recalled:
		return "(recalled)"
	case m.EditedMs != 0:
		return contentText(m.ContentType, m.Content) + " (edited)"
	}
	return contentText(m.ContentType, m.Content)
}

func contentText(t common.ContentType, content []byte) string {
	switch t {
	case common.ContentType_TEXT:
		return string(content)
	case common.ContentType_FILE:
		return fileText(content)
	}
	return fmt.Sprintf("<%d bytes of binary content>", len(content))
}
