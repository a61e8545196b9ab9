package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/bench/scenario"
	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/logic"
)

// External services for the integration variant; CI sets them.
const (
	envMySQL = "RESONANCE_TEST_MYSQL_DSN"
	envRedis = "RESONANCE_TEST_REDIS_ADDR"
	envNATS  = "RESONANCE_TEST_NATS_URL"
)

// testLog is quiet unless RESONANCE_TEST_LOG names a level.
func testLog(t *testing.T) zerolog.Logger {
	level := os.Getenv("RESONANCE_TEST_LOG")
	if level == "" {
		return zerolog.Nop()
	}
	lvl, _ := zerolog.ParseLevel(level)
	return zerolog.New(zerolog.NewTestWriter(t)).Level(lvl).With().Timestamp().Logger()
}

func baseConfig(t *testing.T, role Role) Config {
	return Config{
		Role:        role,
		DataDir:     t.TempDir(),
		Prefix:      fmt.Sprintf("e2e%d", time.Now().UnixNano()),
		LogicListen: "127.0.0.1:0",
		PushListen:  "127.0.0.1:0",
		HTTPListen:  "127.0.0.1:0",
		// Cheap password hashes: the suites log in hundreds of times, and
		// at full cost (about 20 ms of a core each) a loaded CI machine
		// turned logins into timeouts. logic's tests cover the real cost.
		Logic: logic.Config{HashMemoryKiB: 64, HashTime: 1},
	}
}

func startSystem(t *testing.T, cfg Config) *System {
	t.Helper()
	cfg.Gateway.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sys, err := Start(ctx, cfg, testLog(t))
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Role, err)
	}
	t.Cleanup(sys.Stop)
	return sys
}

// services are the external services of a system whose roles run alone.
type services struct {
	dsn, natsURL string
	redisAddr    string // one address, or comma-separated cluster seeds
}

// externalServices returns MariaDB, Redis and NATS from the environment,
// or skips t when they are not set.
func externalServices(t *testing.T) services {
	svc := services{dsn: os.Getenv(envMySQL), redisAddr: os.Getenv(envRedis),
		natsURL: os.Getenv(envNATS)}
	if svc.dsn == "" || svc.redisAddr == "" || svc.natsURL == "" {
		t.Skipf("set %s, %s and %s to run against real services", envMySQL, envRedis, envNATS)
	}
	return svc
}

// externalSystem runs each role as its own System, as separate processes
// would, against MariaDB, Redis and NATS. It skips when they are not set.
func externalSystem(t *testing.T) net.Addr {
	addr, _ := startExternal(t, externalServices(t), nil)
	return addr
}

// startExternal starts logic, task and the gateway, each as its own System,
// on svc, with tune (if not nil) applied to the configuration all three
// share. It returns the gateway's client address and the run's prefix.
func startExternal(t *testing.T, svc services, tune func(*Config)) (net.Addr, string) {
	base := baseConfig(t, RoleLogic)
	base.NATSURL, base.RedisAddr = svc.natsURL, svc.redisAddr
	base.Logic.DBDriver, base.Logic.DBDSN = "mysql", svc.dsn
	base.Logic.TablePrefix = base.Prefix + "_"
	base.Logic.TokenSecret = "e2e-secret-e2e-secret-e2e-secret"
	// Every role alone must take and send the secret: gateway to logic, task
	// to the gateway.
	base.InternalSecret = "e2e-internal-secret"
	if tune != nil {
		tune(&base)
	}

	t.Cleanup(func() {
		dropTables(t, svc.dsn, base.Logic.TablePrefix)
		deleteStream(t, svc.natsURL, mq.NewNames(base.Prefix).Stream)
		deleteStream(t, svc.natsURL, mq.NewNames(base.Prefix).LeaseStream())
		deleteRedisKeys(t, base, base.Prefix+":")
	})
	logicSys := startSystem(t, base)
	taskCfg := base
	taskCfg.Role = RoleTask
	startSystem(t, taskCfg)
	gwCfg := base
	gwCfg.Role = RoleGateway
	gwCfg.LogicAddrs = []string{logicSys.LogicAddr().String()}
	return startSystem(t, gwCfg).GatewayAddr(), base.Prefix
}

