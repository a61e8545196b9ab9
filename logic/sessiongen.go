package logic

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// Sessions carry the token generation their connection was authenticated
// at (logicrpc.Session.TokenGen). A sign-out bumps the device's generation
// and asks the gateways to close its connections; a connection whose close
// was lost or is late then calls with an older generation than the device's
// and is refused with TOKEN_INVALID, which tells the client to log in again.
// A generation of 0 comes from a gateway older than the field (a rolling
// upgrade) and is not checked.

const (
	// sendGenTTL is how long the send path trusts a device generation it
	// read. A revocation forgets the device at once on the instance that
	// made it and, through its RevokedEvent, on the others; the TTL bounds
	// how long a lost event (or a read racing the revocation) leaves a
	// signed-out device sending, the gateway's close of the connection
	// being the first line anyway.
	sendGenTTL = 2 * time.Second
	// sendGenCacheSize bounds the devices the send path keeps generations of.
	sendGenCacheSize = 1 << 16
)

// genKey names one device of one user.
type genKey struct {
	user   int64
	device string
}

// genEntry is a device's generation as read at some time (gateway-free
// monotonic clock of this process).
type genEntry struct {
	gen    int64
	known  bool // the device has a row; without one every generation is stale
	readAt time.Time
}

// genCache keeps the devices' token generations the send path read, for
// sendGenTTL each, so that SEND costs no read per message. Its zero value
// is empty and ready.
type genCache struct {
	// reads counts the queries the cache did not spare (readGenerations).
	reads atomic.Int64

	mu      sync.Mutex
	devices map[genKey]genEntry
	ttl     time.Duration // how long an entry serves; 0 means sendGenTTL
}

// get returns the cached generation of k if it is younger than sendGenTTL.
func (c *genCache) get(k genKey, now time.Time) (genEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.ttl
	if ttl == 0 {
		ttl = sendGenTTL
	}
	e, ok := c.devices[k]
	if !ok || now.Sub(e.readAt) >= ttl {
		return genEntry{}, false
	}
	return e, true
}

func (c *genCache) put(k genKey, e genEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.devices == nil {
		c.devices = make(map[genKey]genEntry)
	}
	if len(c.devices) >= sendGenCacheSize {
		clear(c.devices) // entries live for seconds: refilling is cheap
	}
	c.devices[k] = e
}

// forget drops the user's device, or all its devices when device is empty,
// after a revocation on this instance.
func (c *genCache) forget(user int64, device string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.devices {
		if k.user == user && (device == "" || k.device == device) {
			delete(c.devices, k)
		}
	}
}

// publishRevoked tells every logic instance, this one included, that the
// user's device (all its devices when device is empty) was revoked, so that
// their send paths forget its cached generation. Like publishPresence it
// never blocks or fails the caller; a lost event leaves the other instances'
// cache to expire (sendGenTTL).
func (s *Service) publishRevoked(user int64, device string) {
	ev := &event.RevokedEvent{UserId: user, DeviceId: device}
	buf := make([]byte, ev.BLength())
	buf = buf[:ev.FastWrite(buf)]
	if err := s.deps.JS.Conn().Publish(s.deps.MQ.RevokedSubject(), buf); err != nil {
		s.failLog.Warn().Err(err).Int64("user", user).Str("device", device).
			Msg("revocation publish failed; other instances see it when their cache expires")
	}
}

// subscribeRevoked subscribes to the revocations of every logic instance
// (publishRevoked). A send that read a device's generation just before a
// revocation committed may still cache it after the event; the entry then
// lives out its sendGenTTL, as when the event is lost.
func (s *Service) subscribeRevoked() error {
	subject := s.deps.MQ.RevokedSubject()
	sub, err := s.deps.JS.Conn().Subscribe(subject, func(m *nats.Msg) {
		ev := event.NewRevokedEvent()
		if err := codec.ReadBody(m.Data, ev); err != nil {
			s.failLog.Warn().Err(err).Msg("bad revocation event; dropped")
			return
		}
		s.gens.forget(ev.UserId, ev.DeviceId)
	})
	if err != nil {
		return fmt.Errorf("logic: subscribe %s: %w", subject, err)
	}
	s.revokedSub = sub
	return nil
}

// staleGen reports whether session's generation is known (not 0) and is
// not current's, the device's stored generation (known false: no row).
// Any difference is stale, not only an older generation: a device row the
// pruner removed starts again at 1 when the device logs in anew.
func staleGen(session *logicrpc.Session, current int64, known bool) bool {
	return session.TokenGen != 0 && (!known || current != session.TokenGen)
}

// errSignedOut is the error of a session whose device was signed out. It is
// errDeviceRevoked, so marked (BizError.signed_out): the gateway closes the
// connection with SIGNED_OUT after it, REFRESH's answer included.
func errSignedOut(session *logicrpc.Session) error {
	return fmt.Errorf("%w: device %q of user %d (generation %d)",
		errDeviceRevoked, session.DeviceId, session.UserId, session.TokenGen)
}

