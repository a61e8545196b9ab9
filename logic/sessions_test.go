package logic

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/tokengen"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// device is one logged-in device of a test user: its session and tokens.
type device struct {
	sess    *logicrpc.Session
	token   string
	refresh string
}

// loginDevice logs name in with the test password on device over conn.
func (e *env) loginDevice(t *testing.T, name, dev string, conn int64) device {
	t.Helper()
	return e.loginDeviceWith(t, name, testPassword, dev, conn)
}

// loginDeviceWith is loginDevice with password.
func (e *env) loginDeviceWith(t *testing.T, name, password, dev string, conn int64) device {
	t.Helper()
	resp, err := e.svc.Login(context.Background(), &protocol.LoginReq{Username: name,
		Password: password, DeviceId: dev, Platform: "test-os"},
		&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: conn, RemoteAddr: "10.0.0.1:5000"})
	if err != nil {
		t.Fatalf("login %s on %s: %v", name, dev, err)
	}
	if resp.RefreshToken == "" || resp.RefreshExpiresMs <= resp.TokenExpiresMs {
		t.Fatalf("login %s: refresh %q expiring %d", name, resp.RefreshToken,
			resp.RefreshExpiresMs)
	}
	return device{token: resp.Token, refresh: resp.RefreshToken,
		sess: &logicrpc.Session{UserId: resp.UserId, DeviceId: dev, Gateway: "gw-1:9000",
			ConnId: conn, RemoteAddr: "10.0.0.1:5000", TokenGen: tokengen.Generation(resp.Token)}}
}

// tokenLogin logs in with token on a fresh connection and returns the code.
func (e *env) tokenLogin(t *testing.T, token string) common.ErrorCode {
	t.Helper()
	_, err := e.svc.Login(context.Background(), &protocol.LoginReq{Token: token},
		&logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: 999})
	return codeOf(err)
}

// signedOut returns the connections kicked with SIGNED_OUT.
func (e *env) signedOut(t *testing.T) []int64 {
	t.Helper()
	var conns []int64
	for _, k := range e.kickEvents(t) {
		if k.Reason == protocol.CloseReason_SIGNED_OUT {
			conns = append(conns, k.ConnId)
		}
	}
	return conns
}

func TestLogout_RevokesDeviceTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		if _, err := e.svc.Logout(context.Background(), phone.sess, nil); err != nil {
			t.Fatal(err)
		}
		if c := e.tokenLogin(t, phone.token); c != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("access token after logout: %s", c)
		}
		if c := e.tokenLogin(t, phone.refresh); c != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("refresh token after logout: %s", c)
		}
		if c := e.tokenLogin(t, laptop.token); c != common.ErrorCode_OK {
			t.Fatalf("other device after logout: %s", c)
		}
		// The gateway closes the logging-out connection itself.
		if got := e.signedOut(t); len(got) != 0 {
			t.Fatalf("signed out %v, want none", got)
		}
	})
}

func TestRefresh_RotatesAndDetectsReuse(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		fresh, err := e.svc.Refresh(ctx, phone.sess,
			&protocol.RefreshReq{RefreshToken: phone.refresh})
		if err != nil {
			t.Fatal(err)
		}
		if fresh.RefreshToken == phone.refresh || e.tokenLogin(t, fresh.Token) != 0 {
			t.Fatalf("refresh gave %+v", fresh)
		}
		// The login above moved the route to conn 999 of gw-2.
		other := *phone.sess
		other.DeviceId = "laptop"
		_, err = e.svc.Refresh(ctx, &other, &protocol.RefreshReq{RefreshToken: fresh.RefreshToken})
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)

		// The rotated-away token comes back once, soon: a retry whose answer
		// was lost. It gets a new pair, and nobody is signed out.
		retry, err := e.svc.Refresh(ctx, phone.sess, &protocol.RefreshReq{RefreshToken: phone.refresh})
		if err != nil {
			t.Fatalf("retry within the grace: %v", err)
		}
		if got := e.signedOut(t); len(got) != 0 {
			t.Fatalf("a retry signed out %v", got)
		}

		// The pair the retry replaced comes back: its answer did arrive, to
		// another party than the retry's. Two parties hold the device.
		_, err = e.svc.Refresh(ctx, phone.sess, &protocol.RefreshReq{RefreshToken: fresh.RefreshToken})
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
		e.wantPairOut(t, "the retry's", retry.Token, retry.RefreshToken, 999)
	})
}

