package logic

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestRefresh_BadTokens checks that no malformed, foreign or mistyped token
// refreshes, that each is TOKEN_INVALID, and that none signs anybody out.
func TestRefresh_BadTokens(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	e.register(t, "alice")
	e.register(t, "bob")
	ctx := context.Background()
	phone := e.loginDevice(t, "alice", "phone", 1)
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	bob := e.loginDevice(t, "bob", "phone", 3)
	cases := []struct {
		name, token string
	}{
		{"empty", ""},
		{"prefix only", refreshPrefix},
		{"not base64", refreshPrefix + "!!!!"},
		{"truncated", phone.refresh[:len(phone.refresh)-3]},
		{"one byte changed", phone.refresh[:len(phone.refresh)-1] + "A"},
		{"oversized", refreshPrefix + strings.Repeat("A", 1<<20)},
		{"access token", phone.token},
		{"other device", laptop.refresh},
		{"other user", bob.refresh},
	}
	for _, c := range cases {
		_, err := e.svc.Refresh(ctx, phone.sess, &protocol.RefreshReq{RefreshToken: c.token})
		if got := codeOf(err); got != common.ErrorCode_TOKEN_INVALID {
			t.Errorf("%s: %s, want TOKEN_INVALID", c.name, got)
		}
	}
	for name, tok := range map[string]string{"alice phone": phone.refresh,
		"alice laptop": laptop.refresh, "bob": bob.refresh} {
		if c := e.tokenLogin(t, tok); c != common.ErrorCode_OK {
			t.Errorf("%s refresh token after the bad ones: %s", name, c)
		}
	}
	if got := e.signedOut(t); len(got) != 0 {
		t.Fatalf("bad tokens signed out %v", got)
	}
}

// TestRefresh_RetryRacingItsOriginal checks a retry whose original rotation
// is still running: it reads the token as current, loses the write to the
// original, and is then judged as a retry within the grace, not refused.
func TestRefresh_RetryRacingItsOriginal(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		req := &protocol.RefreshReq{RefreshToken: phone.refresh}

		// The retry reads the device, then the original (whose answer is
		// lost) rotates, then the retry writes.
		var armed atomic.Bool
		armed.Store(true)
		var originalErr error
		e.svc.now = func() time.Time {
			if armed.Swap(false) {
				_, originalErr = e.svc.Refresh(ctx, phone.sess, req)
			}
			return time.Now()
		}
		retry, err := e.svc.Refresh(ctx, phone.sess, req)
		if armed.Load() || originalErr != nil {
			t.Fatalf("original rotation: ran %v, err %v", !armed.Load(), originalErr)
		}
		if err != nil {
			t.Fatalf("retry racing its original: %v", err)
		}
		e.wantRetryKeepsWorking(t, phone.sess, retry)
	})
}

// TestTokenFlows_LogNoSecrets runs logins, refreshes, a reuse, password
// changes and sign-outs, good and bad, with logs at debug, and checks that
// no token, password or stored hash appears in them, and that every failed
// request names the ids it failed on.
func TestTokenFlows_LogNoSecrets(t *testing.T) {
	var logs syncbuf.Buffer
	e := newEnvWith(t, sqliteConfig(t), func(d *Deps) {
		d.Log = zerolog.New(&logs).Level(zerolog.DebugLevel)
	})
	e.register(t, "alice")
	ctx := context.Background()
	phone := e.loginDevice(t, "alice", "phone", 1)
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	secrets := []string{testPassword, "brand new pw", "wrong password",
		phone.token, phone.refresh, laptop.token, laptop.refresh}
	refresh := func(tok string) *protocol.RefreshResp {
		resp, _ := e.svc.Refresh(ctx, phone.sess, &protocol.RefreshReq{RefreshToken: tok})
		if resp != nil {
			secrets = append(secrets, resp.Token, resp.RefreshToken)
		}
		return resp
	}
	first := refresh(phone.refresh)
	refresh(phone.refresh)      // a retry within the grace
	refresh(first.RefreshToken) // the pair it replaced: the device is revoked
	refresh(phone.token)        // an access token for a refresh token
	e.tokenLogin(t, laptop.token+"x")
	for _, pw := range []string{"wrong password", testPassword} {
		resp, _ := e.svc.ChangePassword(ctx, laptop.sess,
			&protocol.ChangePasswordReq{OldPassword: pw, NewPassword_: "brand new pw"})
		if resp != nil {
			secrets = append(secrets, resp.Token, resp.RefreshToken)
		}
	}
	_, _ = e.svc.SignOutDevice(ctx, laptop.sess, &protocol.SignOutDeviceReq{DeviceId: "phone"})

	var hashes []deviceRow
	if err := e.db.Find(&hashes).Error; err != nil {
		t.Fatal(err)
	}
	for _, d := range hashes {
		secrets = append(secrets, d.RefreshHash, d.PrevRefreshHash, d.ContestedRefreshHash)
	}
	out := logs.String()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(out, sec) {
			t.Errorf("log holds the secret %.12s...", sec)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(line, `"request failed"`) && !strings.Contains(line, `"user":`) &&
			!strings.Contains(line, `"conn":`) {
			t.Errorf("failure logged without ids: %s", line)
		}
	}
	if !strings.Contains(out, "request failed") {
		t.Fatalf("no failure logged at all:\n%s", out)
	}
	t.Logf("%s", out)
}