func TestEndToEnd_Embedded(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	runEndToEnd(t, sys.GatewayAddr())
	t.Run("smoke again on the same server", func(t *testing.T) {
		// Registrations and password logins are limited per client address;
		// a second run from one address would exceed them. The bench spreads
		// its users over loopback source addresses, as a user re-running it
		// by hand needs.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := scenario.Smoke(ctx, scenario.SmokeConfig{
			Addr: sys.GatewayAddr().String(), Users: 30, Messages: 2,
		})
		if err != nil || !res.OK() {
			t.Fatalf("second smoke: %+v, %v", res, err)
		}
	})
	t.Run("operational endpoints", func(t *testing.T) {
		base := "http://" + sys.HTTPAddr().String()
		for path, want := range map[string]string{
			"/healthz": "ok", "/readyz": "ready",
			"/metrics":      `resonance_gateway_frames_in_total{op="send"}`,
			"/metrics?db":   `resonance_db_query_seconds_count{op="create"}`,
			"/metrics?rpc":  `resonance_gateway_logic_call_seconds_count{method="SendRuns",outcome="ok"}`,
			"/metrics?task": `resonance_task_events_total{outcome="pushed"}`,
		} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
				t.Fatalf("GET %s = %d, body lacks %q", path, resp.StatusCode, want)
			}
		}
	})
}

func TestEndToEnd_External(t *testing.T) {
	runEndToEnd(t, externalSystem(t))
}

func runEndToEnd(t *testing.T, addr net.Addr) {
	t.Run("chat", func(t *testing.T) { testChat(t, addr.String()) })
	t.Run("groups", func(t *testing.T) { testGroups(t, addr.String()) })
	t.Run("account", func(t *testing.T) { testAccount(t, addr.String()) })
	t.Run("session logout", func(t *testing.T) { testSessionLogout(t, addr.String()) })
	t.Run("session change password", func(t *testing.T) {
		testSessionChangePassword(t, addr.String())
	})
	t.Run("smoke", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := scenario.Smoke(ctx, scenario.SmokeConfig{
			Addr: addr.String(), Users: 8, Messages: 20,
		})
		if err != nil {
			t.Fatalf("smoke: %v", err)
		}
		if res.Lost != 0 || res.Duplicated != 0 || res.Reordered != 0 || res.Acked != 8*20 {
			t.Fatalf("smoke result %+v", res)
		}
	})
}

