package logic

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// LoginBatch is Login for up to logicrpc.MaxLoginBatch attempts of several
// connections, the token LOGINs a gateway gathered while its earlier calls
// were out. Each runs as its own Login would, concurrently with the others,
// so one slow attempt holds back only the call's answer; outcome i is what
// Login would have returned or thrown for attempts[i].
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
	for i, a := range attempts {
		wg.Go(func() {
			// Kitex recovers a handler's panic, not one on a goroutine of
			// its own: this attempt fails INTERNAL, the process lives on.
			defer func() {
				if r := recover(); r != nil {
					s.failLog.Error().Interface("panic", r).Int64("conn", a.GetConn().GetConnId()).
						Msg("login batch: attempt panicked")
					out[i] = &logicrpc.LoginOutcome{Err: &common.BizError{
						Code: common.ErrorCode_INTERNAL, Message: "internal error"}}
				}
			}()
			resp, err := s.Login(ctx, a.GetReq(), a.GetConn())
			if err != nil {
				// Login's errors are BizErrors already (fail made them).
				biz, ok := errors.AsType[*common.BizError](err)
				if !ok {
					biz, _ = bizError(err)
				}
				out[i] = &logicrpc.LoginOutcome{Err: biz}
				return
			}
			out[i] = &logicrpc.LoginOutcome{Resp: resp}
		})
	}
	wg.Wait()
	return out, nil
}
