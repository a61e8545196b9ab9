package chat

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

const (
	platform     = "terminal"
	resolveEvery = 3 * time.Second
	// requestDeadline bounds a command's request, which waits for a
	// connection while offline.
	requestDeadline = 5 * time.Second
	// outboxSize bounds the lines typed but not yet sent; they wait there
	// while the connection is down, and stdin waits behind them.
	outboxSize = 64
	// quitGrace bounds the wait for the outbox at quit.
	quitGrace = 3 * time.Second
	// readEvery paces the read receipts of the conversation on screen: a
	// burst of messages costs one MARK_READ.
	readEvery = time.Second
)

// session is the state of one Run on top of a client.Session, which owns
// the connection, reconnects and the exactly-once stream. Only Run's
// goroutine touches the fields below mu's; printf is safe from any.
type session struct {
	cfg config

	outMu sync.Mutex
	out   io.Writer

	sess *client.Session
	me   int64
	// names caches user names by id, namedAt when each was learnt
	// (nameOf).
	names   map[int64]string
	namedAt map[int64]time.Time
	// knownIDs holds, by folded name, every user id the client learnt
	// the name for in this run, oldest first (rememberID, to.go).
	knownIDs map[string][]int64
	// warnedNew holds the accounts told as new owners of a name known for
	// another (noteNewAccount).
	warnedNew map[int64]bool
	peer      peer
	// group is the group conversation chatted in, "" while chatting with
	// peer; groupName is its name.
	group     string
	groupName string
	// convNames labels conversations other than the current one.
	convNames map[string]string
	// shown is the highest seq printed per conversation, so that history
	// printed on demand and the live stream never print a message twice.
	shown map[string]int64
	// quotes keeps the text of messages printed, for the lines that reply
	// to them (reply.go).
	quotes quotes
	// search is the last /search, which /more continues (search.go).
	search searchState
	// mentionables caches, per group, the members that @names resolve
	// against until the group's next event (reply.go).
	mentionables map[string]mentionables
	outbox       chan client.SendParams

	// ackedMu guards acked, the highest seq the send loop had acked per
	// conversation: at quit, Run prints the stream until those are shown.
	ackedMu sync.Mutex
	acked   map[string]int64
	// held is a typed line waiting for room in the outbox, if holding;
	// backlogNoted is set once the wait was announced, until the outbox
	// empties with no line held for burstGap; heldAt is the last hold.
	held         client.SendParams
	holding      bool
	heldAt       time.Time
	backlogNoted bool
	// heldAtQuit is the line still held as the outbox closed, if any.
	heldAtQuit *client.SendParams
	// notes carries NOTIFY frames to Run's goroutine; watched is the
	// users whose presence is printed (notify.go).
	notes   chan *protocol.Notify
	watched map[int64]bool
	// deleting is how far a /delete-account has got: the next lines are
	// its password and confirmation, not messages; deletePassword holds
	// the password typed until the confirmation (account.go).
	deleting       deleteStep
	deletePassword string
	// deleteTry counts the wrong passwords typed at that prompt.
	deleteTry int
	// changing is how far a /password has got, and changeAnswers the
	// passwords typed for it so far (password.go).
	changing      changeStep
	changeAnswers []string
	// changeTry counts the tries at typing the current password, then at
	// typing the new one twice alike.
	changeTry int
	// current holds the SHA-256 of the password this client logged in
	// with, or of those that may have replaced it since (/password): a
	// change elsewhere signs this device out, so the current password is
	// among them.
	current map[[32]byte]bool
	// secrets holds the SHA-256 of each password typed in this run, at
	// the login or a prompt (rememberSecret).
	secrets map[[32]byte]bool
	// tty is set when the input is a terminal, whose echo is turned off
	// for passwords; next tells the input reader how to read the line
	// after the one just handled (readLines).
	tty  bool
	next chan readMode
	// ttyFd is the input terminal's descriptor, -1 when it is none;
	// echoBack turns its echo back on while a password prompt has it off
	// (hideInput), else nil.
	ttyFd    int
	echoBack func()
	// offline is set from a lost connection until the next login, so
	// that each failed retry is told as such, not as another loss; it is
	// written on the client session's goroutine (onEvent) and read on
	// Run's too. offlineTries counts the loss and the failed retries
	// since, and offlineErr is the error told last (noteOffline); both
	// are onEvent's alone.
	offline      atomic.Bool
	offlineTries int
	offlineErr   string
	// command is the command being run, for report; queueTold is set
	// once a message typed offline was told to wait, until one is typed
	// online. Both are Run's goroutine's.
	command   string
	queueTold bool
	// unread is the conversation on screen when it shows messages of
	// others not yet marked read, else ""; readBusy is set while a
	// MARK_READ is in flight (markShownRead).
	unread   string
	readBusy atomic.Bool
	// view is what the conversation on screen printed of its history
	// (history.go).
	view historyView
	// registerLimited is the RATE_LIMITED refusal of --register's
	// registration, reported if the login that follows fails too.
	registerLimited error
	// registerTaken is set when --register found the name taken.
	registerTaken bool
	// maxFile is the server's largest upload, in bytes, once a refusal
	// said it; 0 until then.
	maxFile int64
}

