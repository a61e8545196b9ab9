package logic

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// The operator's actions on accounts: suspending an abusive one, setting a
// new password for a user locked out (there is no recovery by e-mail), and
// signing all of a user's devices out. No client reaches them: they are
// methods of the Service for the process that embeds it (app's /admin/
// endpoints), each naming the account by username or by "#ID".

// suspendedMessage is the text of the CLOSE frame a suspended account's
// connections get.
const suspendedMessage = "account suspended"

// maxSuspendReason bounds the operator's note, the column's size.
const maxSuspendReason = 512

// resetPasswordBytes is the entropy of a password ResetPassword sets: 144
// bits, 24 characters once encoded.
const resetPasswordBytes = 18

// UserSummary is what an operator sees of an account.
type UserSummary struct {
	ID       int64     `json:"id"`
	Username string    `json:"username"`
	Created  time.Time `json:"created"`
	// Suspended is when the account was suspended; zero while it is not.
	Suspended     time.Time `json:"suspended,omitzero"`
	SuspendReason string    `json:"suspend_reason,omitempty"`
	// Devices counts the devices signed in: those holding a refresh token
	// (signed-out devices keep their row, see listDevices).
	Devices int64 `json:"devices"`
	// Deleted is when the account was deleted; zero while it lives. A
	// deleted account keeps its id and the name deleted#ID.
	Deleted time.Time `json:"deleted,omitzero"`
}

// adminIDPrefix starts an operator's reference to an account by its id,
// "#42", instead of its username: a deleted account's name is released,
// so its id, which logs and its messages name, is what is left to find it
// by. '#' is no username character, so no name reads as an id.
const adminIDPrefix = "#"

// AdminUser returns the summary of the account ref names, a username or
// "#ID", deleted accounts included (shown with Deleted): NOT_FOUND when
// there is none, BAD_REQUEST for a malformed reference.
func (s *Service) AdminUser(ctx context.Context, ref string) (UserSummary, error) {
	u, err := s.adminLookup(ctx, ref)
	if err != nil {
		return UserSummary{}, err
	}
	return s.summary(ctx, u)
}

// Suspend suspends the account named username with the operator's reason:
// its password and token logins are refused with ACCOUNT_SUSPENDED from
// then on, every device's tokens are revoked (so a late read or send of a
// connection not yet closed is refused as a signed-out device's), its push
// tokens dropped, and its live connections closed with ACCOUNT_SUSPENDED.
// Its name stays taken. Suspending a suspended account updates the reason
// and closes whatever connection is open again. changed reports whether
// the suspension or its reason is new: false for a repeat, which the
// operator's audit line must not record as a suspension.
func (s *Service) Suspend(ctx context.Context, username,
	reason string) (user UserSummary, changed bool, err error) {
	if len(reason) > maxSuspendReason {
		return UserSummary{}, false, fmt.Errorf("%w: reason over %d bytes", ErrBadRequest,
			maxSuspendReason)
	}
	u, err := s.adminFind(ctx, username)
	if err != nil {
		return UserSummary{}, false, err
	}
	changed = u.SuspendedMs == 0 || u.SuspendReason != reason
	at := u.SuspendedMs
	if at == 0 {
		at = s.now().UnixMilli()
	}
	err = s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		// The devices' rows before the user's, the order a password login
		// locks them in (see setPassword).
		if _, err := revokeDevicesIn(tx, u.ID, ""); err != nil {
			return err
		}
		return tx.Model(&userRow{}).Where("id = ?", u.ID).
			Updates(map[string]any{"suspended_ms": at, "suspend_reason": reason}).Error
	})
	if err != nil {
		return UserSummary{}, false, fmt.Errorf("suspend user=%d: %w", u.ID, err)
	}
	if err := s.removePushTokens(ctx, u.ID, ""); err != nil {
		return UserSummary{}, false, err
	}
	s.closeConns(ctx, connsToClose{user: u.ID, reason: protocol.CloseReason_ACCOUNT_SUSPENDED,
		message: suspendedMessage})
	s.log.Info().Int64("user", u.ID).Bool("changed", changed).Msg("account suspended")
	u.SuspendedMs, u.SuspendReason = at, reason
	user, err = s.summary(ctx, u)
	return user, changed, err
}

// Unsuspend lifts the suspension of the account named username; its
// devices stay signed out, so the user logs in again with the password.
// changed reports whether there was a suspension to lift.
func (s *Service) Unsuspend(ctx context.Context,
	username string) (user UserSummary, changed bool, err error) {
	u, err := s.adminFind(ctx, username)
	if err != nil {
		return UserSummary{}, false, err
	}
	// Conditional, so that of two concurrent calls one lifts it and the
	// other is told there was nothing to lift.
	res := s.dbc(ctx).Model(&userRow{}).Where("id = ? AND suspended_ms <> 0", u.ID).
		Updates(map[string]any{"suspended_ms": 0, "suspend_reason": ""})
	if res.Error != nil {
		return UserSummary{}, false, fmt.Errorf("unsuspend user=%d: %w", u.ID, res.Error)
	}
	if changed = res.RowsAffected > 0; changed {
		s.log.Info().Int64("user", u.ID).Msg("account unsuspended")
	}
	u.SuspendedMs, u.SuspendReason = 0, ""
	user, err = s.summary(ctx, u)
	return user, changed, err
}

