package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdmin_CommandSendsTokenActionAndReason runs admin against a server
// that answers only the request it expects.
func TestAdmin_CommandSendsTokenActionAndReason(t *testing.T) {
	const token = "cli-test-token-0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer "+token || r.Method != http.MethodPost ||
			r.URL.Path != "/admin/users/eve/suspend" || string(body) != `{"reason":"spam"}` {
			http.Error(w, `{"error":"unexpected"}`, http.StatusTeapot)
			return
		}
		_, _ = io.WriteString(w, `{"user":{"id":7}}`)
	}))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	args := []string{"suspend", "eve", "--url", srv.URL, "--token-file", file, "--reason", "spam"}
	if code := admin(args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(),
		`"id": 7`) {
		t.Fatalf("admin %q = %d, stdout %q, stderr %q", args, code, &stdout, &stderr)
	}
	stdout.Reset()
	args = []string{"unsuspend", "eve", "--url", srv.URL, "--token-file", file}
	if code := admin(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(),
		"418") {
		t.Fatalf("admin %q on a refusal = %d, stderr %q; want 1 with the status", args, code,
			&stderr)
	}
}

// A server whose admin endpoints are off (no --admin-token, or not a
// logic process) answers the mux's own 404: admin says what to check, and
// --url takes host:port without the scheme (a new-user trial met "404 page
// not found" and "first path segment in URL cannot contain colon").
func TestAdmin_CommandExplainsEndpointsOffAndTakesHostPort(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	t.Setenv(adminTokenEnv, "cli-test-token-0123456789abcdef")
	hostPort := strings.TrimPrefix(srv.URL, "http://")

	var stdout, stderr bytes.Buffer
	args := []string{"show", "eve", "--url", hostPort}
	code := admin(args, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--admin-token") ||
		strings.Contains(stderr.String(), "first path segment") {
		t.Fatalf("admin %q = %d, stderr %q; want 1 naming --admin-token", args, code, &stderr)
	}
}

// An address where nothing listens is told as such, with what --url takes.
func TestAdmin_CommandSaysNothingListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a port just free: connections to it are refused
	t.Setenv(adminTokenEnv, "cli-test-token-0123456789abcdef")
	var stdout, stderr bytes.Buffer
	if code := admin([]string{"show", "eve", "--url", addr}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "nothing listens at http://"+addr+": --url takes") {
		t.Fatalf("admin against a closed port = %d, stderr %q; want 1 saying nothing "+
			"listens", code, &stderr)
	}
}

// The token file may come from RESONANCE_ADMIN_TOKEN_FILE, as the
// server's; one others may read is used, with a warning on stderr.
func TestAdmin_CommandTokenFileFromEnvWarnsWhenShared(t *testing.T) {
	const token = "cli-test-token-0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"user":{"id":7}}`)
	}))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(adminTokenEnv, "")
	t.Setenv(adminTokenFileEnv, file)

	var stdout, stderr bytes.Buffer
	args := []string{"show", "eve", "--url", srv.URL}
	if code := admin(args, &stdout, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "chmod 600") {
		t.Fatalf("admin %q = %d, stdout %q, stderr %q; want 0 and a warning", args, code,
			&stdout, &stderr)
	}
}

// An answer that says nothing changed is told to the operator on stderr,
// beside the account on stdout: an unsuspend of an account that was not
// suspended must not pass for one that lifted a suspension.
func TestAdmin_CommandSaysWhenNothingChanged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"user":{"id":7},"changed":false,`+
			`"note":"the account was not suspended"}`)
	}))
	t.Cleanup(srv.Close)
	t.Setenv(adminTokenFileEnv, "")
	t.Setenv(adminTokenEnv, "cli-test-token-0123456789abcdef")

	var stdout, stderr bytes.Buffer
	args := []string{"unsuspend", "eve", "--url", srv.URL}
	code := admin(args, &stdout, &stderr)
	if code != 0 || !strings.Contains(stderr.String(), "nothing changed") ||
		!strings.Contains(stderr.String(), "not suspended") ||
		!strings.Contains(stdout.String(), `"id": 7`) {
		t.Fatalf("admin %q = %d, stdout %q, stderr %q; want 0 and a note", args, code, &stdout,
			&stderr)
	}
}

// A deleted account is found by its id: --id, which the shell leaves alone
// ('#' starts a comment there), or a quoted "#ID".
func TestAdmin_CommandFindsByID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/admin/users/#12" {
			http.Error(w, `{"error":"unexpected"}`, http.StatusTeapot)
			return
		}
		_, _ = io.WriteString(w, `{"user":{"id":12,"deleted":"2026-01-02T03:04:05Z"}}`)
	}))
	t.Cleanup(srv.Close)
	t.Setenv(adminTokenFileEnv, "")
	t.Setenv(adminTokenEnv, "cli-test-token-0123456789abcdef")
	for _, args := range [][]string{
		{"show", "--id", "12", "--url", srv.URL},
		{"show", "#12", "--url", srv.URL},
	} {
		var stdout, stderr bytes.Buffer
		if code := admin(args, &stdout, &stderr); code != 0 ||
			!strings.Contains(stdout.String(), `"deleted"`) {
			t.Errorf("admin %q = %d, stdout %q, stderr %q", args, code, &stdout, &stderr)
		}
	}
	for _, args := range [][]string{
		{"show", "eve", "--id", "12"},
		{"show", "--id", "0"},
	} {
		var stdout, stderr bytes.Buffer
		if code := admin(append(args, "--url", srv.URL), &stdout, &stderr); code != 2 {
			t.Errorf("admin %q = %d, stderr %q; want 2", args, code, &stderr)
		}
	}
}

// The command sends the token in the clear to an http:// URL: beyond
// loopback it warns, as the server refuses to listen there without
// --admin-allow-remote; https:// and loopback are quiet.
func TestAdmin_CommandWarnsOfPlainHTTPBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		url  string
		warn bool
	}{
		{"http://127.0.0.1:9100", false},
		{"localhost:9100", false},
		{"http://[::1]:9100", false},
		{"https://admin.example.org", false},
		{"http://10.0.0.5:9100", true},
		{"admin.example.org:9100", true},
	} {
		got := plainHTTPWarning(c.url)
		if (got != "") != c.warn {
			t.Errorf("%s: warning %q, want one: %v", c.url, got, c.warn)
		}
	}
}