// peer is the user we chat with; id is 0 until the name is resolved.
// deleted is set when the account was deleted: its conversation is
// read-only.
type peer struct {
	name    string
	id      int64
	deleted bool
}

func newSession(cfg config, out io.Writer) *session {
	s := &session{
		cfg:       cfg,
		out:       out,
		names:     make(map[int64]string),
		namedAt:   make(map[int64]time.Time),
		knownIDs:  make(map[string][]int64),
		warnedNew: make(map[int64]bool),
		peer:      peer{name: cfg.to},
		shown:     make(map[string]int64),
		convNames: make(map[string]string),
		outbox:    make(chan client.SendParams, outboxSize),
		acked:     make(map[string]int64),

		next:    make(chan readMode, 1),
		ttyFd:   -1,
		notes:   make(chan *protocol.Notify, notesSize),
		watched: make(map[int64]bool),
		secrets: make(map[[32]byte]bool),
	}
	s.rememberSecret(cfg.password)
	return s
}

// printf prints one line. format is the client's own; every string, error
// and Stringer argument is cleaned first (clean.go), since any of them may
// carry text from the network.
func (s *session) printf(format string, args ...any) {
	cleaned := make([]any, len(args))
	for i, a := range args {
		cleaned[i] = cleanArg(a)
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.out, format+"\n", cleaned...)
}

// run serves stdin and the message stream of the session opened (login)
// until quit or a fatal error.
func (s *session) run(ctx context.Context, lines <-chan string) error {
	defer s.sess.Close()
	sendCtx, stopSends := context.WithCancel(ctx)
	defer stopSends()
	sendsDone := make(chan struct{})
	go func() { defer close(sendsDone); s.sendLoop(sendCtx) }()

	s.learnPeers(ctx)
	if s.peer.name != "" {
		s.report(s.openTo(ctx, s.peer.name))
	}
	err := s.serve(ctx, lines)
	s.finish(ctx, sendsDone, stopSends)
	if errors.Is(err, errQuit) || ctx.Err() != nil {
		return nil
	}
	return err
}

// finish lets the lines typed before quitting go out, unless offline for
// longer than quitGrace, and prints the stream meanwhile until the echo of
// every acked send is shown: input piped from a file ends right after its
// last lines, which would otherwise go without a word. A line still held
// for room in the outbox (a quit in the middle of a paste) counts as not
// sent.
func (s *session) finish(ctx context.Context, sendsDone <-chan struct{}, stopSends func()) {
	if s.holding {
		held := s.held
		s.heldAtQuit = &held
	}
	close(s.outbox)
	grace := time.NewTimer(quitGrace)
	defer grace.Stop()
	msgs := s.sess.Messages()
	for sendsDone != nil || msgs != nil && ctx.Err() == nil && !s.ackedShown() {
		select {
		case <-sendsDone:
			sendsDone = nil
		case <-grace.C:
			stopSends() // the send loop counts what is left
			if sendsDone != nil {
				<-sendsDone
			}
			return
		case m, ok := <-msgs:
			if !ok { // the session ended: nothing more will come
				msgs = nil
				continue
			}
			s.printMessage(ctx, m)
		}
	}
}

