package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resonance-im/resonance/client"
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
