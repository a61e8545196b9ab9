package logic

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/resonance-im/resonance/internal/ratelimit"
)

// limiters hold the per-instance budgets of requests that are cheap to send
// and costly to serve. They live in this process only: behind N logic
// instances a client gets up to N times the budget (the gateway spreads calls
// over them), which still turns an online brute force from millions of tries
// into a handful per minute.
type limiters struct {
	account *ratelimit.Limiter // password attempts per username
	// accountAddr is the per-username budget of an address the account
	// signed in from before (known), in place of account's.
	accountAddr *ratelimit.Limiter
	known       *knownAddrs
	addr        *ratelimit.Limiter // password attempts per client address
	signup      *ratelimit.Limiter // registrations per client address
	search      *ratelimit.Limiter // user searches per user
	upload      *ratelimit.Limiter // uploads started per user
	msgSearch   *ratelimit.Limiter // message searches (pages) per user
	pin         *ratelimit.Limiter // pins and unpins per user
}

func newLimiters(cfg Config) limiters {
	return limiters{
		account:     ratelimit.New(cfg.LoginAccountLimit),
		accountAddr: ratelimit.New(cfg.LoginAccountLimit),
		known:       newKnownAddrs(knownAddrsMax, knownAddrsTTL),
		addr:        ratelimit.New(cfg.LoginAddrLimit),
		signup:      ratelimit.New(cfg.RegisterAddrLimit),
		search:      ratelimit.New(cfg.SearchLimit),
		upload:      ratelimit.New(cfg.UploadLimit),
		msgSearch:   ratelimit.New(cfg.MessageSearchLimit),
		pin:         ratelimit.New(cfg.PinLimit),
	}
}

// allowPassword takes one password attempt from the budget of the address
// and then of the username, or returns ErrRateLimited. An unknown username
// has a budget like a real one, so the answer tells nothing about existence.
//
// The username's budget is shared by every address but those the account
// signed in from before (remembered by loggedIn), which have one each: an
// attacker who spends it from addresses of their own locks out their
// guesses, not the owner's password login from home or the office.
func (l limiters) allowPassword(username, remote string) error {
	host := clientHost(remote)
	if host != "" && !l.addr.Allow(host) {
		return fmt.Errorf("%w: login attempts from this address", ErrRateLimited)
	}
	key := accountKey(username)
	budget, bkey := l.account, key
	if host != "" && l.known.has(key, host) {
		budget, bkey = l.accountAddr, key+"\x00"+host
	}
	if !budget.Allow(bkey) {
		return fmt.Errorf("%w: login attempts for this account", ErrRateLimited)
	}
	return nil
}

// loggedIn remembers that username signed in from remote, for
// allowPassword.
func (l limiters) loggedIn(username, remote string) {
	if host := clientHost(remote); host != "" {
		l.known.add(accountKey(username), host)
	}
}

// accountKey is the limiter key of a username as typed.
func accountKey(username string) string {
	key := canonicalName(username)
	if len(key) > maxUsername {
		key = key[:maxUsername+1] // all over-long names are invalid: one key
	}
	return key
}

// allowRegister takes one registration from the budget of the client
// address remote; a caller that gives no address is not limited, as for
// password attempts.
func (l limiters) allowRegister(remote string) error {
	if host := clientHost(remote); host != "" && !l.signup.Allow(host) {
		return fmt.Errorf("%w: registrations from this address", ErrRateLimited)
	}
	return nil
}

// allowSearch takes one search from the user's budget.
func (l limiters) allowSearch(user int64) error {
	if !l.search.Allow(strconv.FormatInt(user, 10)) {
		return fmt.Errorf("%w: searches", ErrRateLimited)
	}
	return nil
}

// allowMessageSearch takes one page of a message search from the user's
// budget: each page reads up to searchScanRows stored messages.
func (l limiters) allowMessageSearch(user int64) error {
	if !l.msgSearch.Allow(strconv.FormatInt(user, 10)) {
		return fmt.Errorf("%w: message searches", ErrRateLimited)
	}
	return nil
}

// clientHost returns the limiter key of a client address ("ip:port"): the
// IPv4 address, or the /64 prefix of an IPv6 one, since a single IPv6
// client commonly holds a whole /64 and could rotate through it to dodge a
// per-address limit. It is the whole string when that is no address, and
// "" when it is empty (a caller that does not say, such as a test or an
// older gateway).
func clientHost(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	prefix, _ := ip.Prefix(64) // an IPv6 address always has a /64
	return prefix.String()
}