// ackedShown reports whether every send acked so far has been printed.
func (s *session) ackedShown() bool {
	s.ackedMu.Lock()
	defer s.ackedMu.Unlock()
	for conv, seq := range s.acked {
		if s.shown[conv] < seq {
			return false
		}
	}
	return true
}

// open registers when asked and opens the client session. Failures here
// are fatal, so that a wrong address or password is reported at once.
func (s *session) open(ctx context.Context) error {
	if err := s.registerOnce(ctx); err != nil {
		return s.openErr(err)
	}
	sess, err := client.OpenSession(ctx, client.SessionConfig{
		Addr:      s.cfg.addrs[0],
		Fallbacks: s.cfg.addrs[1:],
		Login: client.LoginParams{Username: s.cfg.user, Password: s.cfg.password,
			DeviceID: s.cfg.device, Platform: platform},
		// History is printed on demand (/history); the stream starts
		// where this device left off, or at the newest message.
		StartAtLatest: true,
		OnEvent:       s.onEvent,
		Client: client.Options{OnNotify: s.onNotify, SendLimit: s.cfg.maxBody,
			TLS: s.cfg.tls},
	})
	if err != nil {
		return s.openErr(err)
	}
	s.sess, s.me = sess, sess.UserID()
	s.current = map[[32]byte]bool{sha256.Sum256([]byte(s.cfg.password)): true}
	s.learnName(s.me, sess.Username())
	return nil
}

// openErr prints why the session could not open and returns err marked
// as reported. An address that is no gateway to talk to is named with what
// happened there; with several, each is, since what failed at the last
// (the error a single failure would give) says nothing of the others.
func (s *session) openErr(err error) error {
	var each *client.AddrsError
	switch {
	case errors.As(err, &each):
		clauses := make([]string, len(each.Failures))
		for i, f := range each.Failures {
			clauses[i] = addrClause(f.Addr, f.Err)
		}
		s.printf("! %v %s: %s", ErrUnreachable, strings.Join(s.cfg.addrs, ","),
			strings.Join(clauses, "; "))
		err = fmt.Errorf("%w: %w", ErrUnreachable, err)
	case unreachable(err):
		s.printf("! %v %s: %s", ErrUnreachable, strings.Join(s.cfg.addrs, ","),
			unreachableText(err))
		err = fmt.Errorf("%w: %w", ErrUnreachable, err)
	case errors.Is(err, client.ErrAccountSuspended):
		s.printf("%s", suspendedNotice)
	case client.CodeOf(err) == common.ErrorCode_INVALID_CREDENTIALS:
		if s.registerLimited != nil {
			// Not registered for the rate limit: the name may not exist.
			s.printf("! invalid username or password; --register was refused: %s",
				describe(s.registerLimited))
		} else if !s.cfg.register {
			s.printf("! invalid username or password%s", s.credentialsHint())
		} else if s.registerTaken {
			// Registration says a name is taken to anyone (the web app
			// too); the wrong password is what the failed login says.
			s.printf("! the username %s is taken: log in with its password, or --register "+
				"another name", s.cfg.user)
		} else {
			s.printf("! invalid username or password")
		}
		err = ErrBadCredentials
	default:
		s.printf("! %s", describe(err))
		err = fmt.Errorf("chat: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrReported, err)
}

// addrClause says what happened at addr, one of several tried: "at ADDR:
// why".
func addrClause(addr string, err error) string {
	var opErr *net.OpError
	text := unreachableText(err)
	switch {
	case errors.As(err, &opErr) && opErr.Err != nil:
		text = opErr.Err.Error() // without the op, which names the address again
		if errors.Is(err, syscall.ECONNREFUSED) {
			text += " (nothing listens there)"
		}
	case text == "":
		text = describe(err) // a connection that ended without a word
	}
	return "at " + addr + ": " + text
}

// refusedHint is what a refused connection adds to its error: the client
// started before the server, or given another address than the server's.
func refusedHint(err error) string {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return ""
	}
	return " (nothing listens there: start the server first, or give --addr its --addr)"
}

// unreachableText says why the address of err is no gateway to talk to, ""
// when err says something else (see unreachable).
func unreachableText(err error) string {
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr):
		return err.Error() + refusedHint(err)
	case errors.Is(err, codec.ErrBadMagic):
		// Something answered, but not a gateway: the metrics or web app
		// port given for the client port, most likely.
		return "the server there does not speak the Resonance protocol " +
			"(--addr takes the gateway's client port, the server's --addr): " + err.Error()
	case errors.Is(err, client.ErrTimeout):
		return "the server there took the connection but did not answer in time " +
			"(a port of another service, a TLS port without --tls, or a server too busy): " +
			err.Error()
	case errors.Is(err, client.ErrNotTLS):
		return "the server there does not speak TLS (a gateway is plain TCP; TLS ends at a " +
			"load balancer in front of it): drop --tls (and --tls-ca and --tls-server-name, which " +
			"imply it) to reach a gateway itself: " + err.Error()
	case untrusted(err):
		return "the server's certificate is not trusted for that name (--tls-ca FILE " +
			"trusts a private authority, --tls-server-name sets the name): " + err.Error()
	}
	return ""
}

