package logic

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
		next, err := e.svc.Refresh(ctx, phone.sess, &protocol.RefreshReq{RefreshToken: retry.RefreshToken})
		if err != nil {
			t.Fatalf("refresh with the retry's token: %v", err)
		}
		if c := e.tokenLogin(t, next.Token); c != common.ErrorCode_OK {
			t.Fatalf("access token after the retry: %s", c)
		}
		if got := e.signedOut(t); len(got) != 0 {
			t.Fatalf("signed out %v", got)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a logger written from several
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTokenFlows_LogNoSecrets runs logins, refreshes, a reuse, password
// changes and sign-outs, good and bad, with logs at debug, and checks that
// no token, password or stored hash appears in them, and that every failed
// request names the ids it failed on.
func TestTokenFlows_LogNoSecrets(t *testing.T) {
	var logs syncBuffer
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
		secrets = append(secrets, d.RefreshHash, d.PrevRefreshHash)
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
	var logs syncBuffer
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