// dialFor dials addr for the rest of the test and returns a context of 10
// seconds for its requests.
func dialFor(t *testing.T, addr string) (context.Context, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

// user is one logged-in device in a test.
type user struct {
	*client.Client
	id   int64
	name string
}

func login(t *testing.T, addr, name, device string, register bool) *user {
	t.Helper()
	ctx, c := dialFor(t, addr)
	if register {
		if _, err := c.Register(ctx, name, "correct horse"); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	resp, err := c.Login(ctx, client.LoginParams{Username: name, Password: "correct horse", DeviceID: device})
	if err != nil {
		t.Fatalf("login %s/%s: %v", name, device, err)
	}
	return &user{Client: c, id: resp.UserId, name: name}
}

func testChat(t *testing.T, addr string) {
	suffix := time.Now().UnixNano() % 1_000_000_000
	alice := login(t, addr, fmt.Sprintf("alice%d", suffix), "phone", true)
	bob := login(t, addr, fmt.Sprintf("bob%d", suffix), "laptop", true)
	alicePC := login(t, addr, alice.name, "desktop", false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	ack, err := alice.Send(ctx, client.SendParams{ToUserID: bob.id, ClientMsgID: "a-1", Text: "hi bob"})
	if err != nil {
		t.Fatalf("alice send: %v", err)
	}
	if ack.Seq != 1 || ack.ConvId != client.P2PConvID(alice.id, bob.id) {
		t.Fatalf("ack = %+v, want seq 1 in %s", ack, client.P2PConvID(alice.id, bob.id))
	}
	expectPush(t, bob, ack.MsgId, "hi bob")
	expectPush(t, alicePC, ack.MsgId, "hi bob") // the sender's other device

	// A retry with the same client id stores nothing and keeps the ack.
	again, err := alice.Send(ctx, client.SendParams{ToUserID: bob.id, ClientMsgID: "a-1", Text: "hi bob"})
	if err != nil || again.MsgId != ack.MsgId || again.Seq != 1 || !again.Duplicate {
		t.Fatalf("retry = %+v, %v; want the first ack marked duplicate", again, err)
	}

	reply, err := bob.Send(ctx, client.SendParams{ToUserID: alice.id, Text: "hello alice"})
	if err != nil {
		t.Fatalf("bob send: %v", err)
	}
	if reply.Seq != 2 {
		t.Fatalf("reply seq = %d, want 2", reply.Seq)
	}
	expectPush(t, alice, reply.MsgId, "hello alice")
	expectPush(t, alicePC, reply.MsgId, "hello alice")

	hist, err := bob.Sync(ctx, ack.ConvId, 0, 10)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if len(hist.Messages) != 2 || hist.Messages[0].Seq != 1 || hist.Messages[1].Seq != 2 {
		t.Fatalf("sync = %d messages %+v, want seqs 1 and 2", len(hist.Messages), hist.Messages)
	}
	assertNoPush(t, alice, bob) // the duplicate was not delivered again

	// A third user may not read a conversation that is not theirs.
	eve := login(t, addr, fmt.Sprintf("eve%d", suffix), "x", true)
	_, err = eve.Sync(ctx, ack.ConvId, 0, 10)
	var cerr *client.Error
	if !asClientError(err, &cerr) || cerr.Code != common.ErrorCode_FORBIDDEN {
		t.Fatalf("eve sync err = %v, want FORBIDDEN", err)
	}
}

func expectPush(t *testing.T, u *user, msgID int64, text string) {
	t.Helper()
	select {
	case m := <-u.Messages():
		if m.MsgId != msgID || string(m.Content) != text {
			t.Fatalf("%s got push %d %q, want %d %q", u.name, m.MsgId, m.Content, msgID, text)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no push of message %d within 10s", u.name, msgID)
	}
}

func assertNoPush(t *testing.T, users ...*user) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // pushes in flight would arrive by now on loopback
	for _, u := range users {
		select {
		case m := <-u.Messages():
			t.Fatalf("%s got unexpected push %d seq %d", u.name, m.MsgId, m.Seq)
		default:
		}
	}
}

func asClientError(err error, target **client.Error) bool {
	return errors.As(err, target)
}

// deleteStream removes the JetStream stream a run created on a shared NATS.
func deleteStream(t *testing.T, url, stream string) {
	nc, err := mq.Dial(url, "e2e-cleanup")
	if err != nil {
		t.Logf("delete stream: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = js.DeleteStream(ctx, stream)
	}
	if err != nil {
		t.Logf("delete stream %s: %v", stream, err)
	}
}

// dropTables removes the tables a MariaDB run created under its prefix.
func dropTables(t *testing.T, dsn, prefix string) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Logf("drop tables: %v", err)
		return
	}
	defer db.Close()
	rows, err := db.Query("SELECT table_name FROM information_schema.tables"+
		" WHERE table_schema = DATABASE() AND table_name LIKE ?", prefix+"%")
	if err != nil {
		t.Logf("drop tables: %v", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		if _, err := db.Exec("DROP TABLE `" + n + "`"); err != nil {
			t.Logf("drop table %s: %v", n, err)
		}
	}
}

// testAccount runs the Go SDK's account calls against the real server: a
// profile found by search, a device signed out from another, a password
// change and a logout, each checked by what the server then refuses.
func testAccount(t *testing.T, addr string) {
	name := fmt.Sprintf("carol%d", time.Now().UnixNano()%1_000_000_000)
	phone := login(t, addr, name, "phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	laptopToken := loginToken(t, addr, name, "laptop", "correct horse")
	_, lc := dialFor(t, addr)
	if _, err := lc.Login(ctx, client.LoginParams{Token: laptopToken, DeviceID: "laptop"}); err != nil {
		t.Fatalf("token login of the laptop: %v", err)
	}
	laptop := &user{Client: lc, id: phone.id, name: name + "/laptop"}

	nick := "Carol C."
	info, err := phone.UpdateProfile(ctx, client.ProfileParams{Nickname: &nick})
	if err != nil || info.GetNickname() != nick {
		t.Fatalf("update profile = %+v, %v; want nickname %q", info, err, nick)
	}
	found, err := laptop.SearchUsers(ctx, name, 5)
	if err != nil || len(found) != 1 || found[0].GetUserId() != phone.id ||
		found[0].GetNickname() != nick {
		t.Fatalf("search %q = %+v, %v; want carol with her nickname", name, found, err)
	}

	// The laptop signed out from the phone: closed, and its token refused.
	if err := phone.SignOutDevice(ctx, "laptop"); err != nil {
		t.Fatalf("sign out laptop: %v", err)
	}
	expectSignedOut(t, laptop)
	expectTokenRefused(t, addr, laptopToken, "laptop")

	// A new password: the old one is refused, the new one logs in.
	pair, err := phone.ChangePassword(ctx, "correct horse", "battery staple")
	if err != nil || pair.GetToken() == "" {
		t.Fatalf("change password = %+v, %v", pair, err)
	}
	// The phone's connection goes on under the generation of its new
	// tokens, which the gateway took from the reply: its writes are not
	// refused as a signed-out device's.
	if err := phone.SetPushToken(ctx, protocol.PushPlatform_APNS, "phone-push",
		"app"); err != nil {
		t.Fatalf("set push token after the password change: %v", err)
	}
	_, c := dialFor(t, addr)
	if _, err := c.Login(ctx, client.LoginParams{Username: name, Password: "correct horse",
		DeviceID: "tablet"}); client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("login with the old password: %v, want INVALID_CREDENTIALS", err)
	}
	tabletToken := loginToken(t, addr, name, "tablet", "battery staple")

	// The tablet signs its own device out: done, though the close mostly
	// overtakes the reply; closed, its token refused.
	tc, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if _, err := tc.Login(ctx, client.LoginParams{Token: tabletToken,
		DeviceID: "tablet"}); err != nil {
		t.Fatalf("token login of the tablet: %v", err)
	}
	if err := tc.SignOutDevice(ctx, "tablet"); err != nil {
		t.Fatalf("sign out its own device: %v", err)
	}
	expectSignedOut(t, &user{Client: tc, id: phone.id, name: name + "/tablet"})
	expectTokenRefused(t, addr, tabletToken, "tablet")

	// Logout: the phone is closed, and the token the password change gave
	// it is refused.
	if err := phone.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	expectSignedOut(t, phone)
	expectTokenRefused(t, addr, pair.GetToken(), "phone")
}

// testSessionLogout runs Session.Logout against the real server: what was
// handed over is reported as delivered, the LOGOUT is answered, and the
// session's token is refused after.
func testSessionLogout(t *testing.T, addr string) {
	name := fmt.Sprintf("dave%d", time.Now().UnixNano()%1_000_000_000)
	peer := login(t, addr, name+"x", "laptop", true)
	login(t, addr, name, "setup", true) // registers
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tokens := make(chan string, 4)
	sess, err := client.OpenSession(ctx, client.SessionConfig{
		Addr: addr,
		Login: client.LoginParams{Username: name, Password: "correct horse",
			DeviceID: "phone"},
		AckInterval: time.Hour, // only the last DELIVERED reports the hand-over
		OnEvent: func(e client.Event) {
			if e.Kind == client.EventConnected {
				tokens <- e.Login.Token
			}
		},
	})
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	defer sess.Close()
	token := <-tokens
	ack, err := peer.Send(ctx, client.SendParams{ToUserID: sess.UserID(), Text: "bye"})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	select {
	case m := <-sess.Messages():
		if m.Seq != ack.Seq {
			t.Fatalf("session got seq %d, want %d", m.Seq, ack.Seq)
		}
	case <-ctx.Done():
		t.Fatal("the message was not handed over")
	}

	if err := sess.Logout(ctx); err != nil {
		t.Fatalf("session logout: %v", err)
	}
	if err := sess.Err(); !errors.Is(err, client.ErrLoggedOut) {
		t.Fatalf("Err after Logout = %v, want ErrLoggedOut", err)
	}
	expectTokenRefused(t, addr, token, "phone")
	next := login(t, addr, name, "phone", false)
	convs, err := next.SyncConvs(ctx, "", 10)
	if err != nil {
		t.Fatalf("sync convs: %v", err)
	}
	var delivered int64 = -1
	for _, cv := range convs.GetConvs() {
		if cv.GetConvId() == ack.ConvId {
			delivered = cv.GetDeliveredSeq()
		}
	}
	if delivered != ack.Seq {
		t.Fatalf("delivered position after Logout = %d, want %d", delivered, ack.Seq)
	}
}

// testSessionChangePassword runs Session.ChangePassword against the real
// server: the session's connection, dropped after the change, logs in again
// with the pair the change gave, while the tokens from before the change
// and the old password are refused.
func testSessionChangePassword(t *testing.T, addr string) {
	name := fmt.Sprintf("erin%d", time.Now().UnixNano()%1_000_000_000)
	login(t, addr, name, "setup", true) // registers
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	logins := make(chan *protocol.LoginResp, 4)
	sess, err := client.OpenSession(ctx, client.SessionConfig{
		Addr: addr,
		Login: client.LoginParams{Username: name, Password: "correct horse",
			DeviceID: "phone"},
		MinBackoff: 10 * time.Millisecond,
		OnEvent: func(e client.Event) {
			if e.Kind == client.EventConnected {
				logins <- e.Login
			}
		},
	})
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	defer sess.Close()
	first := <-logins

	pair, err := sess.ChangePassword(ctx, "correct horse", "battery staple")
	if err != nil || pair.GetToken() == "" || pair.GetRefreshToken() == "" {
		t.Fatalf("session change password = %+v, %v", pair, err)
	}
	// The connection drops as a network would drop it; the session logs in
	// again on its own.
	c, err := sess.Client(ctx)
	if err != nil {
		t.Fatalf("session client: %v", err)
	}
	_ = c.Close()
	select {
	case again := <-logins:
		if again.GetUserId() != first.GetUserId() {
			t.Fatalf("reconnected as user %d, want %d", again.GetUserId(), first.GetUserId())
		}
	case <-sess.Done():
		t.Fatalf("the session ended at its reconnect after the change: %v", sess.Err())
	case <-ctx.Done():
		t.Fatal("the session did not log in again after the change")
	}
	expectTokenRefused(t, addr, first.GetToken(), "phone")
	_, oc := dialFor(t, addr)
	if _, err := oc.Login(ctx, client.LoginParams{Username: name, Password: "correct horse",
		DeviceID: "tablet"}); client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("login with the old password: %v, want INVALID_CREDENTIALS", err)
	}
}

// loginToken logs device in with a password on a connection of its own
// and returns the access token it was given.
func loginToken(t *testing.T, addr, name, device, password string) string {
	t.Helper()
	ctx, c := dialFor(t, addr)
	resp, err := c.Login(ctx, client.LoginParams{Username: name, Password: password,
		DeviceID: device})
	if err != nil {
		t.Fatalf("login %s/%s: %v", name, device, err)
	}
	return resp.GetToken()
}

// expectSignedOut waits for u's connection to be closed with SIGNED_OUT.
func expectSignedOut(t *testing.T, u *user) {
	t.Helper()
	select {
	case <-u.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still connected after being signed out", u.name)
	}
	if ce, ok := errors.AsType[*client.CloseError](u.Err()); !ok ||
		ce.Reason != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("%s closed with %v, want CLOSE SIGNED_OUT", u.name, u.Err())
	}
}

// expectTokenRefused checks that device's token no longer logs in.
func expectTokenRefused(t *testing.T, addr, token, device string) {
	t.Helper()
	ctx, c := dialFor(t, addr)
	_, err := c.Login(ctx, client.LoginParams{Token: token, DeviceID: device})
	if client.CodeOf(err) != common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("token login of %s after sign-out: %v, want TOKEN_INVALID", device, err)
	}
}

// TestStop_DrainDelayServesOnWhileUnready checks that with a drain delay
// /readyz is unready at once while the gateway still takes new clients,
// which it sends away only once the delay is over.
func TestStop_DrainDelayServesOnWhileUnready(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.DrainDelay = 4 * time.Second
	sys := startSystem(t, cfg)
	readyz := "http://" + sys.HTTPAddr().String() + "/readyz"

	stopped := make(chan struct{})
	go func() { sys.Stop(); close(stopped) }()
	testwait.For(t, 5*time.Second, "/readyz unready", func() bool {
		resp, err := http.Get(readyz)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, sys.GatewayAddr().String(), client.Options{})
	if err != nil {
		t.Fatalf("dial during the drain delay: %v", err)
	}
	defer c.Close()
	if _, err := c.Register(ctx, "late", "late-password"); err != nil {
		t.Fatalf("register during the drain delay: %v", err)
	}
	<-stopped
}