// untrusted reports whether err is a TLS certificate the client did not
// accept.
func untrusted(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) ||
		errors.As(err, &invalid)
}

// onEvent prints connection changes and a conversation the server refused
// to catch up on; it runs on the client session's
// goroutine.
func (s *session) onEvent(e client.Event) {
	switch e.Kind {
	case client.EventConnected:
		back := ""
		if s.offline.Load() {
			back = "; back online" // at the first retry: no failure to count
			if failed := s.offlineTries - 1; failed > 0 {
				back += fmt.Sprintf(" after %d failed attempt%s", failed, plural(failed))
			}
		}
		s.offline.Store(false)
		s.offlineTries, s.offlineErr = 0, ""
		s.printf("* logged in as %s (id %d) at %s%s", e.Login.Username, e.Login.UserId, e.Addr,
			back)
	case client.EventDisconnected:
		s.noteOffline(e)
	case client.EventConvRefused:
		// Its messages stay unshown; the rest of the catch-up goes on.
		s.printf("! cannot catch up on %s: %s", e.ConvID, describe(e.Err))
	}
}

// noteOffline tells a lost connection, and then the retries that fail
// after it sparingly: one whose error differs from the last told, else
// those whose number is a power of two (2, 4, 8...). A server down for
// minutes would otherwise print a line every few seconds.
func (s *session) noteOffline(e client.Event) {
	retry := e.RetryIn.Round(time.Millisecond)
	text := fmt.Sprint(e.Err)
	if !s.offline.Load() {
		s.offline.Store(true)
		s.offlineTries, s.offlineErr = 1, text
		s.printf("! connection lost: %v; reconnecting in %s", e.Err, retry)
		return
	}
	s.offlineTries++
	n := s.offlineTries
	if text == s.offlineErr && n&(n-1) != 0 {
		return
	}
	s.offlineErr = text
	s.printf("! still offline (attempt %d): %v; reconnecting in %s", n, e.Err, retry)
}

// credentialsHint says, after a refused login without --register, where
// the password came from when that may explain it (an environment set
// before a password change), and that --register makes a new name an
// account: the refusal does not tell a wrong password from an unknown
// name. No registration takes a password of a length outside the
// server's rule, so --register is not offered for one.
func (s *session) credentialsHint() string {
	var clauses []string
	if s.cfg.passwordFromEnv {
		clauses = append(clauses, "the password is $"+passwordEnv+"'s")
	}
	if n := len(s.cfg.password); n >= minPasswordLen && n <= maxPasswordLen {
		clauses = append(clauses, "if "+s.cfg.user+" is a new name, add --register")
	}
	if len(clauses) == 0 {
		return ""
	}
	return " (" + strings.Join(clauses, "; ") + ")"
}

