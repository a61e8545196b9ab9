package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/task"
)

// webhookSink is a notification receiver started by the test; it refuses
// calls whose signature does not verify.
type webhookSink struct {
	secret []byte
	mu     sync.Mutex
	notes  []task.Notification
	bad    int
}

func startWebhookSink(t *testing.T, secret string) (*webhookSink, string) {
	t.Helper()
	s := &webhookSink{secret: []byte(secret)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var n task.Notification
		ok := task.Verify(s.secret, r.Header.Get(task.HeaderTimestamp), body,
			r.Header.Get(task.HeaderSignature)) && json.Unmarshal(body, &n) == nil
		s.mu.Lock()
		defer s.mu.Unlock()
		if !ok {
			s.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		s.notes = append(s.notes, n)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *webhookSink) snapshot() ([]task.Notification, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]task.Notification(nil), s.notes...), s.bad
}

// waitNotes waits until the sink holds n notifications and returns them.
func (s *webhookSink) waitNotes(t *testing.T, n int) []task.Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		notes, _ := s.snapshot()
		if len(notes) >= n {
			return notes
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notifications after 10s, want %d: %+v", len(notes), n, notes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deviceOnline asks, on a's connection, whether a's device is online.
func (a *account) deviceOnline(device string) bool {
	a.t.Helper()
	var resp protocol.ListDevicesResp
	a.wantCall("list devices", protocol.Op_LIST_DEVICES, &protocol.ListDevicesReq{}, &resp,
		common.ErrorCode_OK)
	for _, d := range resp.Devices {
		if d.DeviceId == device {
			return d.Online
		}
	}
	return false
}

// TestNotify_EndToEnd runs the whole path on the embedded stack (SQLite,
// embedded NATS): a device registers a push token over the protocol, goes
// offline and gets one signed notification per message with its badge; an
// online device gets none, a muted conversation none, and logout removes
// the token.
func TestNotify_EndToEnd(t *testing.T) {
	sink, url := startWebhookSink(t, notifySecret)
	cfg := baseConfig(t, RoleAll)
	cfg.InternalSecret = hostileSecret // task's calls to logic carry it too
	cfg.Task.Notify = notifyConfig(url)
	sys := startSystem(t, cfg)
	runNotify(t, sys.GatewayAddr().String(), sink)

	resp, err := http.Get("http://" + sys.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`resonance_task_notifications_total{outcome="sent"} 3`,
		`resonance_task_notify_skipped_total{reason="muted"} 1`,
		`resonance_task_logic_call_seconds_count{method="OfflineTargets",outcome="ok"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestNotify_External is TestNotify_EndToEnd with each role its own System
// against MariaDB, Redis and NATS; it skips when they are not set.
func TestNotify_External(t *testing.T) {
	dsn, redisAddr, natsURL := os.Getenv(envMySQL), os.Getenv(envRedis), os.Getenv(envNATS)
	if dsn == "" || redisAddr == "" || natsURL == "" {
		t.Skipf("set %s, %s and %s to run against real services", envMySQL, envRedis, envNATS)
	}
	sink, url := startWebhookSink(t, notifySecret)
	base := baseConfig(t, RoleLogic)
	base.NATSURL, base.RedisAddr = natsURL, redisAddr
	base.Logic.DBDriver, base.Logic.DBDSN = "mysql", dsn
	base.Logic.TablePrefix = base.Prefix + "_"
	base.Logic.TokenSecret = "e2e-secret-e2e-secret-e2e-secret"
	base.InternalSecret = "e2e-internal-secret"
	names := mq.NewNames(base.Prefix)
	t.Cleanup(func() {
		dropTables(t, dsn, base.Logic.TablePrefix)
		deleteStream(t, natsURL, names.Stream)
		deleteStream(t, natsURL, names.LeaseStream())
		deleteStream(t, natsURL, "KV_"+names.Stream+"_NOTIFIED")
	})
	logicSys := startSystem(t, base)
	taskCfg := base
	taskCfg.Role = RoleTask
	taskCfg.LogicAddrs = []string{logicSys.LogicAddr().String()}
	taskCfg.Task.Notify = notifyConfig(url)
	startSystem(t, taskCfg)
	gwCfg := base
	gwCfg.Role = RoleGateway
	gwCfg.LogicAddrs = []string{logicSys.LogicAddr().String()}
	runNotify(t, startSystem(t, gwCfg).GatewayAddr().String(), sink)
}

const notifySecret = "e2e-webhook-secret"

// notifyConfig sends every message alone to url, quickly.
func notifyConfig(url string) task.NotifyConfig {
	return task.NotifyConfig{WebhookURL: url, Secret: notifySecret, Window: -1,
		Timeout: time.Second}
}

// runNotify is the scenario of the notification tests on the gateway at
// addr.
func runNotify(t *testing.T, addr string, sink *webhookSink) {
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	setToken := func(a *account, token string) {
		a.wantCall("set push token", protocol.Op_SET_PUSH_TOKEN, &protocol.SetPushTokenReq{
			Platform: protocol.PushPlatform_APNS, Token: token, AppId: "im.example"},
			&protocol.SetPushTokenResp{}, common.ErrorCode_OK)
	}
	setToken(bob, "bob-phone-token")
	laptop := dialRaw(t, addr)
	loginRaw(t, laptop, &protocol.LoginReq{Username: bob.name, Password: hostilePassword,
		DeviceId: "laptop"})
	bobLaptop := &account{rawConn: laptop, id: bob.id, name: bob.name}
	setToken(bobLaptop, "bob-laptop-token") // online: never notified
	bob.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for bobLaptop.deviceOnline("phone") {
		if time.Now().After(deadline) {
			t.Fatal("bob's phone still online 5s after its connection closed")
		}
		time.Sleep(20 * time.Millisecond)
	}

	send := func(id, text string) int64 {
		var ack protocol.SendResp
		alice.wantCall("send "+id, protocol.Op_SEND, textSend(id, bob.id, "", text), &ack,
			common.ErrorCode_OK)
		return ack.MsgId
	}
	// The badge is the unread count when task handles the message; waiting
	// for each notification keeps it one per message here.
	first := send("m1", "hello bob")
	sink.waitNotes(t, 1)
	second := send("m2", "are you there")
	notes := sink.waitNotes(t, 2)
	for i, want := range []struct {
		msg   int64
		badge int32
		text  string
	}{{first, 1, "hello bob"}, {second, 2, "are you there"}} {
		n := notes[i]
		if n.MsgID != want.msg || n.Badge != want.badge || n.Preview != want.text ||
			n.UserID != bob.id || n.DeviceID != "phone" || n.Token != "bob-phone-token" ||
			n.Platform != "apns" || n.AppID != "im.example" || n.SenderID != alice.id ||
			n.SenderName != alice.name ||
			n.Count != 1 {
			t.Errorf("notification %d = %+v, want msg %d badge %d", i, n, want.msg, want.badge)
		}
	}

	// Muted: nothing for the third message; unmuted, the fourth comes with
	// the badge counting all four.
	conv := notes[0].ConvID
	mute := func(muted bool) {
		bobLaptop.wantCall("mute", protocol.Op_MUTE_CONV,
			&protocol.MuteConvReq{ConvId: conv, Muted: muted}, &protocol.MuteConvResp{},
			common.ErrorCode_OK)
	}
	mute(true)
	send("m3", "muted")
	// Mute applies when task handles the message, so it must still hold then.
	time.Sleep(500 * time.Millisecond)
	if notes, _ := sink.snapshot(); len(notes) != 2 {
		t.Fatalf("muted conversation notified: %+v", notes[2:])
	}
	mute(false)
	fourth := send("m4", "unmuted")
	notes = sink.waitNotes(t, 3)
	if n := notes[2]; n.MsgID != fourth || n.Badge != 4 {
		t.Errorf("after unmuting got %+v, want msg %d with badge 4", n, fourth)
	}

	// Logout on the phone removes its token: no notification any more.
	phone := dialRaw(t, addr)
	loginRaw(t, phone, &protocol.LoginReq{Token: bob.login.Token})
	phone.wantCall("logout", protocol.Op_LOGOUT, &protocol.LogoutReq{}, &protocol.LogoutResp{},
		common.ErrorCode_OK)
	send("m5", "after logout")
	time.Sleep(500 * time.Millisecond) // a notification in flight would arrive by now
	notes, bad := sink.snapshot()
	if len(notes) != 3 || bad != 0 {
		t.Errorf("%d notifications (%d badly signed) after logout, want 3 and 0: %+v",
			len(notes), bad, notes)
	}
}
