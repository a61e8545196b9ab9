package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// loginDevice logs username in as device on a new connection.
func loginDevice(t *testing.T, s *clienttest.Server, p client.LoginParams) (*client.Client,
	*protocol.LoginResp, error) {
	t.Helper()
	c := dial(t, s.Addr(), client.Options{})
	resp, err := c.Login(context.Background(), p)
	return c, resp, err
}

// passwordLogin is the login of loginNew's user username as device.
func passwordLogin(username, device string) client.LoginParams {
	return client.LoginParams{Username: username, Password: passwordOf(username), DeviceID: device}
}

// waitSignedOut fails unless c is closed with SIGNED_OUT.
func waitSignedOut(t *testing.T, what string, c *client.Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: still connected", what)
	}
	var ce *client.CloseError
	if err := c.Err(); !errors.As(err, &ce) || ce.Reason != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("%s: connection ended with %v, want SIGNED_OUT", what, err)
	}
}

// wantTokenRefused fails unless token no longer logs in.
func wantTokenRefused(t *testing.T, s *clienttest.Server, token, device string) {
	t.Helper()
	_, _, err := loginDevice(t, s, client.LoginParams{Token: token, DeviceID: device})
	if client.CodeOf(err) != common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("login with the revoked token of %s = %v, want TOKEN_INVALID", device, err)
	}
}

func TestClient_LogoutRevokesTheDevicesTokens(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	phone, phoneLogin, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	_, laptopLogin, err := loginDevice(t, s, passwordLogin("alice", "laptop"))
	if err != nil {
		t.Fatal(err)
	}

	if err := phone.Logout(context.Background()); err != nil {
		t.Fatalf("Logout = %v", err)
	}
	waitSignedOut(t, "the logged-out connection", phone)
	wantTokenRefused(t, s, phoneLogin.Token, "phone")
	if _, _, err := loginDevice(t, s, client.LoginParams{Token: laptopLogin.Token,
		DeviceID: "laptop"}); err != nil {
		t.Fatalf("the other device's token no longer logs in: %v", err)
	}
}

func TestClient_ChangePasswordSignsOtherDevicesOut(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	phone, _ := loginNew(t, s, "alice", client.Options{})
	laptop, laptopLogin, err := loginDevice(t, s, passwordLogin("alice", "laptop"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	_, err = phone.ChangePassword(ctx, "wrong", "new-password")
	if client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("ChangePassword with a wrong old password = %v", err)
	}
	pair, err := phone.ChangePassword(ctx, passwordOf("alice"), "new-password")
	if err != nil || pair.Token == "" {
		t.Fatalf("ChangePassword = %+v, %v", pair, err)
	}
	waitSignedOut(t, "the other device", laptop)
	wantTokenRefused(t, s, laptopLogin.Token, "laptop")
	if _, _, err := loginDevice(t, s, passwordLogin("alice", "tablet")); client.CodeOf(err) !=
		common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("login with the old password = %v", err)
	}
	if _, _, err := loginDevice(t, s, client.LoginParams{Username: "alice",
		Password: "new-password", DeviceID: "tablet"}); err != nil {
		t.Fatalf("login with the new password = %v", err)
	}
	if _, _, err := loginDevice(t, s, client.LoginParams{Token: pair.Token,
		DeviceID: "dev-alice"}); err != nil {
		t.Fatalf("login with the new token = %v", err)
	}
	if _, err := phone.GetUser(ctx, "alice"); err != nil {
		t.Fatalf("the connection that changed it ended: %v", err)
	}
}

// The fake answers CHANGE_PASSWORD as the server does: a new password it
// refuses is BAD_REQUEST, checked before the old password, and the reply
// carries a refresh token, which logs the device in as LOGIN's token.
func TestClient_ChangePasswordAnswersAsTheServer(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	phone, _ := loginNew(t, s, "margaret", client.Options{})
	ctx := context.Background()

	old := passwordOf("margaret")
	for _, tc := range []struct {
		name, oldPassword, newPassword string
	}{
		{name: "too short", oldPassword: old, newPassword: "short"},
		{name: "too long", oldPassword: old, newPassword: strings.Repeat("ab", 65)},
		{name: "the username", oldPassword: old, newPassword: "MARGARET"},
		{name: "one character", oldPassword: old, newPassword: "xxxxxxxx"},
		{name: "and a wrong old one", oldPassword: "wrong", newPassword: "short"},
	} {
		_, err := phone.ChangePassword(ctx, tc.oldPassword, tc.newPassword)
		if client.CodeOf(err) != common.ErrorCode_BAD_REQUEST {
			t.Errorf("%s: ChangePassword = %v, want BAD_REQUEST", tc.name, err)
		}
	}

	pair, err := phone.ChangePassword(ctx, old, "new-password")
	if err != nil {
		t.Fatalf("ChangePassword = %v", err)
	}
	if pair.RefreshToken == "" || pair.RefreshExpiresMs <= time.Now().UnixMilli() {
		t.Fatalf("ChangePassword's reply = %+v, want a refresh token and its expiry", pair)
	}
	if _, _, err := loginDevice(t, s, client.LoginParams{Token: pair.RefreshToken,
		DeviceID: "dev-margaret"}); err != nil {
		t.Fatalf("login with the new refresh token = %v", err)
	}
}