// registerOnce registers the user when --register asks for it, at the
// first gateway that answers; a taken name is fine, the login that follows
// checks the password.
func (s *session) registerOnce(ctx context.Context) error {
	if !s.cfg.register {
		return nil
	}
	id, err := registerFirst(ctx, s.cfg, s.cfg.password)
	switch client.CodeOf(err) {
	case common.ErrorCode_OK:
		if err != nil {
			return err
		}
		// The name as typed may not be the server's spelling; the login
		// line that follows gives that.
		s.printf("* registered a new account (id %d)", id)
	case common.ErrorCode_USERNAME_TAKEN:
		// The user's own name on a later run, or someone else's: the
		// login tells, and openErr words its refusal for it.
		s.registerTaken = true
	case common.ErrorCode_RATE_LIMITED:
		// Every attempt counts against the address's budget, also for a
		// name that exists (--register on every run): the login tells.
		s.registerLimited = err
	default:
		return err
	}
	return nil
}

// registerFirst registers at the first of addrs that answers as a gateway,
// passing over those that cannot be reached as the client session does
// (client.SessionConfig.Fallbacks). When none answers, it returns the
// failure, or with several addresses a *client.AddrsError of each, as
// client.OpenSession does.
func registerFirst(ctx context.Context, cfg config, password string) (int64, error) {
	var failures []*client.AddrError
	for _, addr := range cfg.addrs {
		id, err := registerAt(ctx, addr, cfg.tls, cfg.user, password)
		if !unreachable(err) || ctx.Err() != nil {
			return id, err
		}
		failures = append(failures, &client.AddrError{Addr: addr, Err: err})
	}
	if len(failures) == 1 {
		return 0, failures[0].Err
	}
	return 0, &client.AddrsError{Failures: failures}
}

// registerAt registers user at the gateway addr, over TLS when tc is set.
func registerAt(ctx context.Context, addr string, tc *tls.Config, user,
	password string) (int64, error) {
	c, err := client.Dial(ctx, addr, client.Options{TLS: tc})
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close() }()
	return c.Register(ctx, user, password)
}

// unreachable reports whether err says that an address is no gateway to
// talk to: nothing listens there, or what does speaks another protocol or
// does not answer in time.
func unreachable(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) || errors.Is(err, codec.ErrBadMagic) ||
		errors.Is(err, client.ErrTimeout) || errors.Is(err, client.ErrNotTLS) || untrusted(err)
}

// serve handles stdin, the message stream and peer lookups until the user
// quits (errQuit) or the client session ends (its error).
func (s *session) serve(ctx context.Context, lines <-chan string) error {
	t := time.NewTicker(resolveEvery)
	defer t.Stop()
	read := time.NewTicker(readEvery)
	defer read.Stop()
	for {
		// While a line is held for room in the outbox, stdin is left
		// unread and the line offered to the outbox instead.
		in, queue := lines, chan<- client.SendParams(nil)
		if s.holding {
			in, queue = nil, s.outbox
		}
		select {
		case <-ctx.Done():
			return errQuit
		case queue <- s.held:
			s.held, s.holding = client.SendParams{}, false
		case line, ok := <-in:
			if !ok {
				return errQuit
			}
			if err := s.handleLine(ctx, line); err != nil {
				return err
			}
			s.askNext()
		case m, ok := <-s.sess.Messages():
			if !ok {
				return s.ended(s.sess.Err())
			}
			s.printMessage(ctx, m)
		case n := <-s.notes:
			s.printNotify(ctx, n)
		case <-t.C:
			if s.peer.name != "" && s.peer.id == 0 {
				s.report(s.resolvePeer(ctx, false))
			}
		case <-read.C:
			s.markShownRead(ctx)
		}
	}
}

// askNext tells the input reader how to read the next line: a password
// without echo. The reader takes one word per line it delivers, so the
// channel always has room.
func (s *session) askNext() {
	mode := readPlain
	if s.deleting == deletePassword || s.changing != changeNone {
		mode = readSecret
	}
	if mode == readPlain && s.echoBack != nil {
		s.echoBack()
		s.echoBack = nil
	}
	select {
	case s.next <- mode:
	default:
	}
}

// suspendedNotice tells the user why the client stops, and that starting it
// again will not help.
const suspendedNotice = "! this account is suspended by the server's operator; " +
	"ask them to lift it before you log in again"

