package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/resonance-im/resonance/app"
)

// defaultAdminURL is --http-listen's default, where a process running
// logic serves /admin/ when it has --admin-token.
const defaultAdminURL = "http://127.0.0.1:9100"

// adminTokenEnv is where admin reads the token without --token-file: the
// variable the server reads its --admin-token from.
const adminTokenEnv = "RESONANCE_ADMIN_TOKEN"

// adminTokenFileEnv is --token-file's default: the variable the server
// reads its --admin-token-file from, so one environment serves both.
const adminTokenFileEnv = "RESONANCE_ADMIN_TOKEN_FILE"

// adminActions maps each action of admin to its method and path suffix
// under /admin/users/NAME (see app/admin.go).
var adminActions = map[string]struct{ method, suffix string }{
	"show":           {http.MethodGet, ""},
	"suspend":        {http.MethodPost, "/suspend"},
	"unsuspend":      {http.MethodPost, "/unsuspend"},
	"reset-password": {http.MethodPost, "/reset-password"},
	"sign-out":       {http.MethodPost, "/sign-out"},
}

// adminRequest is one call of admin.
type adminRequest struct {
	method, path string
	body         []byte
}

// admin calls a server's /admin/ endpoints and prints the JSON answer on
// stdout (the new password of reset-password among it: hand it over and
// keep it nowhere).
func admin(args []string, stdout, stderr io.Writer) int {
	fs := newCommandFlags("admin", "[flags] show|suspend|unsuspend|reset-password|sign-out "+
		"USERNAME|--id ID")
	base := fs.String("url", defaultAdminURL, "base URL of the --http-listen of a logic process")
	tokenFile := fs.String("token-file", os.Getenv(adminTokenFileEnv),
		"file holding the admin token (default: $"+adminTokenFileEnv+", or else the token in $"+
			adminTokenEnv+")")
	reason := fs.String("reason", "", "why the account is suspended (suspend only; "+
		"kept in the store, never shown to the user)")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	var byID string
	fs.Func("id", "the account's user id instead of USERNAME (a deleted account's name is "+
		"released; the id, in logs and messages, still finds it)", func(v string) error {
		if id, err := strconv.ParseInt(v, 10, 64); err != nil || id <= 0 {
			return fmt.Errorf("want a user id, a positive number, got %q", v)
		}
		byID = "#" + v // the server's reference by id (logic.AdminUser)
		return nil
	})
	pos, err := parseInterspersed(fs.FlagSet, args)
	if err == nil && byID != "" && len(pos) > 0 { // without an action, that error first
		if len(pos) > 1 {
			err = fmt.Errorf("give a username or --id, not both (got %q)", pos[1])
		}
		pos = append(pos, byID)
	}
	var req adminRequest
	if err == nil {
		req, err = adminRequestOf(pos, *reason)
	}
	var token string
	if err == nil {
		token, err = adminToken(*tokenFile)
	}
	if code, done := fs.failed(err, stderr); done {
		return code
	}
	if w := app.SharedFileWarning(*tokenFile); *tokenFile != "" && w != "" {
		fmt.Fprintln(stderr, "resonance admin: warning: --token-file", w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	baseURL := withScheme(strings.TrimSuffix(*base, "/"))
	if w := plainHTTPWarning(baseURL); w != "" {
		fmt.Fprintln(stderr, "resonance admin: warning:", w)
	}
	status, body, err := req.do(ctx, baseURL, token)
	if errors.Is(err, syscall.ECONNREFUSED) {
		fmt.Fprintf(stderr, "resonance admin: %v\n(nothing listens at %s: --url takes the "+
			"--http-listen of a running process that runs logic)\n", err, baseURL)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "resonance admin:", err)
		return 1
	}
	if status == http.StatusNotFound && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		// Not an admin answer, which is JSON: nothing serves /admin/ there.
		fmt.Fprintf(stderr, "resonance admin: %s serves no admin endpoints: --url takes the "+
			"--http-listen of a process that runs logic, started with --admin-token\n", baseURL)
		return 1
	}
	if status != http.StatusOK {
		fmt.Fprintf(stderr, "resonance admin: %d %s: %s\n", status, http.StatusText(status),
			strings.TrimSpace(string(body)))
		return 1
	}
	var out bytes.Buffer
	if json.Indent(&out, body, "", "  ") != nil {
		out.Reset()
		out.Write(body)
	}
	fmt.Fprintln(stdout, strings.TrimSpace(out.String()))
	if note, unchanged := nothingChanged(body); unchanged {
		fmt.Fprintln(stderr, "resonance admin: nothing changed:", note)
	}
	return 0
}

