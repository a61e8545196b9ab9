package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary run resonance with the arguments in its
// value, separated by spaces (see TestRun_SIGHUPStopsGracefully).
const childEnv = "RESONANCE_TEST_RUN_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		os.Exit(run(strings.Fields(args), os.Stderr))
	}
	os.Exit(m.Run())
}

// SIGHUP, as a closed terminal sends, stops the server as SIGTERM does,
// with the shutdown that loses nothing; Go's default would end the process
// at once.
func TestRun_SIGHUPStopsGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	_ = ln.Close()
	args := "all --addr 127.0.0.1:0 --web-listen= --http-listen " + httpAddr +
		" --data-dir " + t.TempDir() + " --log-format json"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+args)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after a minute: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		var exit *exec.ExitError
		if errors.As(err, &exit) || err != nil {
			t.Fatalf("after SIGHUP: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("still running a minute after SIGHUP\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), `"message":"stopped"`) {
		t.Fatalf("no graceful stop logged:\n%s", stderr.String())
	}
}