// ResetPassword sets a new random password on the account named username
// and signs every device of it out (SIGNED_OUT), as a password change does.
// The password is returned, with the account's summary after the reset,
// to be handed to the user once; it is stored only hashed and never
// logged. A suspended account stays suspended.
func (s *Service) ResetPassword(ctx context.Context,
	username string) (user UserSummary, password string, err error) {
	u, err := s.adminFind(ctx, username)
	if err != nil {
		return UserSummary{}, "", err
	}
	if password, err = randomPassword(); err != nil {
		return UserSummary{}, "", err
	}
	hash, err := s.hash.hash(ctx, password)
	if err != nil {
		return UserSummary{}, "", err
	}
	err = s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := revokeDevicesIn(tx, u.ID, ""); err != nil {
			return err
		}
		return tx.Model(&userRow{}).Where("id = ? AND deleted_ms = 0", u.ID).
			Update("password_hash", hash).Error
	})
	if err != nil {
		return UserSummary{}, "", fmt.Errorf("reset password user=%d: %w", u.ID, err)
	}
	if err := s.removePushTokens(ctx, u.ID, ""); err != nil {
		return UserSummary{}, "", err
	}
	s.signOutConns(ctx, u.ID, "", connRef{})
	s.log.Info().Int64("user", u.ID).Msg("password reset by the operator")
	user, err = s.summary(ctx, u)
	return user, password, err
}

// SignOutAll signs every device of the account named username out: their
// tokens revoked, push tokens dropped, connections closed with SIGNED_OUT.
// It returns the account's summary after, and how many devices were signed
// in before.
func (s *Service) SignOutAll(ctx context.Context,
	username string) (user UserSummary, signedOut int64, err error) {
	u, err := s.adminFind(ctx, username)
	if err != nil {
		return UserSummary{}, 0, err
	}
	if signedOut, err = s.signedInDevices(ctx, u.ID); err != nil {
		return UserSummary{}, 0, err
	}
	if _, err := s.revokeDevices(ctx, u.ID, ""); err != nil {
		return UserSummary{}, 0, err
	}
	if err := s.removePushTokens(ctx, u.ID, ""); err != nil {
		return UserSummary{}, 0, err
	}
	s.signOutConns(ctx, u.ID, "", connRef{})
	s.log.Info().Int64("user", u.ID).Int64("devices", signedOut).
		Msg("all devices signed out by the operator")
	user, err = s.summary(ctx, u)
	return user, signedOut, err
}

// adminFind returns the live account ref names (see AdminUser).
func (s *Service) adminFind(ctx context.Context, ref string) (*userRow, error) {
	u, err := s.adminLookup(ctx, ref)
	if err == nil && u.DeletedMs != 0 {
		// Deleted or being deleted: nothing is left to act on.
		return nil, fmt.Errorf("%w: user %q is deleted", ErrNotFound, ref)
	}
	return u, err
}

// adminLookup returns the account ref names, a username or "#ID", deleted
// or not.
func (s *Service) adminLookup(ctx context.Context, ref string) (*userRow, error) {
	// The writer's handle: an action right after another reads its result.
	q := s.dbc(ctx).Limit(1)
	if digits, byID := strings.CutPrefix(ref, adminIDPrefix); byID {
		id, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != digits {
			return nil, fmt.Errorf("%w: %q: want #ID, a user id such as #42", ErrBadRequest, ref)
		}
		q = q.Where("id = ?", id)
	} else {
		if err := validateUsername(ref); err != nil {
			return nil, err
		}
		q = q.Where("username = ?", canonicalName(ref))
	}
	var u userRow
	res := q.Find(&u)
	if res.Error != nil {
		return nil, fmt.Errorf("find user %q: %w", ref, res.Error)
	}
	switch {
	case res.RowsAffected == 0 && strings.HasPrefix(ref, adminIDPrefix):
		return nil, fmt.Errorf("%w: user %q", ErrNotFound, ref)
	case res.RowsAffected == 0:
		return nil, fmt.Errorf("%w: user %q (a deleted account's name is released: find it "+
			"by its id, #ID)", ErrNotFound, ref)
	}
	return &u, nil
}

// summary is u's UserSummary.
func (s *Service) summary(ctx context.Context, u *userRow) (UserSummary, error) {
	n, err := s.signedInDevices(ctx, u.ID)
	if err != nil {
		return UserSummary{}, err
	}
	sum := UserSummary{ID: u.ID, Username: u.Username, Created: u.CreatedAt.UTC(),
		SuspendReason: u.SuspendReason, Devices: n}
	if u.SuspendedMs != 0 {
		sum.Suspended = time.UnixMilli(u.SuspendedMs).UTC()
	}
	if u.DeletedMs != 0 {
		sum.Deleted = time.UnixMilli(u.DeletedMs).UTC()
	}
	return sum, nil
}

// signedInDevices counts the user's devices that hold a refresh token.
func (s *Service) signedInDevices(ctx context.Context, user int64) (int64, error) {
	var n int64
	err := s.dbc(ctx).Model(&deviceRow{}).Where("user_id = ? AND refresh_hash <> ''", user).
		Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count devices user=%d: %w", user, err)
	}
	return n, nil
}

// randomPassword returns a password of resetPasswordBytes random bytes,
// URL-safe so that it survives being pasted anywhere.
func randomPassword() (string, error) {
	b := make([]byte, resetPasswordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