// TestRefresh_RetryWithinTheGraceKeepsTheDevice checks that a retry whose
// answer was lost leaves a pair that goes on working.
func TestRefresh_RetryWithinTheGraceKeepsTheDevice(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		if _, err := e.svc.Refresh(ctx, phone.sess,
			&protocol.RefreshReq{RefreshToken: phone.refresh}); err != nil {
			t.Fatal(err)
		}
		retry, err := e.svc.Refresh(ctx, phone.sess, &protocol.RefreshReq{RefreshToken: phone.refresh})
		if err != nil {
			t.Fatalf("retry within the grace: %v", err)
		}
		e.wantRetryKeepsWorking(t, phone.sess, retry)
	})
}

// wantRetryKeepsWorking checks that the pair a retry within the grace got
// goes on working, its refresh token rotating and the access token it
// gives logging in, and that nobody was signed out.
func (e *env) wantRetryKeepsWorking(t *testing.T, sess *logicrpc.Session,
	retry *protocol.RefreshResp) {
	t.Helper()
	next, err := e.svc.Refresh(context.Background(), sess,
		&protocol.RefreshReq{RefreshToken: retry.RefreshToken})
	if err != nil {
		t.Fatalf("refresh with the retry's token: %v", err)
	}
	if c := e.tokenLogin(t, next.Token); c != common.ErrorCode_OK {
		t.Fatalf("access token after the retry: %s", c)
	}
	if got := e.signedOut(t); len(got) != 0 {
		t.Fatalf("signed out %v", got)
	}
}

// TestLogin_RotatedAwayTokenOfAThief checks a LOGIN with a refresh token
// rotated away within the grace, by a party other than the device: when the
// device comes back with the token it holds, both are signed out, rather
// than the device alone with the thief keeping its place.
func TestLogin_RotatedAwayTokenOfAThief(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		phone, held, th := e.thiefAfterRotation(t)
		_, err := e.svc.Refresh(context.Background(), phone.sess,
			&protocol.RefreshReq{RefreshToken: held.RefreshToken})
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
		wantThiefOut(t, e, th)
	})
}

func TestLogin_WithRefreshToken(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	e.register(t, "alice")
	phone := e.loginDevice(t, "alice", "phone", 1)
	resp, err := e.svc.Login(context.Background(), &protocol.LoginReq{Token: phone.refresh},
		&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 2})
	if err != nil || resp.RefreshToken == "" || resp.RefreshToken == phone.refresh {
		t.Fatalf("login = %+v, %v", resp, err)
	}
	wantRoute(t, e, route.Route{UserID: resp.UserId, DeviceID: "phone", Gateway: "gw-1:9000",
		ConnID: 2})
	_, err = e.svc.Login(context.Background(), &protocol.LoginReq{Token: resp.RefreshToken,
		DeviceId: "laptop"}, &logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 3})
	wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
}

