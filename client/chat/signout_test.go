package chat_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/chat"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// /sign-out cuts another device off without deleting the account: its
// running client ends.
func TestRun_SignOutAnotherDevice(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	laptop := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", "laptop")
	waitOutput(t, laptop.out, "* logged in as dora", 1)
	desk := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", "desk")
	waitOutput(t, desk.out, "* logged in as dora", 1)

	desk.say(t, "/sign-out nosuch")
	waitOutput(t, desk.out, `! no device "nosuch" of yours; /devices lists them`, 1)
	desk.say(t, "/sign-out laptop")
	waitOutput(t, desk.out, "* signed out laptop", 1)
	if err := laptop.wait(t); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("the signed-out client's Run = %v, want %v; output:\n%s", err,
			client.ErrSessionEnded, laptop.out.String())
	}
	waitOutput(t, laptop.out, "! this device was signed out (from another of your devices, by a "+
		"password change, or by the server's operator); start the client again to log in", 1)
}

// A client offline when another device signed it out stays signed out: at
// its reconnect the server refuses its token as a signed-out device's and
// closes the connection, and the client ends as at a sign-out while online
// rather than log in again with the password it keeps.
func TestRun_SignedOutWhileOfflineEnds(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	laptop := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", "laptop")
	waitOutput(t, laptop.out, "* logged in as dora", 1)

	s.RevokeTokens() // the sign-out, whose close the laptop missed
	s.CloseUser("dora", protocol.CloseReason_SERVER_SHUTDOWN, 0)
	if err := laptop.wait(t); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("the signed-out client's Run = %v, want %v; output:\n%s", err,
			client.ErrSessionEnded, laptop.out.String())
	}
	waitOutput(t, laptop.out, "! this device was signed out (from another of your devices, by a "+
		"password change, or by the server's operator); start the client again to log in", 1)
	if n := strings.Count(laptop.out.String(), "* logged in as dora"); n != 1 {
		t.Fatalf("logged in %d times, want once; output:\n%s", n, laptop.out.String())
	}
}

// /sign-out of this device is a logout: Run ends normally, and the token
// is gone.
func TestRun_SignOutThisDeviceLogsOut(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	r := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", "desk")
	waitOutput(t, r.out, "* logged in as dora", 1)
	r.say(t, "/sign-out desk")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil; output:\n%s", err, r.out.String())
	}
	waitOutput(t, r.out, "* signed out this device (desk)", 1)
}

// /password asks for the current password and the new one twice: a
// mismatch or a wrong current password (told at once) changes nothing; the
// right ones change it, and the new one logs in.
func TestRun_ChangePassword(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	r := startChat(t, "--addr", s.Addr(), "--user", "dora")
	waitOutput(t, r.out, "* logged in as dora", 1)

	for _, step := range []struct{ lines, want []string }{
		{lines: []string{"pw-secret", "new-secret-1", "new-secret-2", "/cancel"},
			want: []string{"! the new passwords differ; type the new password",
				"* cancelled; password not changed"}},
		{lines: []string{"wrong-pw", "/cancel"},
			want: []string{"! that is not your current password; type it again"}},
		{lines: []string{"pw-secret", "/cancel"},
			want: []string{"* cancelled; password not changed"}},
		{lines: []string{"pw-secret", "new-secret-1", "new-secret-1"},
			want: []string{"* password changed"}},
	} {
		r.say(t, "/password")
		for _, l := range step.lines {
			r.say(t, l)
		}
		for _, w := range step.want {
			waitOutput(t, r.out, w, 1)
		}
	}
	ctx := context.Background()
	c, err := client.Dial(ctx, s.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Login(ctx, client.LoginParams{Username: "dora", Password: "new-secret-1",
		DeviceID: "check"}); err != nil {
		t.Fatalf("the new password does not log in: %v", err)
	}
	if strings.Contains(r.out.String(), "new-secret") {
		t.Fatalf("a password was printed:\n%s", r.out.String())
	}
}

// /sign-out takes every device id /devices shows: the rest of the line,
// spaces and all, or the quoted form /devices shows for an id with spaces.
func TestRun_SignOutTakesADeviceIDWithSpaces(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	const spaced, quoted = "bad device id with spaces ☃", "old  phone"
	laptop := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", spaced)
	waitOutput(t, laptop.out, "* logged in as dora", 1)
	phone := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", quoted)
	waitOutput(t, phone.out, "* logged in as dora", 1)
	desk := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", "desk")
	waitOutput(t, desk.out, "* logged in as dora", 1)

	desk.say(t, "/devices")
	waitOutput(t, desk.out, `  "`+spaced+`" (`, 1)
	waitOutput(t, desk.out, `  "`+quoted+`" (`, 1)
	waitOutput(t, desk.out, "  desk (", 1)
	desk.say(t, "/sign-out "+spaced)
	waitOutput(t, desk.out, "* signed out "+spaced+":", 1)
	desk.say(t, `/sign-out "`+quoted+`"`)
	waitOutput(t, desk.out, "* signed out "+quoted+":", 1)
	for _, r := range []*chatRun{laptop, phone} {
		if err := r.wait(t); !errors.Is(err, client.ErrSessionEnded) {
			t.Fatalf("the signed-out client's Run = %v, want %v", err, client.ErrSessionEnded)
		}
	}
}

// When the token and then the password this client logged in with are
// refused at a reconnect (the password changed elsewhere, the server's
// data wiped), the client ends saying why in the user's words, not as the
// SDK's login error. KeepSignedOut has the token refused without a
// SIGNED_OUT close, so that the password is tried.
func TestRun_PasswordRefusedAtReconnectIsToldInWords(t *testing.T) {
	s := startServerWith(t, clienttest.Options{KeepSignedOut: true})
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	r := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", "desk")
	waitOutput(t, r.out, "* logged in as dora", 1)

	s.CloseUser("dora", protocol.CloseReason_SERVER_SHUTDOWN, time.Second)
	waitOutput(t, r.out, "! connection lost", 1)
	ctx := context.Background()
	c, err := client.Dial(ctx, s.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Login(ctx, client.LoginParams{Username: "dora", Password: "pw-secret",
		DeviceID: "phone"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangePassword(ctx, "pw-secret", "new-secret-1"); err != nil {
		t.Fatal(err)
	}
	err = r.wait(t)
	if !errors.Is(err, chat.ErrReported) {
		t.Fatalf("Run = %v, want it reported; output:\n%s", err, r.out.String())
	}
	waitOutput(t, r.out, "! the password this client logged in with no longer works", 1)
}
