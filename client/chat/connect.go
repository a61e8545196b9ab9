package chat

// The connection to the server: registering and opening the client session,
// what a failure to reach or log in to it is told as, and the session's
// connection events (offline, back online).

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

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