func TestChangePassword(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		change := func(old, new string) (*protocol.ChangePasswordResp, error) {
			return e.svc.ChangePassword(ctx, phone.sess,
				&protocol.ChangePasswordReq{OldPassword: old, NewPassword_: new})
		}
		_, err := change("wrong password", "brand new pw")
		wantCode(t, err, common.ErrorCode_INVALID_CREDENTIALS)
		for _, weak := range []string{"short", "aaaaaaaaaaaa", "ALICE", ""} {
			_, err = change(testPassword, weak)
			wantCode(t, err, common.ErrorCode_BAD_REQUEST)
		}
		resp, err := change(testPassword, "brand new pw")
		if err != nil {
			t.Fatal(err)
		}
		for name, tok := range map[string]string{"phone": phone.token, "laptop": laptop.token,
			"laptop refresh": laptop.refresh} {
			if c := e.tokenLogin(t, tok); c != common.ErrorCode_TOKEN_INVALID {
				t.Fatalf("%s token after password change: %s", name, c)
			}
		}
		if got := e.signedOut(t); len(got) != 1 || got[0] != 2 {
			t.Fatalf("signed out %v, want the laptop's conn 2", got)
		}
		if c := e.tokenLogin(t, resp.Token); c != common.ErrorCode_OK {
			t.Fatalf("new token: %s", c)
		}
		_, err = e.svc.Login(ctx, &protocol.LoginReq{Username: "alice", Password: testPassword},
			&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 5})
		wantCode(t, err, common.ErrorCode_INVALID_CREDENTIALS)
	})
}

func TestSignOutDevice(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		bob := e.register(t, "bob")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		e.loginDevice(t, "bob", "tablet", 3)
		sign := func(sess *logicrpc.Session, dev string) error {
			_, err := e.svc.SignOutDevice(ctx, sess, &protocol.SignOutDeviceReq{DeviceId: dev})
			return err
		}
		wantCode(t, sign(phone.sess, "tablet"), common.ErrorCode_NOT_FOUND) // bob's device
		wantCode(t, sign(phone.sess, ""), common.ErrorCode_BAD_REQUEST)
		wantCode(t, sign(phone.sess, "\xff"), common.ErrorCode_BAD_REQUEST)
		wantCode(t, sign(&logicrpc.Session{}, "laptop"), common.ErrorCode_UNAUTHENTICATED)
		if err := sign(phone.sess, "laptop"); err != nil {
			t.Fatal(err)
		}
		if c := e.tokenLogin(t, laptop.token); c != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("signed-out device token: %s", c)
		}
		if got := e.signedOut(t); len(got) != 1 || got[0] != 2 {
			t.Fatalf("signed out %v, want conn 2", got)
		}
		if rs, _ := e.routes.Lookup(ctx, []int64{bob}); len(rs) != 1 {
			t.Fatalf("bob's routes = %+v", rs)
		}
		if c := e.tokenLogin(t, phone.token); c != common.ErrorCode_OK {
			t.Fatalf("own device after signing out another: %s", c)
		}
	})
}

func TestListDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		if err := e.svc.Disconnect(ctx, laptop.sess); err != nil {
			t.Fatal(err)
		}
		resp, err := e.svc.ListDevices(ctx, phone.sess, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*protocol.Device{}
		for _, d := range resp.Devices {
			got[d.DeviceId] = d
		}
		p, l := got["phone"], got["laptop"]
		if len(got) != 2 || p == nil || l == nil || !p.Online || !p.Current || l.Online ||
			l.Current || p.Platform != "test-os" || p.LastLoginMs == 0 {
			t.Fatalf("devices = %+v", resp.Devices)
		}
		_, err = e.svc.ListDevices(ctx, &logicrpc.Session{}, nil)
		wantCode(t, err, common.ErrorCode_UNAUTHENTICATED)
	})
}

