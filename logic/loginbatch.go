package logic

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// LoginBatch is Login for up to logicrpc.MaxLoginBatch attempts of several
// connections, the token LOGINs a gateway gathered while its earlier calls
// were out. Each runs as its own Login would, concurrently with the others;
// outcome i is what Login would have returned or thrown for attempts[i]. The
// exception is several attempts whose tokens name one device: the last of
// them runs after the others (loginGroup), so that it keeps the device's
// route.
//
// The call answers within Config.LoginBatchWait: an attempt still running
// then (a route store or JetStream stall on its path) is cancelled and
// answered UNAVAILABLE, so it fails alone. Waiting for it would let the
// gateway's timeout of the whole call fail every attempt, each of which the
// client then retries: after a restart, a reconnect burst failing together.
func (s *Service) LoginBatch(ctx context.Context,
	attempts []*logicrpc.LoginAttempt) ([]*logicrpc.LoginOutcome, error) {
	if len(attempts) == 0 || len(attempts) > logicrpc.MaxLoginBatch {
		err := fmt.Errorf("%w: %d logins in a batch, want 1-%d", ErrBadRequest, len(attempts),
			logicrpc.MaxLoginBatch)
		return nil, s.fail("login batch", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int("attempts", len(attempts))
		})
	}
	return s.runLogins(ctx, "login batch", attempts), nil
}

// runLogins runs attempts for the call op (Login or LoginBatch) and returns
// their outcomes within Config.LoginBatchWait, as LoginBatch says. A lone
// Login needs the bound as much as a batch: the caller's timeout is a
// client-side context, not sent over the wire, so logic would log in a
// connection whose caller had given up on it and answered its client that
// the login failed; its route then showed the user online there until its
// TTL.
func (s *Service) runLogins(ctx context.Context, op string,
	attempts []*logicrpc.LoginAttempt) []*logicrpc.LoginOutcome {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LoginBatchWait)
	defer cancel()
	done := make(chan loginDone, len(attempts)) // an attempt never waits to hand in
	var wg sync.WaitGroup
	for _, group := range s.loginGroups(attempts) {
		wg.Go(func() { s.loginGroup(ctx, attempts, group, done) })
	}
	out := make([]*logicrpc.LoginOutcome, len(attempts))
	for range attempts {
		select {
		case d := <-done:
			out[d.index] = d.outcome
		case <-ctx.Done():
			s.loginsUnfinished(op, attempts, out, done)
			s.late.add(func() {
				wg.Wait()
				s.undoLateLogins(op, attempts, done)
			})
			return out
		}
	}
	return out
}

// loginDone is the outcome of the attempt at index of a LoginBatch.
type loginDone struct {
	index   int
	outcome *logicrpc.LoginOutcome
}

// lateLogins tracks the attempts LoginBatch answered without, cancelled but
// maybe not yet ended, so that Stop waits for them. The zero value is ready.
type lateLogins struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// add runs finish, which waits for a batch's late attempts and cleans up
// after them, and has stop wait for it too. Once stop has begun it runs
// untracked, its attempts ending at their next step that heeds their
// context: adding to a WaitGroup being waited on is not allowed.
func (l *lateLogins) add(finish func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		go finish()
		return
	}
	l.wg.Go(finish)
}

// stop waits up to within for the attempts added before it, as Kitex waits
// for calls in flight, and reports whether they ended.
func (l *lateLogins) stop(within time.Duration) bool {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	ended := make(chan struct{})
	go func() { l.wg.Wait(); close(ended) }()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-ended:
		return true
	case <-timer.C:
		return false
	}
}

// loginsUnfinished fills out at the deadline of runLogins for op: with the
// outcomes handed in meanwhile, and UNAVAILABLE for the attempts still
// running, whose clients retry.
func (s *Service) loginsUnfinished(op string, attempts []*logicrpc.LoginAttempt,
	out []*logicrpc.LoginOutcome, done <-chan loginDone) {
	for len(done) > 0 {
		d := <-done
		out[d.index] = d.outcome
	}
	for i, o := range out {
		if o != nil {
			continue
		}
		conn := attempts[i].GetConn().GetConnId()
		err := fmt.Errorf("%w: login not done in %v", ErrUnavailable, s.cfg.LoginBatchWait)
		out[i] = &logicrpc.LoginOutcome{Err: s.failBiz(op, err,
			func(e *zerolog.Event) *zerolog.Event { return e.Int64("conn", conn) })}
	}
}

// undoLateLogins removes the routes of the attempts runLogins answered
// UNAVAILABLE for op but which logged in all the same (a store that
// finished its write despite the cancel), once they have all ended: the
// gateway never saw their sessions, so it will never disconnect them, and
// each route would name a connection that is not logged in until it
// expired. The client retries the login; the route removal is
// owner-checked, so it never removes the route of a retry on another
// connection. One on the same connection loses its route until the
// gateway's next renewal writes it back.
func (s *Service) undoLateLogins(op string, attempts []*logicrpc.LoginAttempt,
	done <-chan loginDone) {
	for len(done) > 0 {
		d := <-done
		resp, conn := d.outcome.GetResp(), attempts[d.index].GetConn()
		if resp == nil || conn == nil {
			continue
		}
		sess := &logicrpc.Session{UserId: resp.UserId, DeviceId: resp.DeviceId,
			Gateway: conn.Gateway, ConnId: conn.ConnId, RemoteAddr: conn.RemoteAddr}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout)
		err := s.Disconnect(ctx, sess) // logs its own failure
		cancel()
		if err == nil {
			s.log.Info().Str("op", op).Int64("user", sess.UserId).Int64("conn", sess.ConnId).
				Msg("route of a login answered UNAVAILABLE removed")
		}
	}
}