// nothingChanged reports whether an admin answer says its action changed
// nothing (an unsuspend of an account not suspended), and the server's
// note why: stdout shows the account either way, which would otherwise
// read as done.
func nothingChanged(body []byte) (note string, unchanged bool) {
	var res struct {
		Changed *bool  `json:"changed"`
		Note    string `json:"note"`
	}
	if json.Unmarshal(body, &res) != nil || res.Changed == nil || *res.Changed {
		return "", false
	}
	return res.Note, true
}

// withScheme returns the URL with http:// in front when it names no
// scheme: host:port, as --http-listen is given.
func withScheme(raw string) string {
	if !strings.Contains(raw, "://") {
		return "http://" + raw
	}
	return raw
}

// plainHTTPWarning returns a warning when base sends the token in the clear
// beyond this host: http:// to an address but loopback. A warning, not a
// refusal: a private network the operator trusts is the operator's call,
// as --admin-allow-remote is on the server.
func plainHTTPWarning(base string) string {
	u, err := url.Parse(withScheme(base))
	if err != nil || u.Scheme != "http" {
		return ""
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return ""
	}
	return fmt.Sprintf("%s is plain HTTP beyond this host: the admin token crosses the "+
		"network in the clear (use https:// through a TLS proxy)", base)
}

// adminRequestOf builds the request of the arguments: an action and a
// username, and a reason for suspend only.
func adminRequestOf(pos []string, reason string) (adminRequest, error) {
	if len(pos) == 0 {
		return adminRequest{}, errors.New("no action: want show, suspend, unsuspend, " +
			"reset-password or sign-out, then a username")
	}
	act, ok := adminActions[pos[0]]
	switch {
	case !ok:
		return adminRequest{}, fmt.Errorf("unknown action %q: want show, suspend, unsuspend, "+
			"reset-password or sign-out", pos[0])
	case len(pos) == 1:
		return adminRequest{}, fmt.Errorf("%s needs a username", pos[0])
	case len(pos) > 2:
		return adminRequest{}, fmt.Errorf("unexpected argument %q: %s takes one username",
			pos[2], pos[0])
	case reason != "" && pos[0] != "suspend":
		return adminRequest{}, fmt.Errorf("--reason is for suspend, not %s", pos[0])
	}
	req := adminRequest{method: act.method,
		path: "/admin/users/" + url.PathEscape(pos[1]) + act.suffix}
	if pos[0] == "suspend" {
		req.body, _ = json.Marshal(map[string]string{"reason": reason})
	}
	return req, nil
}

// adminToken reads the token from file, or else from the environment.
func adminToken(file string) (string, error) {
	if file == "" {
		if t := os.Getenv(adminTokenEnv); t != "" {
			return t, nil
		}
		return "", errors.New("no admin token: give --token-file, or set " + adminTokenFileEnv +
			" or " + adminTokenEnv)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	t := strings.TrimSpace(string(raw)) // a file written by echo ends in a newline
	if t == "" {
		return "", fmt.Errorf("--token-file %s is empty", file)
	}
	return t, nil
}

// do sends r to base with token and returns the answer's status and body.
func (r adminRequest) do(ctx context.Context, base, token string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, bytes.NewReader(r.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}