// TestListDevices_LeavesOutSignedOut checks that a device signed out by
// SIGN_OUT_DEVICE, LOGOUT or a password change drops off the list, while a
// device whose access token merely expired stays, and a signed-out device
// that logs in with its password again comes back.
func TestListDevices_LeavesOutSignedOut(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		e.register(t, "bob")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		tablet := e.loginDevice(t, "alice", "tablet", 3)
		e.loginDevice(t, "alice", "desk", 4)
		bobPhone := e.loginDevice(t, "bob", "bob-phone", 5)
		e.loginDevice(t, "bob", "bob-laptop", 6)
		list := func(sess *logicrpc.Session) []string {
			t.Helper()
			resp, err := e.svc.ListDevices(ctx, sess, nil)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, d := range resp.Devices {
				ids = append(ids, d.DeviceId)
			}
			sort.Strings(ids)
			return ids
		}

		if _, err := e.svc.SignOutDevice(ctx, phone.sess,
			&protocol.SignOutDeviceReq{DeviceId: "laptop"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Logout(ctx, tablet.sess, nil); err != nil {
			t.Fatal(err)
		}
		changed, err := e.svc.ChangePassword(ctx, bobPhone.sess, &protocol.ChangePasswordReq{
			OldPassword: testPassword, NewPassword_: "brand new pw"})
		if err != nil {
			t.Fatal(err)
		}
		bobPhone.sess.TokenGen = tokengen.Generation(changed.Token)
		// Past the access tokens' expiry, within the refresh tokens'.
		e.svc.now = func() time.Time { return time.Now().Add(2 * DefaultTokenTTL) }
		t.Cleanup(func() { e.svc.now = time.Now })
		if got := list(phone.sess); !slices.Equal(got, []string{"desk", "phone"}) {
			t.Fatalf("alice's devices = %v, want desk and phone", got)
		}
		if got := list(bobPhone.sess); !slices.Equal(got, []string{"bob-phone"}) {
			t.Fatalf("bob's devices = %v, want bob-phone", got)
		}

		// The row stays, so its generation goes on: the laptop's old token
		// stays refused after it logs in again.
		e.svc.now = time.Now
		e.loginDevice(t, "alice", "laptop", 7)
		if got := list(phone.sess); !slices.Equal(got, []string{"desk", "laptop", "phone"}) {
			t.Fatalf("alice's devices after the laptop's login = %v", got)
		}
		if c := e.tokenLogin(t, laptop.token); c != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("signed-out laptop's old token after its new login: %s", c)
		}
	})
}

// TestAccountMethods_NilBodies checks that a caller sending no body gets a
// client error, not a panic.
func TestAccountMethods_NilBodies(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice := e.register(t, "alice")
	ctx, sess := context.Background(), session(alice, 1)
	_, err := e.svc.Refresh(ctx, sess, nil)
	wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
	_, err = e.svc.ChangePassword(ctx, sess, nil)
	wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	_, err = e.svc.SignOutDevice(ctx, sess, nil)
	wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	_, err = e.svc.SearchUsers(ctx, sess, nil)
	wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	_, err = e.svc.Block(ctx, sess, nil)
	wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	if _, err = e.svc.UpdateProfile(ctx, sess, nil); err != nil {
		t.Fatalf("update profile without a body: %v", err)
	}
}

func TestRefresh_ReuseAfterTheGraceRevokes(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		if _, err := e.svc.Refresh(ctx, phone.sess,
			&protocol.RefreshReq{RefreshToken: phone.refresh}); err != nil {
			t.Fatal(err)
		}
		e.svc.now = func() time.Time { return time.Now().Add(refreshRetryGrace + time.Second) }
		_, err := e.svc.Refresh(ctx, phone.sess, &protocol.RefreshReq{RefreshToken: phone.refresh})
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
		if got := e.signedOut(t); len(got) != 1 {
			t.Fatalf("signed out %v after a late reuse, want the device's connection", got)
		}
	})
}

// A token login soon after the last login writes nothing; a later one, or
// one naming a new platform, records the login.
func TestTokenLogin_RecordsTheLoginCoarsely(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	e.register(t, "alice")
	phone := e.loginDevice(t, "alice", "phone", 1)
	lastLogin := func() (ms int64, platform string) {
		var d deviceRow
		if err := e.db.Where("device_id = ?", "phone").Take(&d).Error; err != nil {
			t.Fatal(err)
		}
		return d.LastLoginMs, d.Platform
	}
	first, _ := lastLogin()
	e.svc.now = func() time.Time { return time.UnixMilli(first).Add(deviceTouchEvery / 2) }
	if c := e.tokenLogin(t, phone.token); c != 0 {
		t.Fatalf("token login: %s", c)
	}
	if ms, _ := lastLogin(); ms != first {
		t.Fatalf("last login moved to %d within %s", ms, deviceTouchEvery)
	}
	e.svc.now = func() time.Time { return time.UnixMilli(first).Add(deviceTouchEvery + time.Second) }
	if c := e.tokenLogin(t, phone.token); c != 0 {
		t.Fatalf("token login: %s", c)
	}
	if ms, _ := lastLogin(); ms <= first {
		t.Fatalf("last login %d not recorded after %s", ms, deviceTouchEvery)
	}
}