func TestClient_SignOutDeviceClosesTheOtherDevice(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	laptop, _ := loginNew(t, s, "alice", client.Options{})
	phone, phoneLogin, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if err := laptop.SignOutDevice(ctx, "tv"); client.CodeOf(err) != common.ErrorCode_NOT_FOUND {
		t.Fatalf("SignOutDevice of an unknown device = %v", err)
	}
	if err := laptop.SignOutDevice(ctx, "phone"); err != nil {
		t.Fatalf("SignOutDevice = %v", err)
	}
	waitSignedOut(t, "the signed-out device", phone)
	wantTokenRefused(t, s, phoneLogin.Token, "phone")
	if _, err := laptop.GetUser(ctx, "alice"); err != nil {
		t.Fatalf("the signing-out connection ended: %v", err)
	}
}

func TestClient_UpdateProfileAndSearchUsers(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, aliceID := loginNew(t, s, "alice", client.Options{})
	_, aliceLinID := loginNew(t, s, "alicelin", client.Options{})
	loginNew(t, s, "bob", client.Options{})
	ctx := context.Background()

	nick := "Alice L."
	info, err := alice.UpdateProfile(ctx, client.ProfileParams{Nickname: &nick})
	if err != nil || info.UserId != aliceID || info.Nickname != nick {
		t.Fatalf("UpdateProfile = %+v, %v", info, err)
	}
	avatar := "https://example.com/a.png"
	info, err = alice.UpdateProfile(ctx, client.ProfileParams{AvatarURL: &avatar})
	if err != nil || info.Nickname != nick || info.AvatarUrl != avatar {
		t.Fatalf("UpdateProfile of the avatar only = %+v, %v", info, err)
	}

	users, err := alice.SearchUsers(ctx, "ali", 0)
	if err != nil || len(users) != 2 || users[0].UserId != aliceID ||
		users[0].Nickname != nick || users[1].UserId != aliceLinID {
		t.Fatalf("SearchUsers(ali) = %v, %v", users, err)
	}
	if users, err := alice.SearchUsers(ctx, "ali", 1); err != nil || len(users) != 1 {
		t.Fatalf("SearchUsers(ali, limit 1) = %v, %v", users, err)
	}
	if users, err := alice.SearchUsers(ctx, "bo", 0); err != nil || len(users) != 0 {
		t.Fatalf("SearchUsers(bo), a short prefix, = %v, %v", users, err)
	}
}

// A token logs in only as the device it was issued to, as the server's do:
// another device presenting it is refused, so signing one device out
// cannot be dodged by logging in with its token under another name.
func TestClient_TokenLogsInOnlyAsItsDevice(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	_, phoneLogin, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = loginDevice(t, s, client.LoginParams{Token: phoneLogin.Token, DeviceID: "laptop"})
	if client.CodeOf(err) != common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("login with the phone's token as the laptop = %v, want TOKEN_INVALID", err)
	}
	if _, _, err := loginDevice(t, s, client.LoginParams{Token: phoneLogin.Token,
		DeviceID: "phone"}); err != nil {
		t.Fatalf("login with the phone's token as the phone = %v", err)
	}
}

// SignOutDevice naming its own device succeeds although the connection is
// closed with SIGNED_OUT before the reply can come, as the server's kick,
// sent through task beside the reply, mostly overtakes it.
func TestClient_SignOutDeviceOfItsOwnSucceeds(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	phone, phoneLogin, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	if err := phone.SignOutDevice(context.Background(), "phone"); err != nil {
		t.Fatalf("SignOutDevice of its own device = %v", err)
	}
	waitSignedOut(t, "the signed-out connection", phone)
	wantTokenRefused(t, s, phoneLogin.Token, "phone")
}
