package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

// A login's reply carries the limits the operator set, not the defaults,
// for a password login and a token login (which the gateway batches) alike,
// so that clients offer what this server allows.
func TestLogin_RepliesTheConfiguredLimits(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Logic.MaxContent = 9000
	cfg.Logic.MaxFileSize = 3 << 20
	cfg.Logic.RecallWindow = 90 * time.Second
	cfg.Logic.EditWindow = 10 * time.Minute
	cfg.Logic.MaxGroupMembers = 40
	addr := startSystem(t, cfg).GatewayAddr().String()
	want := common.ServerLimits{
		MaxContentBytes: ptr[int32](9000), MaxFileBytes: ptr[int64](3 << 20),
		RecallWindowMs: ptr[int64](90_000), EditWindowMs: ptr[int64](600_000),
		MaxGroupMembers: ptr[int32](40), MaxPins: ptr[int32](20),
	}
	name := fmt.Sprintf("lim%d", time.Now().UnixNano()%1_000_000_000)

	ctx, c := dialFor(t, addr)
	if _, err := c.Register(ctx, name, "correct horse"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Login(ctx, client.LoginParams{Username: name, Password: "correct horse",
		DeviceID: "one"})
	if err != nil {
		t.Fatal(err)
	}
	checkLimits(t, "password login", resp.GetLimits(), want)

	ctx, again := dialFor(t, addr)
	resp, err = again.Login(ctx, client.LoginParams{Token: resp.Token, DeviceID: "one"})
	if err != nil {
		t.Fatal(err)
	}
	checkLimits(t, "token login", resp.GetLimits(), want)
}

func checkLimits(t *testing.T, what string, got *common.ServerLimits, want common.ServerLimits) {
	t.Helper()
	if got == nil || limitsText(got) != limitsText(&want) {
		t.Fatalf("%s: limits = %s, want %s", what, limitsText(got), limitsText(&want))
	}
}

// limitsText shows l's values (its String shows pointers); nil shows "nil".
func limitsText(l *common.ServerLimits) string {
	if l == nil {
		return "nil"
	}
	return fmt.Sprintf("content %d file %d recall %d edit %d group %d pins %d",
		l.GetMaxContentBytes(), l.GetMaxFileBytes(), l.GetRecallWindowMs(), l.GetEditWindowMs(),
		l.GetMaxGroupMembers(), l.GetMaxPins())
}

func ptr[T any](v T) *T { return &v }

// The Go SDK's Client and Session give the limits the server reported at
// login, and the server's clock to judge recall and edit windows by.
func TestSDK_LimitsFromLogin(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Logic.MaxFileSize = 5 << 20
	cfg.Logic.RecallWindow = 7 * time.Minute
	cfg.Logic.EditWindow = time.Hour
	addr := startSystem(t, cfg).GatewayAddr().String()
	name := fmt.Sprintf("sdk%d", time.Now().UnixNano()%1_000_000_000)
	u := login(t, addr, name, "phone", true)
	want := client.Limits{MaxContentBytes: client.DefaultMaxContentBytes,
		MaxFileBytes: 5 << 20, RecallWindow: 7 * time.Minute, EditWindow: time.Hour,
		MaxGroupMembers: client.DefaultMaxGroupMembers, MaxPins: client.DefaultMaxPins,
		Reported: true}
	if got := u.Limits(); got != want {
		t.Fatalf("Client.Limits() = %+v, want %+v", got, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := client.OpenSession(ctx, client.SessionConfig{Addr: addr,
		Login: client.LoginParams{Username: name, Password: "correct horse", DeviceID: "pc"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if got := sess.Limits(); got != want {
		t.Fatalf("Session.Limits() = %+v, want %+v", got, want)
	}
	if skew := time.Until(sess.ServerNow()); skew < -time.Minute || skew > time.Minute {
		t.Fatalf("ServerNow is %s from this clock; the server shares it", skew)
	}
}

// The terminal client refuses /recall and /edit past the windows the
// server reported, in the windows' own terms, without asking the server.
func TestChat_RefusesPastTheConfiguredWindows(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Logic.RecallWindow = time.Millisecond
	cfg.Logic.EditWindow = 2 * time.Millisecond
	addr := startSystem(t, cfg).GatewayAddr().String()
	runChat(t, addr, "lbob")
	ann := runChat(t, addr, "lann")
	ann.to(t, "lbob")

	ann.say(t, "hello")
	ann.wait(t, "lann #1: hello")
	// The windows are milliseconds, passed by the time the ack is printed;
	// the sleep only makes sure of it.
	time.Sleep(5 * time.Millisecond)
	ann.say(t, "/recall #1")
	ann.wait(t, "! #1 is past the recall window of 1ms; not recalled")
	ann.say(t, "/edit #1 hi")
	ann.wait(t, "! #1 is past the edit window of 2ms; not edited")

	// A file cannot be edited, and past the recall window /recall is no
	// way out either: the refusal does not offer it (a new-user trial was
	// told "/recall #2 takes it back", which was then refused).
	file := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(file, []byte("notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	ann.say(t, "/send-file "+file)
	ann.wait(t, "lann #2: [file] notes.txt")
	time.Sleep(5 * time.Millisecond)
	ann.say(t, "/edit #2 hi")
	ann.wait(t, "! #2 is a file, which cannot be edited, and it is past the recall window")
	if strings.Contains(ann.text(), "forbidden") {
		t.Fatalf("the server was asked:\n%s", ann.text())
	}
}