// TestTokenFlows_LogWhomAndFromWhere checks that a failed token login names
// the user and device its token claims, that a grace retry of a refresh
// token (which a thief can make) is logged with the connection that made
// it, and that the reuse warning names the connection that presented the
// token.
func TestTokenFlows_LogWhomAndFromWhere(t *testing.T) {
	var logs syncbuf.Buffer
	e := newEnvWith(t, sqliteConfig(t), func(d *Deps) {
		d.Log = zerolog.New(&logs).Level(zerolog.DebugLevel)
	})
	alice := e.register(t, "alice")
	ctx := context.Background()
	phone := e.loginDevice(t, "alice", "phone", 1)
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	loginFrom := func(token string, conn int64, remote string) *protocol.LoginResp {
		resp, _ := e.svc.Login(ctx, &protocol.LoginReq{Token: token},
			&logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: conn, RemoteAddr: remote})
		return resp
	}

	loginFrom(flipLast(laptop.token), 71, "10.7.7.1:1")
	// A character of the random part changed, so the token still names the
	// laptop.
	i := len(refreshPrefix) + 20
	loginFrom(laptop.refresh[:i]+flipLast(laptop.refresh[i:i+1])+laptop.refresh[i+1:],
		72, "10.7.7.2:1")
	first, err := e.svc.Refresh(ctx, phone.sess, &protocol.RefreshReq{RefreshToken: phone.refresh})
	if err != nil {
		t.Fatal(err)
	}
	if loginFrom(phone.refresh, 73, "10.7.7.3:1") == nil {
		t.Fatal("login with the rotated-away token within the grace refused")
	}
	loginFrom(first.RefreshToken, 74, "10.7.7.4:1") // replaced by the retry: reuse

	wants := []struct {
		name, msg, device, remote string
		conn                      int64
	}{
		{name: "bad access token", msg: "request failed", device: "laptop", conn: 71,
			remote: "10.7.7.1:1"},
		{name: "bad refresh token", msg: "request failed", device: "laptop", conn: 72,
			remote: "10.7.7.2:1"},
		{name: "grace retry", msg: "rotated-away refresh token retried within the grace",
			device: "phone", conn: 73, remote: "10.7.7.3:1"},
		{name: "reuse", msg: "rotated refresh token reused; device signed out",
			device: "phone", conn: 74, remote: "10.7.7.4:1"},
	}
	lines := logLines(t, logs.String())
	for _, w := range wants {
		found := false
		for _, l := range lines {
			found = found || l["message"] == w.msg && l["conn"] == float64(w.conn) &&
				l["user"] == float64(alice) && l["device"] == w.device && l["remote"] == w.remote
		}
		if !found {
			t.Errorf("%s: no %q line naming user %d, device %s, conn %d, remote %s",
				w.name, w.msg, alice, w.device, w.conn, w.remote)
		}
	}
	if t.Failed() {
		t.Logf("%s", logs.String())
	}
}

