package logic

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/mqtest"
	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestRegister(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		const pw = testPassword
		bad, taken := common.ErrorCode_BAD_REQUEST, common.ErrorCode_USERNAME_TAKEN
		cases := []struct {
			name     string
			username string
			password string
			want     common.ErrorCode
		}{
			{name: "ok", username: "bob.b-2_", password: pw, want: common.ErrorCode_OK},
			{name: "taken", username: "alice", password: pw, want: taken},
			{name: "taken other case", username: "ALICE", password: pw, want: taken},
			{name: "too short", username: "ab", password: pw, want: bad},
			{name: "too long", username: strings.Repeat("a", 33), password: pw, want: bad},
			{name: "bad char", username: "al ice", password: pw, want: bad},
			{name: "non-ascii", username: "alicé", password: pw, want: bad},
			{name: "reserved for @all", username: "All", password: pw, want: bad},
			{name: "short password", username: "carol", password: "1234567", want: bad},
			{name: "long password", username: "carol", password: strings.Repeat("p", 129), want: bad},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := e.svc.Register(context.Background(),
					&protocol.RegisterReq{Username: tc.username, Password: tc.password}, testConn)
				wantCode(t, err, tc.want)
				if err == nil && resp.UserId <= 0 {
					t.Fatalf("user id = %d", resp.UserId)
				}
			})
		}
	})
}

func TestRegister_RaceHasOneWinner(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		const racers = 8
		codes := make([]common.ErrorCode, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				_, err := e.svc.Register(context.Background(),
					&protocol.RegisterReq{Username: "racer", Password: testPassword}, testConn)
				codes[i] = codeOf(err)
			})
		}
		wg.Wait()
		wins := 0
		for _, c := range codes {
			switch c {
			case common.ErrorCode_OK:
				wins++
			case common.ErrorCode_USERNAME_TAKEN:
			default:
				t.Fatalf("unexpected code %s", c)
			}
		}
		if wins != 1 {
			t.Fatalf("%d registrations won, want 1", wins)
		}
	})
}

func TestRegister_RateLimitedPerAddress(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	e.svc.limits.signup = ratelimit.New(ratelimit.Config{Burst: 3, Per: time.Hour})
	register := func(name, remote string) common.ErrorCode {
		_, err := e.svc.Register(context.Background(),
			&protocol.RegisterReq{Username: name, Password: testPassword},
			&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 1, RemoteAddr: remote})
		return codeOf(err)
	}
	cases := []struct {
		name     string
		username string
		remote   string
		want     common.ErrorCode
	}{
		{name: "first", username: "user1", remote: "10.0.0.1:1000", want: common.ErrorCode_OK},
		{name: "invalid counts too", username: "x", remote: "10.0.0.1:1001",
			want: common.ErrorCode_BAD_REQUEST},
		{name: "taken counts too", username: "user1", remote: "10.0.0.1:1002",
			want: common.ErrorCode_USERNAME_TAKEN},
		{name: "over the budget, another port", username: "user2", remote: "10.0.0.1:1003",
			want: common.ErrorCode_RATE_LIMITED},
		{name: "another address", username: "user2", remote: "10.0.0.2:1000",
			want: common.ErrorCode_OK},
		{name: "no address given", username: "user3", want: common.ErrorCode_OK},
	}
	for _, tc := range cases {
		if got := register(tc.username, tc.remote); got != tc.want {
			t.Fatalf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// The refused registration stored nothing: the name is still free.
	if got := register("user2", "10.0.0.3:1"); got != common.ErrorCode_USERNAME_TAKEN {
		t.Fatalf("user2 after its limited attempt elsewhere: %s", got)
	}
}

// TestLogin_ResolvesDevice checks that LoginResp names the device of the
// session: the one asked for, the default, or for a token login that names
// none, the token's.
func TestLogin_ResolvesDevice(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	e.register(t, "alice")
	tablet := e.loginDevice(t, "alice", "tablet", 1)
	cases := []struct {
		name string
		req  *protocol.LoginReq
		want string
	}{
		{name: "password, device named", want: "laptop", req: &protocol.LoginReq{
			Username: "alice", Password: testPassword, DeviceId: "laptop"}},
		{name: "password, no device", want: defaultDevice, req: &protocol.LoginReq{
			Username: "alice", Password: testPassword}},
		{name: "access token, no device", want: "tablet",
			req: &protocol.LoginReq{Token: tablet.token}},
		{name: "refresh token, no device", want: "tablet",
			req: &protocol.LoginReq{Token: tablet.refresh}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.svc.Login(context.Background(), tc.req,
				&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: int64(10 + i)})
			if err != nil {
				t.Fatal(err)
			}
			if resp.DeviceId != tc.want {
				t.Fatalf("device_id = %q, want %q", resp.DeviceId, tc.want)
			}
		})
	}
}

