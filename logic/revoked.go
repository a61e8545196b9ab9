package logic

import (
	"context"
	"fmt"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// authorizeWrite fails a write handler's call of op, as fail does: with
// UNAUTHENTICATED when the session carries no user, and with TOKEN_INVALID
// when the session's account was deleted. A deletion revokes its tokens,
// removes the rows it owned and asks the gateways to close its connections;
// until a close lands, or for good when one is lost, such a connection could
// otherwise write those rows back for a user that no longer exists.
//
// The check costs one read by primary key on the read pool, which sees the
// tombstone as soon as it is committed, before the closing starts. Deletion
// is final, so there is nothing to invalidate and every logic instance sees
// it through the shared store.
//
// TODO: a signed-out device's connection (LOGOUT, SIGN_OUT_DEVICE, a
// password change on another device) passes: logicrpc.Session carries no
// token generation to compare with the device's row, so a revoked session
// cannot be told from a new login of the same device. Carrying it needs the
// gateway to learn the generation at login and after CHANGE_PASSWORD (which
// bumps the caller's own), and logic a cache of revoked (user, device,
// generation) fed across instances over NATS. Until then such a connection
// can, for example, register a push token again for its signed-out device.
//
// SEND / SEND_BATCH do not call it: they are the hot path, and a deleted
// sender is refused there at no extra cost (FORBIDDEN, as a blocked one): it
// left every group, and a 1:1 send reads both users' deletion in the
// statement that reads their blocks (peerState, blockedConvs).
//
// TYPING does not either: in a group the deleted user is no member, and in
// a 1:1 conversation it is dropped as across a block (blockedBetween reads
// deletions in the block check's statement).
//
// TODO: DELIVERED is not checked, being per message: a deleted account's
// late DELIVERED writes its device's positions again. Checking it wants a
// bounded cache of deleted users filled by DeleteAccount and by a NATS
// event from other instances, the store being read on a miss at most once
// per call.
func (s *Service) authorizeWrite(ctx context.Context, op string,
	session *logicrpc.Session) error {
	if !authenticated(session) {
		return s.fail(op, ErrUnauthenticated, nil)
	}
	var deletedMs []int64
	err := s.rdc(ctx).Model(&userRow{}).Where("id = ?", session.UserId).Limit(1).
		Pluck("deleted_ms", &deletedMs).Error
	switch {
	case err != nil:
		err = fmt.Errorf("account of user=%d: %w", session.UserId, err)
	case len(deletedMs) == 0:
		err = fmt.Errorf("%w: user %d unknown", ErrTokenInvalid, session.UserId)
	case deletedMs[0] != 0:
		err = fmt.Errorf("%w: user %d deleted", ErrTokenInvalid, session.UserId)
	}
	if err != nil {
		return s.fail(op, err, sessionIDs(session))
	}
	return nil
}