// ended returns the error the client session ended with, saying first in
// the user's words why when this device was signed out: by /sign-out on
// another device, or by a password change there; or when the operator
// suspended the account.
func (s *session) ended(err error) error {
	if errors.Is(err, client.ErrAccountSuspended) {
		s.printf("%s", suspendedNotice)
		return fmt.Errorf("%w: chat: %w", ErrReported, err)
	}
	var ce *client.CloseError
	if errors.As(err, &ce) && ce.Reason == protocol.CloseReason_SIGNED_OUT {
		s.printf("! this device was signed out (from another of your devices, by a password " +
			"change, or by the server's operator); start the client again to log in")
		return fmt.Errorf("%w: chat: %w", ErrReported, err)
	}
	if client.CodeOf(err) == common.ErrorCode_INVALID_CREDENTIALS {
		// The token was refused too, or the session would not have
		// asked with the password.
		s.printf("! the password this client logged in with no longer works (changed on "+
			"another device while this one was away, or %s is gone from this server); start "+
			"the client again to log in", s.names[s.me])
		return fmt.Errorf("%w: chat: %w", ErrReported, err)
	}
	if errors.As(err, &ce) && ce.Reason == protocol.CloseReason_KICKED {
		// The server keeps one connection per user and device: the likely
		// cause is a second client started with the same (default) device.
		s.printf("! another connection signed in as %s with this device (--device %s) and "+
			"ended this one; to run two clients at once, give each its own --device",
			s.names[s.me], deviceLabel(s.cfg.device))
		return fmt.Errorf("%w: chat: %w", ErrReported, err)
	}
	return fmt.Errorf("chat: %w", err)
}

// markShownRead marks the conversation on screen read up to the newest
// message printed, as a chat app does for the conversation that is open:
// the person has the messages in front of them. It runs on Run's goroutine and
// sends in the background; a failure is silent (the next message, or
// /read, tries again) since the messages themselves are safe.
func (s *session) markShownRead(ctx context.Context) {
	conv := s.unread
	if conv == "" || s.view.conv == conv && s.view.unreadBelow {
		// Unread messages below those printed are not shown yet: the
		// read position would pass them. Asked again at the next tick.
		return
	}
	if !s.readBusy.CompareAndSwap(false, true) {
		return
	}
	s.unread = ""
	seq := s.shown[conv]
	go func() {
		defer s.readBusy.Store(false)
		ctx, cancel := context.WithTimeout(ctx, requestDeadline)
		defer cancel()
		if c, err := s.sess.Client(ctx); err == nil {
			_, _ = c.MarkRead(ctx, conv, seq)
		}
	}()
}

// sendLoop sends the outbox in typing order. A send waits through a
// reconnect and is retried with its client msg id, so it is stored once;
// its echo comes back through the message stream.
//
// Once ctx ends (the grace after quitting while offline), what is left is
// counted and reported in one line rather than one failure each.
func (s *session) sendLoop(ctx context.Context) {
	var unsent []client.SendParams
	// Half the gateway's frame rate: a long paste sent as fast as acks
	// came back got the connection closed (RATE_LIMITED) for 5-15 s.
	pace := client.HalfFrameRate()
	for p := range s.outbox {
		if pace.Wait(ctx) == nil {
			ack, err := s.sess.Send(ctx, p)
			if err == nil {
				s.ackedMu.Lock()
				s.acked[ack.ConvId] = max(s.acked[ack.ConvId], ack.Seq)
				s.ackedMu.Unlock()
				continue
			}
			if ctx.Err() == nil {
				s.reportNotSent(p.Text, err)
				continue
			}
		}
		unsent = append(unsent, p)
	}
	if s.heldAtQuit != nil { // set before the outbox closed
		unsent = append(unsent, *s.heldAtQuit)
	}
	s.reportUnsent(unsent)
}

// unsentListed is how many unsent lines a quit names; a paste may leave
// dozens, which are counted instead.
const unsentListed = 5