// logLines decodes a JSON log, one object a line.
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// TestRefresh_GraceBoundedAgainstASkewedClock checks a retry judged by a
// logic instance whose clock is behind the one that rotated: the time since
// the rotation reads negative, and must count as within the grace only
// while it is within the grace's length, not for as long as the clocks
// disagree.
func TestRefresh_GraceBoundedAgainstASkewedClock(t *testing.T) {
	cases := []struct {
		name   string
		behind time.Duration
		want   common.ErrorCode
	}{
		{name: "slightly behind", behind: refreshRetryGrace / 2, want: common.ErrorCode_OK},
		{name: "behind by more than the grace", behind: refreshRetryGrace + time.Second,
			want: common.ErrorCode_TOKEN_INVALID},
		{name: "an hour behind", behind: time.Hour, want: common.ErrorCode_TOKEN_INVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, sqliteConfig(t))
			e.register(t, "alice")
			ctx := context.Background()
			phone := e.loginDevice(t, "alice", "phone", 1)
			if _, err := e.svc.Refresh(ctx, phone.sess,
				&protocol.RefreshReq{RefreshToken: phone.refresh}); err != nil {
				t.Fatal(err)
			}
			e.svc.now = func() time.Time { return time.Now().Add(-c.behind) }
			_, err := e.svc.Refresh(ctx, phone.sess,
				&protocol.RefreshReq{RefreshToken: phone.refresh})
			if got := codeOf(err); got != c.want {
				t.Fatalf("retry %v behind the rotating clock: %s, want %s", c.behind, got, c.want)
			}
		})
	}
}

// thief is a party that logged in with a device's rotated-away refresh
// token, on conn 666 of gw-2, and the tokens it holds now.
type thief struct {
	sess    *logicrpc.Session
	access  string
	refresh string
}

// thiefLogin logs in with token as a thief would; ok is false when the
// login was refused.
func (e *env) thiefLogin(t *testing.T, token string) (th thief, ok bool) {
	t.Helper()
	resp, err := e.svc.Login(context.Background(), &protocol.LoginReq{Token: token},
		&logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: 666, RemoteAddr: "10.6.6.6:1"})
	if err != nil {
		return thief{}, false
	}
	return thief{access: resp.Token, refresh: resp.RefreshToken,
		sess: &logicrpc.Session{UserId: resp.UserId, DeviceId: "phone", Gateway: "gw-2:9000",
			ConnId: 666, RemoteAddr: "10.6.6.6:1"}}, true
}

// refreshWith rotates the thief's refresh token, as the thief would.
func (th *thief) refreshWith(t *testing.T, e *env) {
	t.Helper()
	resp, err := e.svc.Refresh(context.Background(), th.sess,
		&protocol.RefreshReq{RefreshToken: th.refresh})
	if err != nil {
		t.Fatalf("the thief's refresh: %v", err)
	}
	th.access, th.refresh = resp.Token, resp.RefreshToken
}

// wantThiefOut fails unless the thief's tokens stopped working and its
// connection was signed out.
func wantThiefOut(t *testing.T, e *env, th thief) {
	t.Helper()
	e.wantPairOut(t, "the thief's", th.access, th.refresh, th.sess.ConnId)
}

// wantPairOut fails unless the access and refresh tokens (of the holder
// whose names) stopped working and conn, alone, was signed out.
func (e *env) wantPairOut(t *testing.T, whose, access, refresh string, conn int64) {
	t.Helper()
	for name, tok := range map[string]string{"access": access, "refresh": refresh} {
		if c := e.tokenLogin(t, tok); c != common.ErrorCode_TOKEN_INVALID {
			t.Errorf("%s %s token: %s", whose, name, c)
		}
	}
	if got := e.signedOut(t); len(got) != 1 || got[0] != conn {
		t.Errorf("signed out %v, want conn %d", got, conn)
	}
}

// thiefAfterRotation logs alice's phone in, refreshes it (held is the pair
// the answer carried) and has a thief log in with the rotated-away token
// within the grace.
func (e *env) thiefAfterRotation(t *testing.T) (phone device, held *protocol.RefreshResp,
	th thief) {
	t.Helper()
	e.register(t, "alice")
	phone = e.loginDevice(t, "alice", "phone", 1)
	held, err := e.svc.Refresh(context.Background(), phone.sess,
		&protocol.RefreshReq{RefreshToken: phone.refresh})
	if err != nil {
		t.Fatal(err)
	}
	th, ok := e.thiefLogin(t, phone.refresh)
	if !ok {
		t.Fatal("login with the rotated-away token within the grace refused")
	}
	return phone, held, th
}