// TestChangePassword_AllOrNothing checks that a password change whose
// revocation of the old tokens fails changes nothing: the old password and
// every device's tokens still work, and the caller is told it failed.
func TestChangePassword_AllOrNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		failRevocations(t, e)

		_, err := e.svc.ChangePassword(ctx, phone.sess,
			&protocol.ChangePasswordReq{OldPassword: testPassword, NewPassword_: "brand new pw"})
		if err == nil {
			t.Fatal("password change succeeded with revocations failing")
		}
		stopFailing(t, e)
		if c := e.tokenLogin(t, laptop.token); c != common.ErrorCode_OK {
			t.Fatalf("other device's token after the failed change: %s", c)
		}
		for pw, want := range map[string]common.ErrorCode{testPassword: common.ErrorCode_OK,
			"brand new pw": common.ErrorCode_INVALID_CREDENTIALS} {
			_, err := e.svc.Login(ctx, &protocol.LoginReq{Username: "alice", Password: pw,
				DeviceId: "tablet"}, &logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 3})
			if c := codeOf(err); c != want {
				t.Fatalf("login with %q after the failed change: %s, want %s", pw, c, want)
			}
		}
	})
}

// failRevocations makes every update of a device's token generation fail
// on e's database until stopFailing.
func failRevocations(t *testing.T, e *env) {
	t.Helper()
	err := e.db.Callback().Update().Before("gorm:update").Register("test:fail_revoke",
		func(db *gorm.DB) {
			if m, ok := db.Statement.Dest.(map[string]any); ok && m["token_gen"] != nil {
				_ = db.AddError(errors.New("injected: revocation failed"))
			}
		})
	if err != nil {
		t.Fatal(err)
	}
}

func stopFailing(t *testing.T, e *env) {
	t.Helper()
	if err := e.db.Callback().Update().Remove("test:fail_revoke"); err != nil {
		t.Fatal(err)
	}
}

// TestChangePassword_RacingChangesWithTheSameOldPassword checks that of two
// changes proving the same old password, the one whose check ran before the
// other's write fails rather than overwriting it: otherwise both callers are
// told their password is set, and one of them is wrong.
func TestChangePassword_RacingChangesWithTheSameOldPassword(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	e.register(t, "alice")
	ctx := context.Background()
	phone := e.loginDevice(t, "alice", "phone", 1)
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	change := func(sess *logicrpc.Session, pw string) error {
		_, err := e.svc.ChangePassword(ctx, sess,
			&protocol.ChangePasswordReq{OldPassword: testPassword, NewPassword_: pw})
		return err
	}

	// The laptop's change runs whole right after the phone's change read
	// the password hash it checks the old password against.
	var armed atomic.Bool
	armed.Store(true)
	var laptopErr error
	err := e.svc.rdb.Callback().Query().After("gorm:query").Register("test:race_change",
		func(db *gorm.DB) {
			if strings.Contains(db.Statement.SQL.String(), "username") && armed.Swap(false) {
				laptopErr = change(laptop.sess, "laptop new pw")
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	phoneErr := change(phone.sess, "phone new pw")
	if armed.Load() {
		t.Fatal("the laptop's change never ran")
	}
	if laptopErr != nil {
		t.Fatalf("laptop's change: %v", laptopErr)
	}
	wantCode(t, phoneErr, common.ErrorCode_INVALID_CREDENTIALS)
	_, err = e.svc.Login(ctx, &protocol.LoginReq{Username: "alice", Password: "laptop new pw",
		DeviceId: "tablet"}, &logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 3})
	if err != nil {
		t.Fatalf("login with the laptop's new password: %v", err)
	}
}

// TestTokenLogin_RacingSignOutGetsNoNewGeneration checks an access-token
// login that checked its token just before the device was signed out: it
// records the login, reading the device's row back, and must not hand out
// a token of the generation the sign-out set, which would keep the device
// in without its password. The login is refused (keepRoute); were it not,
// its token must still be of the generation it proved.
func TestTokenLogin_RacingSignOutGetsNoNewGeneration(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)

		// The sign-out runs at the login's second clock reading: after the
		// token's generation was checked, before the login is recorded.
		var calls atomic.Int32
		var signOutErr error
		e.svc.now = func() time.Time {
			if calls.Add(1) == 2 {
				_, signOutErr = e.svc.SignOutDevice(ctx, phone.sess,
					&protocol.SignOutDeviceReq{DeviceId: "laptop"})
			}
			return time.Now()
		}
		// A new platform makes the login write the device's row.
		resp, err := e.svc.Login(ctx, &protocol.LoginReq{Token: laptop.token, Platform: "other-os"},
			&logicrpc.ConnInfo{Gateway: "gw-3:9000", ConnId: 8})
		if calls.Load() < 2 || signOutErr != nil {
			t.Fatalf("sign-out: clock read %d times, err %v", calls.Load(), signOutErr)
		}
		if err == nil {
			t.Errorf("login racing the sign-out succeeded")
			if c := e.tokenLogin(t, resp.Token); c != common.ErrorCode_TOKEN_INVALID {
				t.Fatalf("token from a login racing the sign-out: %s", c)
			}
		}
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
	})
}

