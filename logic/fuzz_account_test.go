package logic

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// wantClientError fails t unless err is nil or a BizError with a client-side
// code whose message carries nothing from the store.
func wantClientError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	biz, ok := err.(*common.BizError)
	if !ok || biz.Code >= common.ErrorCode_INTERNAL {
		t.Fatalf("err = %v, want a client-side BizError", err)
	}
	low := strings.ToLower(biz.Message)
	for _, leak := range []string{"sql", "select ", "insert ", "gorm", "constraint", "syntax"} {
		if strings.Contains(low, leak) {
			t.Fatalf("error message %q leaks %q", biz.Message, leak)
		}
	}
}

// FuzzSend feeds arbitrary SendReq fields to Send on SQLite: it never fails
// on the server's side, and what it stores obeys the rules.
func FuzzSend(f *testing.F) {
	e := newEnv(f, sqliteConfig(f))
	alice, bob := e.register(f, "alice"), e.register(f, "bob")
	f.Add("c1", bob, "", int32(1), []byte("hi"))
	f.Add("c2", int64(0), p2pConvID(alice, bob), int32(2), []byte{0xff})
	f.Add("c3", alice, "p2p:1:1", int32(1), []byte("a\xffb"))
	f.Add("'; --", int64(-1), "p2p:9:10", int32(7), []byte{})
	f.Fuzz(func(t *testing.T, clientID string, to int64, conv string, ct int32, content []byte) {
		req := &protocol.SendReq{ClientMsgId: clientID, ToUserId: to, ConvId: conv,
			ContentType: common.ContentType(ct), Content: content}
		resp, err := e.svc.Send(context.Background(), session(alice, 1), req)
		wantClientError(t, err)
		if err != nil {
			return
		}
		if resp.ConvId != p2pConvID(alice, bob) {
			t.Fatalf("stored in %s", resp.ConvId)
		}
		if req.ContentType == common.ContentType_TEXT && !utf8.Valid(content) ||
			!utf8.ValidString(clientID) || len(content) == 0 {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// FuzzUpdateProfile checks that every accepted profile is stored verbatim and
// passes the validators, and nothing fails on the server's side.
func FuzzUpdateProfile(f *testing.F) {
	e := newEnv(f, sqliteConfig(f))
	alice := e.register(f, "alice")
	f.Add("Ålice", "https://x.example/a.png")
	f.Add("a\x00b", "javascript:alert(1)")
	f.Add(`'); DROP TABLE user; --`, "http://[::1]:80/%zz")
	f.Fuzz(func(t *testing.T, nick, avatar string) {
		req := &protocol.UpdateProfileReq{Nickname: &nick, AvatarUrl: &avatar}
		resp, err := e.svc.UpdateProfile(context.Background(), session(alice, 1), req)
		wantClientError(t, err)
		if err != nil {
			return
		}
		if resp.Nickname != nick || resp.AvatarUrl != avatar ||
			validNickname(nick) != nil || validAvatarURL(avatar) != nil {
			t.Fatalf("accepted %q %q as %+v", nick, avatar, resp)
		}
	})
}

// FuzzSearchUsers checks that a search returns at most the cap, only
// matching names, and never fails on the server's side.
func FuzzSearchUsers(f *testing.F) {
	e := newEnv(f, sqliteConfig(f))
	me := e.register(f, "searcher")
	e.register(f, "se_rcher2")
	e.svc.limits.search = ratelimit.New(ratelimit.Config{Burst: 1 << 30})
	f.Add("sea", int32(0))
	f.Add("se_", int32(-1))
	f.Add("%", int32(1<<30))
	f.Fuzz(func(t *testing.T, query string, limit int32) {
		resp, err := e.svc.SearchUsers(context.Background(), session(me, 1),
			&protocol.SearchUsersReq{Query: query, Limit: limit})
		wantClientError(t, err)
		if err != nil {
			return
		}
		q := strings.ToLower(query)
		if len(resp.Users) > maxSearchLimit {
			t.Fatalf("%d users returned", len(resp.Users))
		}
		for _, u := range resp.Users {
			if u.Username != q && (len(q) < minSearchPrefix || !strings.HasPrefix(u.Username, q)) {
				t.Fatalf("query %q found %q", query, u.Username)
			}
		}
	})
}

// FuzzLogin feeds arbitrary LoginReq fields to Login: nothing fails on the
// server's side and nothing but the right password logs in.
func FuzzLogin(f *testing.F) {
	e := newEnv(f, sqliteConfig(f))
	e.register(f, "alice")
	e.svc.limits.account = ratelimit.New(ratelimit.Config{Burst: 1 << 30})
	f.Add("alice", testPassword, "", "phone", "ios")
	f.Add("alice", "", "rt1.AAAA", "", "")
	f.Add("", "", "x.y", "\xff", "\x00")
	f.Fuzz(func(t *testing.T, user, password, token, device, platform string) {
		req := &protocol.LoginReq{Username: user, Password: password, Token: token,
			DeviceId: device, Platform: platform}
		_, err := e.svc.Login(context.Background(), req,
			&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 1})
		wantClientError(t, err)
		if err == nil && (token != "" || password != testPassword) {
			t.Fatalf("logged in with %+v", req)
		}
	})
}

// FuzzParseRefreshToken checks that every accepted refresh token spells its
// user and device in exactly one way.
func FuzzParseRefreshToken(f *testing.F) {
	good, _ := newRefreshToken(7, "phone")
	f.Add(good)
	f.Add(refreshPrefix)
	f.Add(good + "=")
	f.Fuzz(func(t *testing.T, token string) {
		user, device, err := parseRefreshToken(token)
		if err != nil {
			return
		}
		raw, _ := b64url.DecodeString(strings.TrimPrefix(token, refreshPrefix))
		if len(device) > maxDeviceID || b64url.EncodeToString(raw) != token[len(refreshPrefix):] ||
			user != int64(uint64(raw[0])<<56|uint64(raw[1])<<48|uint64(raw[2])<<40|
				uint64(raw[3])<<32|uint64(raw[4])<<24|uint64(raw[5])<<16|uint64(raw[6])<<8|
				uint64(raw[7])) {
			t.Fatalf("accepted %q as %d %q", token, user, device)
		}
	})
}