func codeOf(err error) common.ErrorCode {
	if err == nil {
		return common.ErrorCode_OK
	}
	if biz, ok := err.(*common.BizError); ok {
		return biz.Code
	}
	return -1
}

func TestLogin_Password(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice := e.register(t, "alice")
		cases := []struct {
			name     string
			username string
			password string
			device   string
			want     common.ErrorCode
			wantDev  string
		}{
			{name: "right", username: "alice", password: testPassword, device: "laptop",
				want: common.ErrorCode_OK, wantDev: "laptop"},
			{name: "default device", username: "Alice", password: testPassword,
				want: common.ErrorCode_OK, wantDev: defaultDevice},
			{name: "wrong password", username: "alice", password: "wrong password",
				want: common.ErrorCode_INVALID_CREDENTIALS},
			{name: "unknown user", username: "nobody", password: testPassword,
				want: common.ErrorCode_INVALID_CREDENTIALS},
			{name: "malformed name", username: "x", password: testPassword,
				want: common.ErrorCode_INVALID_CREDENTIALS},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				conn := &logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: int64(100 + i)}
				resp, err := e.svc.Login(context.Background(), &protocol.LoginReq{
					Username: tc.username, Password: tc.password, DeviceId: tc.device}, conn)
				wantCode(t, err, tc.want)
				if err != nil {
					return
				}
				if resp.UserId != alice || resp.Username != "alice" || resp.Token == "" {
					t.Fatalf("resp = %+v", resp)
				}
				wantRoute(t, e, route.Route{UserID: alice, DeviceID: tc.wantDev,
					Gateway: conn.Gateway, ConnID: conn.ConnId})
			})
		}
	})
}

// wantRoute fails t unless want is among the routes of its user.
func wantRoute(t *testing.T, e *env, want route.Route) {
	t.Helper()
	rs, err := e.routes.Lookup(context.Background(), []int64{want.UserID})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r == want {
			return
		}
	}
	t.Fatalf("routes = %+v, want %+v among them", rs, want)
}

func TestLogin_Token(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) { testLoginToken(t, e) })
}

func testLoginToken(t *testing.T, e *env) {
	alice := e.register(t, "alice")
	ctx := context.Background()
	conn := &logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 1}
	first, err := e.svc.Login(ctx, &protocol.LoginReq{Username: "alice", Password: testPassword,
		DeviceId: "phone"}, conn)
	if err != nil {
		t.Fatal(err)
	}
	other := tokenSigner{secret: []byte("another secret"), ttl: time.Hour}
	foreign, _ := other.issue(tokenClaims{UserID: alice, DeviceID: "phone", Generation: 1},
		time.Now())
	cases := []struct {
		name   string
		token  string
		device string
		clock  time.Duration // added to the service clock
		want   common.ErrorCode
	}{
		{name: "valid", token: first.Token, want: common.ErrorCode_OK},
		{name: "valid same device", token: first.Token, device: "phone", want: common.ErrorCode_OK},
		{name: "other device", token: first.Token, device: "tablet",
			want: common.ErrorCode_TOKEN_INVALID},
		{name: "forged signature", token: flipLast(first.Token), want: common.ErrorCode_TOKEN_INVALID},
		{name: "other secret", token: foreign, want: common.ErrorCode_TOKEN_INVALID},
		{name: "garbage", token: "not-a-token", want: common.ErrorCode_TOKEN_INVALID},
		{name: "expired", token: first.Token, clock: DefaultTokenTTL + time.Second,
			want: common.ErrorCode_TOKEN_INVALID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.svc.now = func() time.Time { return time.Now().Add(tc.clock) }
			t.Cleanup(func() { e.svc.now = time.Now })
			resp, err := e.svc.Login(ctx, &protocol.LoginReq{Token: tc.token, DeviceId: tc.device},
				&logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: 2})
			wantCode(t, err, tc.want)
			if err == nil && (resp.UserId != alice || resp.Username != "alice" ||
				resp.Token == "" || resp.TokenExpiresMs <= resp.ServerTimeMs) {
				t.Fatalf("resp = %+v", resp)
			}
		})
	}
	wantRoute(t, e, route.Route{UserID: alice, DeviceID: "phone", Gateway: "gw-2:9000", ConnID: 2})

	// The token outlives neither its device's row nor its user's.
	if err := e.db.Delete(&userRow{ID: alice}).Error; err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Login(ctx, &protocol.LoginReq{Token: first.Token},
		&logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: 3})
	wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
}

