package logic

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Typing tells the other members of a conversation that the user started or
// stopped typing, as NOTIFY{typing} on their live devices (not on the user's
// own other devices). Nothing is stored. FORBIDDEN when the user is not a
// member or the group was dismissed; RATE_LIMITED past the per-user budget. Events over the
// per-conversation budget, in conversations over TypingMaxMembers, in a 1:1
// conversation that has no message yet or where either side blocked the
// other are answered OK and dropped.
func (s *Service) Typing(ctx context.Context, session *logicrpc.Session,
	req *protocol.TypingReq) (*protocol.TypingResp, error) {
	if err := s.authorizeRead(ctx, "typing", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.TypingReq{} // a missing body reads as empty
	}
	if err := s.typing(ctx, session, req); err != nil {
		return nil, s.fail("typing", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int64("user", session.UserId).Str("conv", req.GetConvId())
		})
	}
	return &protocol.TypingResp{}, nil
}

func (s *Service) typing(ctx context.Context, session *logicrpc.Session,
	req *protocol.TypingReq) error {
	convID, user := req.GetConvId(), session.UserId
	if convID == "" || len(convID) > maxConvID {
		return fmt.Errorf("%w: conv_id", ErrBadRequest)
	}
	// Before any query, so a flood costs no database work.
	if !s.eph.typingUser.Allow(strconv.FormatInt(user, 10)) {
		return fmt.Errorf("%w: typing", ErrRateLimited)
	}
	ms, err := s.activeMembership(ctx, convID, user)
	switch {
	case err != nil:
		return err
	case !ms.member:
		if _, perr := peerOf(convID, user); perr == nil {
			return nil // a 1:1 conversation not started yet: nobody to tell
		}
		return fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	case ms.dismissed:
		// Refused as a SEND there is: a dismissed group takes nothing new.
		return fmt.Errorf("%w: the group was dismissed", ErrForbidden)
	}
	// A change of state always goes out (the per-user budget above bounds
	// a flapping client); a repeat of the same state only once per period.
	allowed := s.eph.typingConv.Allow(typingKey(user, convID, req.Typing))
	if changed := s.eph.typingLast.swap(typingKey(user, convID, true), req.Typing); !changed && !allowed {
		return nil
	}
	recipients, err := s.typingRecipients(ctx, convID, user)
	if err != nil || len(recipients) == 0 {
		return err
	}
	if peer, perr := peerOf(convID, user); perr == nil {
		// A block silences typing both ways, like messages; dropped
		// without an error, so the answer does not reveal the block.
		if blocked, err := s.blockedBetween(ctx, user, peer); err != nil || blocked {
			return err
		}
	}
	n := &protocol.Notify{Typing: &protocol.TypingUpdate{ConvId: convID, UserId: user,
		Typing: req.Typing}}
	s.publishNotify(ctx, recipients, n, ownConn(session))
	return nil
}

// typingStates remembers the typing state last forwarded per user and
// conversation, so that a change is never dropped as a repeat: a "started"
// right after a "stopped" must reach the peers. Bounded: past the cap it
// forgets everything, which only lets a few repeats through.
type typingStates struct {
	mu sync.Mutex
	m  map[string]bool
}

// typingStatesCap bounds the remembered states.
const typingStatesCap = 100_000

// swap records typing as key's last state and reports whether it differs
// from the one before (true when there was none).
func (t *typingStates) swap(key string, typing bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil || len(t.m) >= typingStatesCap {
		t.m = make(map[string]bool)
	}
	prev, ok := t.m[key]
	t.m[key] = typing
	return !ok || prev != typing
}

// typingKey is the per-conversation limiter key of user's typing state.
// Started and stopped have separate budgets, so that the "stopped" right
// after a "started" is never the one dropped.
func typingKey(user int64, convID string, typing bool) string {
	state := "0"
	if typing {
		state = "1"
	}
	return strconv.FormatInt(user, 10) + "|" + state + "|" + convID
}

// membership is a user's standing in a conversation: an active member or
// not, and whether the conversation is a dismissed group.
type membership struct {
	member, dismissed bool
}

// activeMembership reads in one query whether user is a current member of
// convID (a member row exists and the user has not left) and whether the
// conversation was dismissed.
func (s *Service) activeMembership(ctx context.Context, convID string,
	user int64) (membership, error) {
	var row struct{ Dismissed bool }
	// A left join, so that the member row alone decides membership.
	res := s.rdc(ctx).Table(s.tables.member+" AS m").
		Select("COALESCE(c.dismissed, 0) AS dismissed").
		Joins("LEFT JOIN "+s.tables.conv+" AS c ON c.id = m.conv_id").
		Where("m.conv_id = ? AND m.user_id = ? AND m.left_seq = 0", convID, user).
		Limit(1).Scan(&row)
	if res.Error != nil {
		return membership{}, fmt.Errorf("membership user=%d conv=%s: %w", user, convID, res.Error)
	}
	return membership{member: res.RowsAffected > 0, dismissed: row.Dismissed}, nil
}

// typingRecipients returns the members of convID other than user, or none
// when the conversation has more than TypingMaxMembers members.
func (s *Service) typingRecipients(ctx context.Context, convID string,
	user int64) ([]int64, error) {
	if strings.HasPrefix(convID, p2pPrefix) {
		peer, err := peerOf(convID, user)
		if err != nil {
			return nil, err
		}
		return []int64{peer}, nil
	}
	limit := s.eph.cfg.TypingMaxMembers
	var ids []int64
	err := s.rdc(ctx).Model(&memberRow{}).Where("conv_id = ? AND left_seq = 0", convID).
		Limit(limit+1).Pluck("user_id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("typing members conv=%s: %w", convID, err)
	}
	if len(ids) > limit {
		return nil, nil
	}
	out := ids[:0]
	for _, id := range ids {
		if id != user {
			out = append(out, id)
		}
	}
	return out, nil
}