// loginGroup runs the attempts at the indexes group (ascending) and hands
// their outcomes to done: all but the last at once, then the last. The
// attempts of a group log one device in, and the gateway lists a batch's
// attempts about in the order their LOGINs came: the last is the newest
// connection, which the device's route should end on. Every route put but
// the last is followed by another, which replaces it and kicks its
// connection, so the earlier ones may run in any order. Holding back only
// the last keeps a group's time at two logins however many connections one
// device opens. Once ctx is done the batch has answered without the last,
// which is not started.
func (s *Service) loginGroup(ctx context.Context, attempts []*logicrpc.LoginAttempt,
	group []int, done chan<- loginDone) {
	last := group[len(group)-1]
	var wg sync.WaitGroup
	for _, i := range group[:len(group)-1] {
		wg.Go(func() { done <- loginDone{i, s.loginOutcome(ctx, attempts[i])} })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	done <- loginDone{last, s.loginOutcome(ctx, attempts[last])}
}

// loginGroups splits the indexes of attempts into groups for loginGroup, in
// order: one group for the attempts whose tokens name the same device, one
// of its own for every other attempt.
func (s *Service) loginGroups(attempts []*logicrpc.LoginAttempt) [][]int {
	if len(attempts) == 1 {
		return [][]int{{0}} // a Login, or a batch of one: its token is read once, by Login
	}
	// The one-attempt groups, almost all of them, are slices of one array;
	// capped, so that an append to a group copies it out.
	index := make([]int, len(attempts))
	groups := make([][]int, 0, len(attempts))
	byDevice := make(map[tokenDevice]int) // -> index in groups
	for i, a := range attempts {
		index[i] = i
		dev, ok := s.attemptDevice(a)
		if !ok {
			groups = append(groups, index[i:i+1:i+1])
			continue
		}
		if g, seen := byDevice[dev]; seen {
			groups[g] = append(groups[g], i)
			continue
		}
		byDevice[dev] = len(groups)
		groups = append(groups, index[i:i+1:i+1])
	}
	return groups
}

// tokenDevice is the device a login token names.
type tokenDevice struct {
	user   int64
	device string
}

// attemptDevice returns the device the token of a names; ok is false for a
// password login (the gateway sends those alone, as Login calls) and for a
// token that fails to parse, which fails the attempt anyway. An access
// token is verified here and again by Login: a MAC of a few dozen bytes,
// next to the store's reads and the route's write. A refresh token is only
// parsed, so a forged one may join a device's group: it fails in its turn
// and costs the others of the group one login's wait at most.
func (s *Service) attemptDevice(a *logicrpc.LoginAttempt) (dev tokenDevice, ok bool) {
	if a == nil || a.Req == nil || a.Req.Token == "" {
		return tokenDevice{}, false
	}
	if strings.HasPrefix(a.Req.Token, refreshPrefix) {
		user, device, err := parseRefreshToken(a.Req.Token)
		return tokenDevice{user: user, device: device}, err == nil
	}
	claims, err := s.tokens.verify(a.Req.Token, s.now())
	return tokenDevice{user: claims.UserID, device: claims.DeviceID}, err == nil
}

// loginOutcome is Login's answer to a, as an outcome. A nil a is refused as
// a nil request is. A panic fails this attempt alone, INTERNAL: Kitex
// recovers a handler's panic, not one on a goroutine of its own, so without
// the recover one bad attempt would end the process.
func (s *Service) loginOutcome(ctx context.Context,
	a *logicrpc.LoginAttempt) (o *logicrpc.LoginOutcome) {
	if a == nil {
		a = &logicrpc.LoginAttempt{}
	}
	var conn int64 // read before, as the recover must not panic itself
	if a.Conn != nil {
		conn = a.Conn.ConnId
	}
	defer func() {
		if r := recover(); r != nil {
			s.failLog.Error().Interface("panic", r).Int64("conn", conn).
				Msg("login batch: attempt panicked")
			o = &logicrpc.LoginOutcome{Err: &common.BizError{
				Code: common.ErrorCode_INTERNAL, Message: "internal error"}}
		}
	}()
	resp, err := s.login(ctx, a.Req, a.Conn)
	if err != nil {
		// Login's errors are BizErrors already (fail made them).
		biz, ok := errors.AsType[*common.BizError](err)
		if !ok {
			biz, _ = bizError(err)
		}
		return &logicrpc.LoginOutcome{Err: biz}
	}
	return &logicrpc.LoginOutcome{Resp: resp}
}
