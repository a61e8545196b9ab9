package logic

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// LoginBatch is Login for up to logicrpc.MaxLoginBatch attempts of several
// connections, the token LOGINs a gateway gathered while its earlier calls
// were out. Each runs as its own Login would, concurrently with the others,
// so one slow attempt holds back only the call's answer; outcome i is what
// Login would have returned or thrown for attempts[i]. The exception is
// several attempts whose tokens name one device: the last of them runs
// after the others (loginGroup), so that it keeps the device's route.
func (s *Service) LoginBatch(ctx context.Context,
	attempts []*logicrpc.LoginAttempt) ([]*logicrpc.LoginOutcome, error) {
	if len(attempts) == 0 || len(attempts) > logicrpc.MaxLoginBatch {
		err := fmt.Errorf("%w: %d logins in a batch, want 1-%d", ErrBadRequest, len(attempts),
			logicrpc.MaxLoginBatch)
		return nil, s.fail("login batch", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int("attempts", len(attempts))
		})
	}
	out := make([]*logicrpc.LoginOutcome, len(attempts))
	var wg sync.WaitGroup
	for _, group := range s.loginGroups(attempts) {
		wg.Go(func() { s.loginGroup(ctx, attempts, group, out) })
	}
	wg.Wait()
	return out, nil
}

// loginGroup runs the attempts at the indexes group (ascending) and writes
// their outcomes to out: all but the last at once, then the last. The
// attempts of a group log one device in, and the gateway lists a batch's
// attempts about in the order their LOGINs came: the last is the newest
// connection, which the device's route should end on. Every route put but
// the last is followed by another, which replaces it and kicks its
// connection, so the earlier ones may run in any order. Holding back only
// the last keeps a group's time at two logins however many connections one
// device opens.
func (s *Service) loginGroup(ctx context.Context, attempts []*logicrpc.LoginAttempt,
	group []int, out []*logicrpc.LoginOutcome) {
	last := group[len(group)-1]
	var wg sync.WaitGroup
	for _, i := range group[:len(group)-1] {
		wg.Go(func() { out[i] = s.loginOutcome(ctx, attempts[i]) })
	}
	wg.Wait()
	out[last] = s.loginOutcome(ctx, attempts[last])
}

// loginGroups splits the indexes of attempts into groups for loginGroup, in
// order: one group for the attempts whose tokens name the same device, one
// of its own for every other attempt.
func (s *Service) loginGroups(attempts []*logicrpc.LoginAttempt) [][]int {
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
	resp, err := s.Login(ctx, a.Req, a.Conn)
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