// authorizeRead fails a read or receipt handler's call of op, as fail does:
// with UNAUTHENTICATED when the session carries no user, and with
// TOKEN_INVALID when its device was signed out since the connection logged
// in (a deleted account's devices are all revoked, so that is one too). A
// signed-out phone whose close was lost must learn no new history, and its
// receipts (DELIVERED, TYPING) must reach no one.
//
// Unlike authorizeWrite it costs no query while the device's generation is
// cached (signedOutSessions, as SEND), since SYNC, SYNC_CONVS and DELIVERED
// are as hot as SEND: one read by primary key per device every sendGenTTL.
// A revocation forgets the device at once on every instance it reaches
// (publishRevoked), so a warm cache does not keep a signed-out device
// reading; a lost event does for sendGenTTL at most.
func (s *Service) authorizeRead(ctx context.Context, op string,
	session *logicrpc.Session) error {
	if !authenticated(session) {
		return s.fail(op, ErrUnauthenticated, nil)
	}
	stale, err := s.signedOutSessions(ctx, []*logicrpc.Session{session})
	if err == nil && stale[0] {
		err = errSignedOut(session)
	}
	if err != nil {
		return s.fail(op, err, sessionIDs(session))
	}
	return nil
}

// checkGeneration returns errSignedOut when session's device was signed out
// since its connection logged in, read afresh rather than from the send
// path's cache: for DELETE_ACCOUNT, which must not go through for a stale
// session in the sendGenTTL a lost revocation event leaves it cached. It
// checks no deletion: a deletion begun but not finished goes on when
// retried (see deleteAccount).
func (s *Service) checkGeneration(ctx context.Context, session *logicrpc.Session) error {
	if session.TokenGen == 0 {
		return nil
	}
	k := genKey{session.UserId, session.DeviceId}
	read, err := s.readGenerations(ctx, []genKey{k})
	if err != nil {
		return err
	}
	gen, known := read[k]
	if staleGen(session, gen, known) {
		return errSignedOut(session)
	}
	return nil
}

// signedOutSessions returns which of sessions are stale (staleGen), reading
// the generations the cache does not hold in one query for all of them: a
// call costs at most one read, and none while its devices are cached.
// Sessions of generation 0 are never read or refused.
func (s *Service) signedOutSessions(ctx context.Context,
	sessions []*logicrpc.Session) ([]bool, error) {
	now := time.Now()
	stale := make([]bool, len(sessions))
	var missing []genKey
	var unread []int // indexes of the sessions whose device is in missing
	for i, sess := range sessions {
		if sess.TokenGen == 0 {
			continue
		}
		k := genKey{sess.UserId, sess.DeviceId}
		// Generations only grow while a device's row lives, so a cached one
		// newer than the session's proves it stale; an older one (a login
		// since, on any instance) may be outdated itself and is read again.
		if e, ok := s.gens.get(k, now); ok && e.known && e.gen >= sess.TokenGen {
			stale[i] = e.gen != sess.TokenGen
			continue
		}
		unread = append(unread, i)
		if !containsKey(missing, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return stale, nil
	}
	read, err := s.readGenerations(ctx, missing)
	if err != nil {
		return nil, err
	}
	for _, k := range missing {
		gen, known := read[k]
		s.gens.put(k, genEntry{gen: gen, known: known, readAt: now})
	}
	for _, i := range unread {
		gen, known := read[genKey{sessions[i].UserId, sessions[i].DeviceId}]
		stale[i] = staleGen(sessions[i], gen, known)
	}
	return stale, nil
}

func containsKey(keys []genKey, k genKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// readGenerations reads the token generations of keys' devices in one
// query; a device without a row is absent from the map.
func (s *Service) readGenerations(ctx context.Context, keys []genKey) (map[genKey]int64, error) {
	var q strings.Builder
	q.WriteString("SELECT user_id, device_id, token_gen FROM `" + s.tables.device + "` WHERE ")
	args := make([]any, 0, 2*len(keys))
	for i, k := range keys {
		if i > 0 {
			q.WriteString(" OR ")
		}
		q.WriteString("(user_id = ? AND device_id = ?)")
		args = append(args, k.user, k.device)
	}
	s.gens.reads.Add(1)
	rows, err := s.rdb.Statement.ConnPool.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("device generations of %d devices: %w", len(keys), err)
	}
	defer rows.Close()
	out := make(map[genKey]int64, len(keys))
	for rows.Next() {
		var k genKey
		var gen int64
		if err := rows.Scan(&k.user, &k.device, &gen); err != nil {
			return nil, fmt.Errorf("device generations: %w", err)
		}
		out[k] = gen
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("device generations: %w", err)
	}
	return out, nil
}