func sqliteConfig(t testing.TB) Config {
	t.Helper()
	return Config{DBDriver: DriverSQLite, DBDSN: t.TempDir() + "/logic.db"}
}

// flipLast changes the last character of a token's signature.
func flipLast(tok string) string {
	last := tok[len(tok)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return tok[:len(tok)-1] + string(repl)
}

func TestDisconnect_KeepsNewerLogin(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice := e.register(t, "alice")
	ctx := context.Background()
	login := func(conn int64) {
		_, err := e.svc.Login(ctx, &protocol.LoginReq{Username: "alice", Password: testPassword,
			DeviceId: "phone"}, &logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: conn})
		if err != nil {
			t.Fatal(err)
		}
	}
	login(1)
	login(2) // the same device moved to connection 2

	if err := e.svc.Disconnect(ctx, session(alice, 1)); err != nil {
		t.Fatalf("disconnect of a replaced connection: %v", err)
	}
	wantRoute(t, e, route.Route{UserID: alice, DeviceID: "phone", Gateway: "gw-1:9000", ConnID: 2})

	if err := e.svc.Disconnect(ctx, session(alice, 2)); err != nil {
		t.Fatal(err)
	}
	if rs, _ := e.routes.Lookup(ctx, []int64{alice}); len(rs) != 0 {
		t.Fatalf("routes after disconnect = %+v", rs)
	}
}

func TestRenew_OnlyOwner(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	ctx := context.Background()
	if _, err := e.routes.Put(ctx, route.Route{UserID: 5, DeviceID: "phone", Gateway: "gw-1:9000",
		ConnID: 7}); err != nil {
		t.Fatal(err)
	}
	sessions := []*logicrpc.Session{session(5, 7), session(5, 8), nil, {}}
	if err := e.svc.Renew(ctx, sessions); err != nil {
		t.Fatal(err)
	}
	wantRoute(t, e, route.Route{UserID: 5, DeviceID: "phone", Gateway: "gw-1:9000", ConnID: 7})
}

func TestGetUser(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice := e.register(t, "alice")
		cases := []struct {
			name    string
			session *logicrpc.Session
			req     *protocol.GetUserReq
			want    common.ErrorCode
		}{
			{name: "by name", session: session(alice, 1), req: &protocol.GetUserReq{Username: "alice"}},
			{name: "by id", session: session(alice, 1), req: &protocol.GetUserReq{UserId: alice}},
			{name: "by name any case", session: session(alice, 1),
				req: &protocol.GetUserReq{Username: "aLICE"}},
			{name: "unknown name", session: session(alice, 1), req: &protocol.GetUserReq{Username: "bob"},
				want: common.ErrorCode_NOT_FOUND},
			{name: "unknown id", session: session(alice, 1), req: &protocol.GetUserReq{UserId: alice + 99},
				want: common.ErrorCode_NOT_FOUND},
			{name: "empty", session: session(alice, 1), req: &protocol.GetUserReq{},
				want: common.ErrorCode_BAD_REQUEST},
			{name: "no session", session: &logicrpc.Session{}, req: &protocol.GetUserReq{UserId: alice},
				want: common.ErrorCode_UNAUTHENTICATED},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := e.svc.GetUser(context.Background(), tc.session, tc.req)
				wantCode(t, err, tc.want)
				if err == nil && (resp.UserId != alice || resp.Username != "alice") {
					t.Fatalf("resp = %+v", resp)
				}
			})
		}
	})
}

func TestNew_RequiresSecret(t *testing.T) {
	js, names := mqtest.JetStream(t, "test")
	cfg := sqliteConfig(t)
	db, err := OpenDB(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB(db)
	_, err = New(context.Background(), cfg, db, Deps{JS: js, MQ: names, Routes: route.NewMemory(0)})
	if err != ErrNoTokenSecret {
		t.Fatalf("err = %v, want ErrNoTokenSecret", err)
	}
}

// A refused username says which character is refused and that letters
// means ASCII letters: "å" is a letter to the person typing it.
func TestValidateUsername_NamesTheRefusedCharacter(t *testing.T) {
	for name, want := range map[string]string{
		"ålice":  "ASCII letters",
		"alicé":  "not 'é'",
		"al ice": "not ' '",
		"bob!":   "not '!'",
	} {
		err := validateUsername(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validateUsername(%q) = %v, want it to say %q", name, err, want)
		}
	}
}
