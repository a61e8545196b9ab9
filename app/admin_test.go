package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// testAdminToken is a token long enough for validateAdmin.
const testAdminToken = "test-admin-token-0123456789abcdef"

// adminCall sends method path with token (none when empty) and body to the
// system's HTTP listener and returns the status and decoded JSON answer.
func adminCall(t *testing.T, sys *System, token, method, path, body string) (int,
	map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+sys.HTTPAddr().String()+path,
		strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out) // a mux 404 is plain text
	return resp.StatusCode, out
}

// expectClosed waits until u's connection is closed with reason.
func expectClosed(t *testing.T, u *user, reason protocol.CloseReason) {
	t.Helper()
	select {
	case <-u.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still connected, want CLOSE %s", u.name, reason)
	}
	ce, ok := errors.AsType[*client.CloseError](u.Err())
	if !ok || ce.Reason != reason || ce.ShouldReconnect() {
		t.Fatalf("%s closed with %v, want CLOSE %s", u.name, u.Err(), reason)
	}
}

// TestAdmin_EndToEnd drives the operator's endpoints over real HTTP against
// a real client: a suspension closes its connection with ACCOUNT_SUSPENDED
// and refuses its next login, a reset password logs in and a sign-out
// closes the device with SIGNED_OUT.
func TestAdmin_EndToEnd(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.AdminToken = testAdminToken
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()
	name := fmt.Sprintf("eve%d", time.Now().UnixNano()%1_000_000_000)
	phone := login(t, addr, name, "phone", true)
	users := "/admin/users/" + name

	status, out := adminCall(t, sys, testAdminToken, "POST", users+"/suspend",
		`{"reason":"spam"}`)
	if status != http.StatusOK {
		t.Fatalf("suspend = %d %v", status, out)
	}
	expectClosed(t, phone, protocol.CloseReason_ACCOUNT_SUSPENDED)
	ctx, c := dialFor(t, addr)
	_, err := c.Login(ctx, client.LoginParams{Username: name, Password: "correct horse"})
	if client.CodeOf(err) != common.ErrorCode_ACCOUNT_SUSPENDED {
		t.Fatalf("login of a suspended account = %v", err)
	}
	// The gateway closes the refused connection too, for a client that
	// does not know the code.
	expectClosed(t, &user{Client: c, name: name + " refused"},
		protocol.CloseReason_ACCOUNT_SUSPENDED)
	status, out = adminCall(t, sys, testAdminToken, "GET", users, "")
	u, _ := out["user"].(map[string]any)
	if status != http.StatusOK || u["suspend_reason"] != "spam" || u["id"] != float64(phone.id) {
		t.Fatalf("show = %d %v", status, out)
	}

	if status, out = adminCall(t, sys, testAdminToken, "POST", users+"/unsuspend", ""); status !=
		http.StatusOK {
		t.Fatalf("unsuspend = %d %v", status, out)
	}
	status, out = adminCall(t, sys, testAdminToken, "POST", users+"/reset-password", "")
	password, _ := out["password"].(string)
	if status != http.StatusOK || password == "" {
		t.Fatalf("reset-password = %d %v", status, out)
	}
	ctx, c = dialFor(t, addr)
	if _, err := c.Login(ctx, client.LoginParams{Username: name, Password: password,
		DeviceID: "phone"}); err != nil {
		t.Fatalf("login with the reset password: %v", err)
	}
	again := &user{Client: c, id: phone.id, name: name}

	status, out = adminCall(t, sys, testAdminToken, "POST", users+"/sign-out", "")
	if status != http.StatusOK || out["signed_out"] != float64(1) {
		t.Fatalf("sign-out = %d %v", status, out)
	}
	expectClosed(t, again, protocol.CloseReason_SIGNED_OUT)

	if status, _ = adminCall(t, sys, testAdminToken, "GET", "/admin/users/nobody", ""); status !=
		http.StatusNotFound {
		t.Fatalf("show of an unknown user = %d, want 404", status)
	}
}

// TestAdmin_Auth checks who reaches the endpoints: nobody without
// --admin-token, and with it only a caller presenting it.
func TestAdmin_Auth(t *testing.T) {
	off := startSystem(t, baseConfig(t, RoleAll))
	if status, _ := adminCall(t, off, testAdminToken, "GET", "/admin/users/nobody", ""); status !=
		http.StatusNotFound {
		t.Fatalf("without --admin-token: %d, want 404", status)
	}

	cfg := baseConfig(t, RoleAll)
	cfg.AdminToken = testAdminToken
	on := startSystem(t, cfg)
	name := fmt.Sprintf("fay%d", time.Now().UnixNano()%1_000_000_000)
	login(t, on.GatewayAddr().String(), name, "phone", true)
	for _, c := range []struct {
		token string
		want  int
	}{
		{token: "", want: http.StatusUnauthorized},
		{token: "wrong", want: http.StatusUnauthorized},
		{token: testAdminToken + "x", want: http.StatusUnauthorized},
		{token: testAdminToken, want: http.StatusOK},
	} {
		if status, out := adminCall(t, on, c.token, "GET", "/admin/users/"+name, ""); status !=
			c.want {
			t.Errorf("token %q: %d %v, want %d", c.token, status, out, c.want)
		}
	}
	// An unknown path is 401 too without the token: nothing is told.
	if status, _ := adminCall(t, on, "", "GET", "/admin/nothing", ""); status !=
		http.StatusUnauthorized {
		t.Errorf("unknown path without token: %d, want 401", status)
	}
}