// TestPasswordLogin_RacingChangePasswordGetsNoSession checks a password
// login whose password was checked just before a change of it committed: the
// change revoked every device, so the login must not then create or refresh
// its device with working tokens, nor take the changing device's refresh
// token away.
func TestPasswordLogin_RacingChangePasswordGetsNoSession(t *testing.T) {
	cases := []struct {
		name, device string
	}{
		{name: "new device", device: "laptop"},
		{name: "the changing device", device: "phone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, e *env) {
				e.register(t, "alice")
				ctx := context.Background()
				phone := e.loginDevice(t, "alice", "phone", 1)

				// The change runs whole right after the login read the
				// password hash it checks the password against.
				var armed atomic.Bool
				armed.Store(true)
				var changed *protocol.ChangePasswordResp
				var changeErr error
				err := e.svc.rdb.Callback().Query().After("gorm:query").Register("test:race_login",
					func(db *gorm.DB) {
						if strings.Contains(db.Statement.SQL.String(), "username") &&
							armed.Swap(false) {
							changed, changeErr = e.svc.ChangePassword(ctx, phone.sess,
								&protocol.ChangePasswordReq{OldPassword: testPassword,
									NewPassword_: "brand new pw"})
						}
					})
				if err != nil {
					t.Fatal(err)
				}
				resp, err := e.svc.Login(ctx, &protocol.LoginReq{Username: "alice",
					Password: testPassword, DeviceId: c.device},
					&logicrpc.ConnInfo{Gateway: "gw-3:9000", ConnId: 7})
				if armed.Load() || changeErr != nil {
					t.Fatalf("password change: ran %v, err %v", !armed.Load(), changeErr)
				}
				if err == nil {
					t.Errorf("login with the old password racing its change succeeded")
					for name, tok := range map[string]string{"access": resp.Token,
						"refresh": resp.RefreshToken} {
						if code := e.tokenLogin(t, tok); code != common.ErrorCode_TOKEN_INVALID {
							t.Errorf("the racing login's %s token: %s", name, code)
						}
					}
				} else {
					wantCode(t, err, common.ErrorCode_INVALID_CREDENTIALS)
				}
				if code := e.tokenLogin(t, changed.RefreshToken); code != common.ErrorCode_OK {
					t.Errorf("the change's refresh token after the racing login: %s", code)
				}
			})
		})
	}
}

