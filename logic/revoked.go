package logic

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// authorizeWrite fails a write handler's call of op, as fail does: with
// UNAUTHENTICATED when the session carries no user, and with TOKEN_INVALID
// (marked signed_out, errDeviceRevoked) when the session's account was
// deleted or its device signed out since the connection logged in (LOGOUT,
// SIGN_OUT_DEVICE, a password change, a reused refresh token, a password
// login of the device elsewhere: its token generation is not the device's).
// Each of those revokes tokens and asks the gateways to close the
// connections; until a close lands, or for good when one is lost, such a
// connection could otherwise write rows back for a user that no longer
// exists, or register a push token again for a device that was signed out.
// LOGOUT, REFRESH and CHANGE_PASSWORD call it too: a stale connection must
// not sign the device's new login out, renew its tokens, or change the
// password it may hold (a thief's phone signed out by the owner).
//
// The check costs one read by primary key on the read pool (the user's row
// joined with the device's), which sees the tombstone or the bumped
// generation as soon as it is committed, before the closing starts; every
// logic instance sees them through the shared store. A session of
// generation 0 (from a gateway older than Session.token_gen) is checked for
// deletion only.
//
// SEND / SEND_BATCH do not call it: they are the hot path. A signed-out
// device's send is refused there by signedOutSessions, which reads the
// generations of a call's devices in one query at most and caches them
// (sessiongen.go). A deleted sender is refused at no extra cost (FORBIDDEN,
// as a blocked one): it left every group, and a 1:1 send reads both users'
// deletion in the statement that reads their blocks (peerState,
// blockedConvs).
//
// The reads and receipts (SYNC, SYNC_CONVS, DELIVERED, TYPING, ...) call
// authorizeRead instead, which checks the generation through the same
// cache: a deleted account's devices are revoked with it, so its late
// DELIVERED or TYPING is refused there too. A session of generation 0 gets
// through, as everywhere: TYPING then finds the deleted user in no group
// and, in a 1:1 conversation, drops it as across a block (blockedBetween
// reads deletions in the block check's statement).
//
// TODO: DELIVERED of generation 0 is not checked for deletion: a deleted
// account's late DELIVERED from a gateway older than token_gen writes its
// device's positions again, rows nothing removes. It ends once the gateways
// are upgraded; until then checking it would cost SYNC's hot path a read.
func (s *Service) authorizeWrite(ctx context.Context, op string,
	session *logicrpc.Session) error {
	if !authenticated(session) {
		return s.fail(op, ErrUnauthenticated, nil)
	}
	var deletedMs int64
	var gen sql.NullInt64
	err := s.rdb.Statement.ConnPool.QueryRowContext(ctx, s.queries.sessionState,
		session.DeviceId, session.UserId).Scan(&deletedMs, &gen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = fmt.Errorf("%w: user %d unknown", ErrTokenInvalid, session.UserId)
	case err != nil:
		err = fmt.Errorf("account of user=%d device=%q: %w", session.UserId,
			session.DeviceId, err)
	case deletedMs != 0:
		err = fmt.Errorf("%w: user %d deleted", errDeviceRevoked, session.UserId)
	case staleGen(session, gen.Int64, gen.Valid):
		err = errSignedOut(session)
	}
	if err != nil {
		return s.fail(op, err, sessionIDs(session))
	}
	return nil
}