func TestConfig_AdminToken(t *testing.T) {
	for _, c := range []struct {
		name, token, http string
		remote            bool
		wantErr           string
	}{
		{name: "off", token: "", http: "127.0.0.1:0"},
		{name: "long", token: testAdminToken, http: "127.0.0.1:0"},
		{name: "short", token: "short-token", http: "127.0.0.1:0", wantErr: "at least 24"},
		{name: "no listener", token: testAdminToken, wantErr: "needs --http-listen"},
		// A bearer token over plain HTTP stays on this host unless the
		// operator says otherwise: a lone logic's --http-listen default
		// binds every interface.
		{name: "every interface", token: testAdminToken, http: "0.0.0.0:9100",
			wantErr: "--admin-allow-remote"},
		{name: "no host", token: testAdminToken, http: ":9100", wantErr: "--admin-allow-remote"},
		{name: "private address", token: testAdminToken, http: "10.0.0.5:9100",
			wantErr: "--admin-allow-remote"},
		{name: "remote allowed", token: testAdminToken, http: "0.0.0.0:9100", remote: true},
		{name: "localhost", token: testAdminToken, http: "localhost:9100"},
		{name: "metrics beyond loopback without a token", http: "0.0.0.0:9100"},
	} {
		cfg := baseConfig(t, RoleAll)
		cfg.AdminToken, cfg.HTTPListen, cfg.AdminAllowRemote = c.token, c.http, c.remote
		err := cfg.Validate()
		if c.wantErr == "" && err != nil || c.wantErr != "" &&
			(err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: Validate = %v, want %q", c.name, err, c.wantErr)
		}
	}
}

// TestAdmin_AuditLog: every action leaves an info line naming the endpoint
// and the user, and a reset's line does not carry the new password.
func TestAdmin_AuditLog(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	name := fmt.Sprintf("gus%d", time.Now().UnixNano()%1_000_000_000)
	u := login(t, sys.GatewayAddr().String(), name, "phone", true)
	var logs bytes.Buffer
	a := &adminAPI{svc: sys.logic, log: zerolog.New(&logs), refused: zerolog.Nop(),
		tokenSum: sha256.Sum256([]byte(testAdminToken))}
	mux := http.NewServeMux()
	a.register(mux.Handle)

	req := httptest.NewRequest("POST", "/admin/users/"+name+"/reset-password", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var out struct{ Password string }
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Password == "" {
		t.Fatalf("reset-password = %d %s", rec.Code, rec.Body)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("audit log %q: %v", &logs, err)
	}
	if line["level"] != "info" || line["user"] != float64(u.id) ||
		line["endpoint"] != "POST /admin/users/"+name+"/reset-password" {
		t.Fatalf("audit line = %v", line)
	}
	if strings.Contains(logs.String(), out.Password) {
		t.Fatalf("the new password is in the log: %q", &logs)
	}
}

// A lone logic started with an admin token and its default --http-listen,
// every interface, refuses to start; on loopback, or with
// --admin-allow-remote, it is taken.
func TestConfig_AdminTokenOnLoneLogicDefaults(t *testing.T) {
	base := []string{"--nats-url", "nats://127.0.0.1:1", "--redis-addr", "127.0.0.1:1",
		"--internal-secret", "s3cret", "--admin-token", testAdminToken}
	for _, c := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", wantErr: "--admin-allow-remote"},
		{name: "loopback", args: []string{"--http-listen", "127.0.0.1:9100"}},
		{name: "allowed", args: []string{"--admin-allow-remote"}},
	} {
		fs := flag.NewFlagSet("logic", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		_, err := Load(fs, RoleLogic, append(slices.Clone(base), c.args...))
		if c.wantErr == "" && err != nil || c.wantErr != "" &&
			(err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: Load = %v, want %q", c.name, err, c.wantErr)
		}
	}
}

// writeTokenFile writes content to a new file of mode perm and returns its
// path.
func writeTokenFile(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// The token can come from a file, so that it is not in the process list:
// the file's line (its newline trimmed) is the token the endpoints take.
func TestAdmin_TokenFromFile(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.AdminTokenFile = writeTokenFile(t, testAdminToken+"\n", 0o600)
	sys := startSystem(t, cfg)
	name := fmt.Sprintf("hal%d", time.Now().UnixNano()%1_000_000_000)
	login(t, sys.GatewayAddr().String(), name, "phone", true)
	if status, out := adminCall(t, sys, testAdminToken, "GET", "/admin/users/"+name,
		""); status != http.StatusOK {
		t.Fatalf("show with the file's token = %d %v", status, out)
	}
	if status, _ := adminCall(t, sys, "wrong", "GET", "/admin/users/"+name,
		""); status != http.StatusUnauthorized {
		t.Fatalf("show with another token = %d, want 401", status)
	}
}

// A token file is checked as the flag is, and is refused beside the flag:
// one of the two would be ignored.
func TestConfig_AdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, token, file, wantErr string
	}{
		{name: "file", file: writeTokenFile(t, testAdminToken, 0o600)},
		{name: "both", token: testAdminToken, file: writeTokenFile(t, testAdminToken, 0o600),
			wantErr: "not both"},
		{name: "short", file: writeTokenFile(t, "short-token\n", 0o600),
			wantErr: "at least 24"},
		{name: "empty", file: writeTokenFile(t, "\n", 0o600), wantErr: "is empty"},
		{name: "missing", file: filepath.Join(dir, "none"), wantErr: "--admin-token-file"},
	} {
		cfg := baseConfig(t, RoleAll)
		cfg.AdminToken, cfg.AdminTokenFile = c.token, c.file
		err := cfg.Validate()
		if c.wantErr == "" && err != nil || c.wantErr != "" &&
			(err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: Validate = %v, want %q", c.name, err, c.wantErr)
		}
	}
	t.Setenv("RESONANCE_ADMIN_TOKEN_FILE", writeTokenFile(t, testAdminToken, 0o600))
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := Load(fs, RoleAll, nil)
	if err != nil || cfg.adminToken != testAdminToken {
		t.Fatalf("Load with RESONANCE_ADMIN_TOKEN_FILE = %v, token %q", err, cfg.adminToken)
	}
}