// revokingRoutes is a route table whose Put for one connection first runs
// revoke, once: a sign-out that commits and looks the routes up after the
// login checked its token, before its route is written.
type revokingRoutes struct {
	route.Table
	conn   int64
	revoke func() error
	ran    atomic.Bool
	err    error
}

func (r *revokingRoutes) Put(ctx context.Context, rt route.Route) (*route.Route, error) {
	if rt.ConnID == r.conn && r.ran.CompareAndSwap(false, true) {
		r.err = r.revoke()
	}
	return r.Table.Put(ctx, rt)
}

// TestTokenLogin_RacingRevocationStaysLoggedOut checks a token or refresh
// login that passed its check just before its device was revoked, and put
// its route after the revocation looked the routes up to close them: the
// login must be refused and leave no route, else its connection stays open
// and logged in with revoked tokens.
func TestTokenLogin_RacingRevocationStaysLoggedOut(t *testing.T) {
	revokers := []struct {
		name   string
		revoke func(e *env, phone, laptop device) error
	}{
		{name: "sign out device", revoke: func(e *env, phone, _ device) error {
			_, err := e.svc.SignOutDevice(context.Background(), phone.sess,
				&protocol.SignOutDeviceReq{DeviceId: "laptop"})
			return err
		}},
		{name: "logout", revoke: func(e *env, _, laptop device) error {
			_, err := e.svc.Logout(context.Background(), laptop.sess, nil)
			return err
		}},
		{name: "change password", revoke: func(e *env, phone, _ device) error {
			_, err := e.svc.ChangePassword(context.Background(), phone.sess,
				&protocol.ChangePasswordReq{OldPassword: testPassword, NewPassword_: "brand new pw"})
			return err
		}},
	}
	for _, rv := range revokers {
		for _, refresh := range []bool{false, true} {
			name := rv.name + "/access token"
			if refresh {
				name = rv.name + "/refresh token"
			}
			t.Run(name, func(t *testing.T) {
				testLoginRacingRevocation(t, refresh, rv.revoke)
			})
		}
	}
}

func testLoginRacingRevocation(t *testing.T, refresh bool,
	revoke func(e *env, phone, laptop device) error) {
	const conn = 8
	routes := &revokingRoutes{conn: conn}
	e := newEnvWith(t, sqliteConfig(t), func(d *Deps) {
		routes.Table = d.Routes
		d.Routes = routes
	})
	alice := e.register(t, "alice")
	ctx := context.Background()
	phone := e.loginDevice(t, "alice", "phone", 1)
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	routes.revoke = func() error { return revoke(e, phone, laptop) }
	tok := laptop.token
	if refresh {
		tok = laptop.refresh
	}

	_, err := e.svc.Login(ctx, &protocol.LoginReq{Token: tok},
		&logicrpc.ConnInfo{Gateway: "gw-3:9000", ConnId: conn})
	if !routes.ran.Load() || routes.err != nil {
		t.Fatalf("revocation: ran %v, err %v", routes.ran.Load(), routes.err)
	}
	if code := codeOf(err); code != common.ErrorCode_TOKEN_INVALID {
		t.Errorf("login racing the revocation: %s, want TOKEN_INVALID", code)
	}
	rs, err := e.routes.Lookup(ctx, []int64{alice})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.ConnID == conn {
			t.Errorf("the refused login's route stays: %+v", r)
		}
	}
}

// TestPasswordLogin_RevokesTheDevicesOlderTokens checks that a password
// login starts its device afresh: an access token issued to the device
// before, a thief's copy say, stops working, and the new one works.
func TestPasswordLogin_RevokesTheDevicesOlderTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		old := e.loginDevice(t, "alice", "phone", 1)
		fresh := e.loginDevice(t, "alice", "phone", 2)
		if c := e.tokenLogin(t, old.token); c != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("the device's earlier access token after a password login: %s", c)
		}
		if c := e.tokenLogin(t, fresh.token); c != common.ErrorCode_OK {
			t.Fatalf("the new access token: %s", c)
		}
	})
}