// reportUnsent says which messages a quit left unsent, in typing order,
// each shortened, so that the user can type them again later.
func (s *session) reportUnsent(unsent []client.SendParams) {
	if len(unsent) == 0 {
		return
	}
	s.printf("! %d message%s not sent before quitting:", len(unsent), plural(len(unsent)))
	for _, p := range unsent[:min(len(unsent), unsentListed)] {
		if p.File != nil {
			s.printf("!   [file] %s", p.File.Name)
			continue
		}
		s.printf("!   %q", excerpt(p.Text))
	}
	if more := len(unsent) - unsentListed; more > 0 {
		s.printf("!   ... and %d more", more)
	}
}

// reportNotSent says why a typed line was not sent, quoting its start: a
// line refused as too large may be 64 KiB long.
func (s *session) reportNotSent(text string, err error) {
	if !tooLarge(err) {
		s.printf("! not sent: %q: %s", excerpt(text), describe(err))
		return
	}
	reason := "too large for the server"
	var se *client.Error
	var tl *client.TooLargeError
	switch {
	case errors.As(err, &se) && se.Message != "":
		reason += " (" + se.Message + ")"
	case errors.As(err, &tl) && tl.Limit > 0:
		reason += fmt.Sprintf(" (a request over %d bytes)", tl.Limit)
	}
	s.printf("! not sent: %q (%d bytes) is %s", excerpt(text), len(text), reason)
}

// tooLarge reports whether err refuses a request for its size: the SDK's
// check against the frame limit, the server closing the connection for
// the frame, or the server's content limit (TOO_LARGE).
func tooLarge(err error) bool {
	return errors.Is(err, client.ErrTooLarge) ||
		client.CodeOf(err) == common.ErrorCode_TOO_LARGE
}

// excerptRunes is how much of a line a notice quotes.
const excerptRunes = 40

// excerpt returns the start of text, marked with "…" when cut.
func excerpt(text string) string {
	n := 0
	for i := range text {
		if n == excerptRunes {
			return text[:i] + "…"
		}
		n++
	}
	return text
}

// report prints a failed command; the client session handles the
// connection itself. A command not done for want of a connection is named:
// several typed while offline would otherwise fail alike, none told apart.
func (s *session) report(err error) {
	switch {
	case err == nil:
	case errors.Is(err, errOffline) && s.command != "":
		s.printf("! %s %s", s.command, describe(err))
	default:
		s.printf("! %s", describe(err))
	}
}

// offlineText is what a command failed with errOffline says.
const offlineText = "not done: offline, the server cannot be reached; " +
	"type it again once back online"

// describe is what a person reads of err: a server's answer is its code and
// message, without the request the SDK names in its wrapping.
func describe(err error) string {
	switch {
	case errors.Is(err, errOffline):
		return offlineText
	case errors.Is(err, context.DeadlineExceeded):
		// Go's words for it say nothing to a person at a terminal.
		return "no answer from the server in time (the connection may be lost)"
	}
	var tl *client.TooLargeError
	if errors.As(err, &tl) {
		// Not the SDK's wrapping, which may quote the oversized argument.
		return fmt.Sprintf("a request of %d bytes is too large for the server", tl.Size)
	}
	var se *client.Error
	if !errors.As(err, &se) {
		return err.Error()
	}
	code := strings.ToLower(strings.ReplaceAll(se.Code.String(), "_", " "))
	if se.Message == "" {
		return code
	}
	// Logic's messages mostly begin with their code's words already ("not
	// found: message"); naming it again after them reads as a stutter.
	if se.Message == code || strings.HasPrefix(se.Message, code+": ") {
		return se.Message
	}
	return se.Message + " (" + code + ")"
}

// request runs fn on the current connection, waiting a bounded time for one.
func (s *session) request(ctx context.Context,
	fn func(context.Context, *client.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	c, err := s.sess.Client(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errOffline, err)
	}
	return fn(ctx, c)
}

// offlineNow reports whether the client is told offline and has no live
// connection even so: a command then fails at once rather than after
// requestDeadline, during which input waits. A connection back a moment
// before its login is told counts as live.
func (s *session) offlineNow() bool {
	if !s.offline.Load() || s.sess == nil {
		return s.offline.Load()
	}
	now, cancel := context.WithCancel(context.Background())
	cancel() // Client still returns a live connection to a done context
	_, err := s.sess.Client(now)
	return err != nil
}