// TestRefresh_ThiefWhoRefreshesAfterItsGraceRetry checks a thief that logs
// in with a rotated-away refresh token within the grace and then refreshes:
// its normal rotation must not hide the pair its retry displaced, so the
// device coming back with that pair signs both out.
func TestRefresh_ThiefWhoRefreshesAfterItsGraceRetry(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		phone, held, th := e.thiefAfterRotation(t)
		th.refreshWith(t, e)

		_, err := e.svc.Refresh(ctx, phone.sess,
			&protocol.RefreshReq{RefreshToken: held.RefreshToken})
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
		wantThiefOut(t, e, th)
	})
}

// TestRefresh_SecondGraceRetryRevokes checks that a party that made a grace
// retry cannot make another, after refreshing, to replace the mark the
// first one left: the second retry revokes the device.
func TestRefresh_SecondGraceRetryRevokes(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		phone, held, th := e.thiefAfterRotation(t)
		before := th.refresh
		th.refreshWith(t, e)

		if _, ok := e.thiefLogin(t, before); ok {
			t.Fatal("a second grace retry was let in")
		}
		wantThiefOut(t, e, th)
		_, err := e.svc.Refresh(ctx, phone.sess,
			&protocol.RefreshReq{RefreshToken: held.RefreshToken})
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
	})
}

// TestRefresh_LostAnswerRetryKeepsWorking checks that the device's own
// retry after a lost answer leaves a pair that goes on rotating: the mark
// the retry leaves must not catch the device's later refreshes.
func TestRefresh_LostAnswerRetryKeepsWorking(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		if _, err := e.svc.Refresh(ctx, phone.sess,
			&protocol.RefreshReq{RefreshToken: phone.refresh}); err != nil {
			t.Fatal(err)
		}
		cur, err := e.svc.Refresh(ctx, phone.sess,
			&protocol.RefreshReq{RefreshToken: phone.refresh})
		if err != nil {
			t.Fatalf("retry within the grace: %v", err)
		}
		for i := range 3 {
			cur, err = e.svc.Refresh(ctx, phone.sess,
				&protocol.RefreshReq{RefreshToken: cur.RefreshToken})
			if err != nil {
				t.Fatalf("refresh %d after the retry: %v", i+1, err)
			}
		}
		if c := e.tokenLogin(t, cur.Token); c != common.ErrorCode_OK {
			t.Fatalf("access token after the refreshes: %s", c)
		}
		if got := e.signedOut(t); len(got) != 0 {
			t.Fatalf("signed out %v", got)
		}
	})
}

// TestRefresh_PasswordLoginClearsTheMark checks that a password login, which
// starts the device afresh, forgets a grace retry made before it: the
// device's next lost answer gets its retry again.
func TestRefresh_PasswordLoginClearsTheMark(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		loseAnswerAndRetry := func(phone device) *protocol.RefreshResp {
			t.Helper()
			if _, err := e.svc.Refresh(ctx, phone.sess,
				&protocol.RefreshReq{RefreshToken: phone.refresh}); err != nil {
				t.Fatal(err)
			}
			retry, err := e.svc.Refresh(ctx, phone.sess,
				&protocol.RefreshReq{RefreshToken: phone.refresh})
			if err != nil {
				t.Fatalf("retry within the grace: %v", err)
			}
			return retry
		}
		loseAnswerAndRetry(e.loginDevice(t, "alice", "phone", 1))
		retry := loseAnswerAndRetry(e.loginDevice(t, "alice", "phone", 2))
		if c := e.tokenLogin(t, retry.Token); c != common.ErrorCode_OK {
			t.Fatalf("access token after the retry: %s", c)
		}
	})
}

// TestRefresh_OwnersRetryAfterAThiefsRevokes checks the retry of a lost
// answer when a thief holding the same token made the retry first: the
// owner's retry finds it spent and signs both out, rather than the owner
// alone being refused.
func TestRefresh_OwnersRetryAfterAThiefsRevokes(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		// The refresh's answer is lost on the way to the owner.
		phone, _, th := e.thiefAfterRotation(t)
		_, err := e.svc.Refresh(context.Background(), phone.sess,
			&protocol.RefreshReq{RefreshToken: phone.refresh})
		wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
		wantThiefOut(t, e, th)
	})
}
