package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

const (
	platform       = "terminal"
	historyLines   = 20
	syncPage       = 100
	maxSyncPages   = 100 // bounds catch-up at 10k messages per reconnect
	resolveEvery   = 3 * time.Second
	firstBackoff   = 200 * time.Millisecond
	maxBackoff     = 30 * time.Second
	lookupDeadline = 5 * time.Second
)

// session is the state of one Run. Only Run's goroutine touches it.
type session struct {
	cfg config
	out io.Writer

	c          *client.Client // nil while disconnected
	me         int64
	token      string // from the last login; used to log in again on reconnect
	registered bool
	names      map[int64]string
	peer       peer
	cur        cursor

	// outbox holds a line whose send was cut by a lost connection; it is
	// sent again after reconnecting, with the same client msg id, so the
	// server stores it once even if the first attempt got through.
	outbox *client.SendParams
}

// peer is the user we chat with; id is 0 until the name is resolved.
type peer struct {
	name string
	id   int64
}

func newSession(cfg config, out io.Writer) *session {
	return &session{
		cfg:   cfg,
		out:   out,
		names: make(map[int64]string),
		peer:  peer{name: cfg.to},
		cur:   newCursor(""),
	}
}

func (s *session) printf(format string, args ...any) {
	fmt.Fprintf(s.out, format+"\n", args...)
}

// run connects, serves until the connection drops, and reconnects with
// backoff until quit or a fatal error.
func (s *session) run(ctx context.Context, lines <-chan string) error {
	backoff := firstBackoff
	for {
		err := s.connect(ctx)
		var opErr *net.OpError
		if err != nil && s.me == 0 && errors.As(err, &opErr) {
			// Never connected yet: a wrong address or a stopped server is
			// the likely cause, and retrying forever would hide it.
			return fmt.Errorf("%w %s: %w", ErrUnreachable, s.cfg.addr, err)
		}
		if err == nil {
			backoff = firstBackoff
			err = s.serve(ctx, lines)
		}
		s.disconnect()
		if errors.Is(err, errQuit) || ctx.Err() != nil {
			return nil
		}
		wait, err := s.reconnectDelay(err, backoff)
		if err != nil {
			return err // fatal: the caller prints it once
		}
		backoff = min(backoff*2, maxBackoff)
		if err := s.waitOffline(ctx, lines, wait); err != nil {
			return nil
		}
	}
}

// reconnectDelay says how long to wait after err ended a connection, or
// returns an error when reconnecting cannot help.
func (s *session) reconnectDelay(err error, backoff time.Duration) (time.Duration, error) {
	var ce *client.CloseError
	var se *client.Error
	switch {
	case errors.Is(err, ErrBadCredentials):
		return 0, err
	case errors.Is(err, errTokenRefused):
		// Retry with the password, even if the server closed the token
		// attempt with LOGIN_FAILED and no reconnect.
	case errors.As(err, &ce) && !ce.ShouldReconnect():
		return 0, fmt.Errorf("chat: %w", err)
	case errors.As(err, &se) && !se.IsRetryable():
		return 0, fmt.Errorf("chat: %w", err)
	}
	// Jitter spreads the reconnects of many clients dropped at once.
	wait := backoff + rand.N(backoff/2+1)
	if ce != nil && ce.ReconnectAfter > 0 {
		wait = ce.ReconnectAfter
	}
	s.printf("! connection lost: %v; reconnecting in %s", err, wait.Round(time.Millisecond))
	return wait, nil
}

func (s *session) disconnect() {
	if s.c != nil {
		_ = s.c.Close()
		s.c = nil
	}
}

// waitOffline waits d while still answering stdin: /quit and the end of
// input stop the session (errQuit); one text line may be queued.
func (s *session) waitOffline(ctx context.Context, lines <-chan string, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return errQuit
		case <-t.C:
			return nil
		case line, ok := <-lines:
			if !ok || line == "/quit" {
				return errQuit
			}
			s.queueOffline(line)
		}
	}
}