// A token file others may read is taken, with a warning: secrets mounted
// by Kubernetes or Docker are often 0644 or 0444 inside a container,
// where no other user is.
func TestAdmin_TokenFileSharedWarns(t *testing.T) {
	for _, c := range []struct {
		perm os.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o644, true}, {0o604, true}} {
		path := writeTokenFile(t, testAdminToken, c.perm)
		if got := SharedFileWarning(path); (got != "") != c.warn {
			t.Errorf("%o: warning %q, want one: %v", c.perm, got, c.warn)
		}
	}
}

// An action that finds nothing to do says so, in its answer and its audit
// line: an unsuspend of an account that is not suspended, a suspend that
// repeats the reason in force. The audit trail must not read as if the
// operator had lifted a suspension.
func TestAdmin_NoOpSaysNothingChanged(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	name := fmt.Sprintf("ivy%d", time.Now().UnixNano()%1_000_000_000)
	login(t, sys.GatewayAddr().String(), name, "phone", true)
	var logs bytes.Buffer
	a := &adminAPI{svc: sys.logic, log: zerolog.New(&logs), refused: zerolog.Nop(),
		tokenSum: sha256.Sum256([]byte(testAdminToken))}
	mux := http.NewServeMux()
	a.register(mux.Handle)

	for _, step := range []struct {
		action, body string
		changed      bool
	}{
		{action: "unsuspend", changed: false},
		{action: "suspend", body: `{"reason":"spam"}`, changed: true},
		{action: "suspend", body: `{"reason":"spam"}`, changed: false},
		{action: "suspend", body: `{"reason":"spam and abuse"}`, changed: true},
		{action: "unsuspend", changed: true},
		{action: "unsuspend", changed: false},
	} {
		logs.Reset()
		req := httptest.NewRequest("POST", "/admin/users/"+name+"/"+step.action,
			strings.NewReader(step.body))
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
			t.Fatalf("%s = %d %s", step.action, rec.Code, rec.Body)
		}
		var line map[string]any
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
			t.Fatalf("audit log %q: %v", &logs, err)
		}
		if out["changed"] != step.changed || line["changed"] != step.changed {
			t.Fatalf("%s %s: answer %v, audit %v; want changed %v", step.action, step.body,
				out, line, step.changed)
		}
	}
}

// The operator finds a deleted account by its id over HTTP ("#ID", escaped
// in the path as the command does), shown as deleted; by its old name it is
// gone.
func TestAdmin_ShowsDeletedAccountByID(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.AdminToken = testAdminToken
	sys := startSystem(t, cfg)
	name := fmt.Sprintf("joe%d", time.Now().UnixNano()%1_000_000_000)
	u := login(t, sys.GatewayAddr().String(), name, "phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.DeleteAccount(ctx, "correct horse"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	path := "/admin/users/" + url.PathEscape(fmt.Sprintf("#%d", u.id))
	status, out := adminCall(t, sys, testAdminToken, "GET", path, "")
	got, _ := out["user"].(map[string]any)
	if status != http.StatusOK || got["id"] != float64(u.id) || got["deleted"] == nil {
		t.Fatalf("show %s = %d %v; want the account, deleted", path, status, out)
	}
	if status, out = adminCall(t, sys, testAdminToken, "GET", "/admin/users/"+name,
		""); status != http.StatusNotFound {
		t.Fatalf("show by the released name = %d %v, want 404", status, out)
	}
}