func (s *session) queueOffline(line string) {
	if isCommand(line) || s.outbox != nil || s.peer.id == 0 {
		s.printf("! offline: %q not handled; try again after reconnecting", line)
		return
	}
	s.outbox = &client.SendParams{ToUserID: s.peer.id, Text: line,
		ClientMsgID: client.NewClientMsgID()}
	s.printf("! offline: message queued until reconnected")
}

// connect dials, logs in and catches up on the conversation.
func (s *session) connect(ctx context.Context) error {
	c, err := client.Dial(ctx, s.cfg.addr, client.Options{})
	if err != nil {
		return err
	}
	s.c = c
	if err := s.login(ctx); err != nil {
		return err
	}
	// A failed catch-up on a live connection is printed, not fatal.
	return s.check(s.catchUp(ctx))
}

// login uses the token of the previous login when there is one, so that a
// reconnect does not need the password to still be valid; an invalid token
// falls back to the password on the next attempt.
func (s *session) login(ctx context.Context) error {
	p := client.LoginParams{DeviceID: s.cfg.device, Platform: platform, Token: s.token}
	if s.token == "" {
		if err := s.registerOnce(ctx); err != nil {
			return err
		}
		p.Username, p.Password = s.cfg.user, s.cfg.password
	}
	resp, err := s.c.Login(ctx, p)
	if p.Token != "" && (client.CodeOf(err) == common.ErrorCode_TOKEN_INVALID || badCredentials(err)) {
		s.token = ""
		return fmt.Errorf("%w: %w", errTokenRefused, err)
	}
	if badCredentials(err) {
		if !s.cfg.register {
			s.printf("! invalid username or password (new user? add --register)")
		} else {
			s.printf("! invalid username or password")
		}
		return ErrBadCredentials
	}
	if err != nil {
		return err
	}
	s.me, s.token = resp.UserId, resp.Token
	s.names[resp.UserId] = resp.Username
	s.printf("* logged in as %s (id %d) at %s", resp.Username, resp.UserId, s.cfg.addr)
	return nil
}

func badCredentials(err error) bool {
	var ce *client.CloseError
	return client.CodeOf(err) == common.ErrorCode_INVALID_CREDENTIALS ||
		errors.As(err, &ce) && ce.Reason == protocol.CloseReason_LOGIN_FAILED
}

// registerOnce registers the user when --register asks for it; a taken name
// is fine, the login that follows checks the password.
func (s *session) registerOnce(ctx context.Context) error {
	if !s.cfg.register || s.registered {
		return nil
	}
	id, err := s.c.Register(ctx, s.cfg.user, s.cfg.password)
	switch client.CodeOf(err) {
	case common.ErrorCode_OK:
		if err != nil {
			return err
		}
		s.printf("* registered %s (id %d)", s.cfg.user, id)
	case common.ErrorCode_USERNAME_TAKEN:
	default:
		return err
	}
	s.registered = true
	return nil
}

// serve handles stdin, pushes and peer lookups until the connection ends
// (its error) or the user quits (errQuit).
func (s *session) serve(ctx context.Context, lines <-chan string) error {
	t := time.NewTicker(resolveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return errQuit
		case line, ok := <-lines:
			if !ok {
				return errQuit
			}
			if err := s.handleLine(ctx, line); err != nil {
				return err
			}
		case m, ok := <-s.c.Messages():
			if !ok {
				return s.c.Err()
			}
			s.printPush(ctx, m)
		case <-t.C:
			if s.peer.name != "" && s.peer.id == 0 {
				if err := s.resolvePeer(ctx, false); err != nil {
					return s.check(err)
				}
			}
		}
	}
}

// check returns err when it ended the connection, so that serve reconnects;
// otherwise it prints err and returns nil.
func (s *session) check(err error) error {
	if err == nil {
		return nil
	}
	if cerr := s.c.Err(); cerr != nil {
		return cerr
	}
	s.printf("! %v", err)
	return nil
}
