package logic

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func strp(s string) *string { return &s }

func TestUpdateProfile(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice := e.register(t, "alice")
		sess := session(alice, 1)
		bad, large := common.ErrorCode_BAD_REQUEST, common.ErrorCode_TOO_LARGE
		sqlish := `Robert'); DROP TABLE user;-- "%_\`
		cases := []struct {
			name     string
			req      *protocol.UpdateProfileReq
			want     common.ErrorCode
			wantNick string
			wantURL  string
		}{
			{name: "both", req: &protocol.UpdateProfileReq{Nickname: strp("Ålice 🎧"),
				AvatarUrl: strp("https://cdn.example/a.png")},
				wantNick: "Ålice 🎧", wantURL: "https://cdn.example/a.png"},
			{name: "nothing set keeps both", req: &protocol.UpdateProfileReq{},
				wantNick: "Ålice 🎧", wantURL: "https://cdn.example/a.png"},
			{name: "sql metacharacters verbatim", req: &protocol.UpdateProfileReq{
				Nickname: strp(sqlish)}, wantNick: sqlish, wantURL: "https://cdn.example/a.png"},
			{name: "clear url", req: &protocol.UpdateProfileReq{AvatarUrl: strp("")},
				wantNick: sqlish},
			{name: "invalid utf8", req: &protocol.UpdateProfileReq{Nickname: strp("a\xffb")},
				want: bad},
			{name: "control char", req: &protocol.UpdateProfileReq{Nickname: strp("a\nb")},
				want: bad},
			{name: "too long", req: &protocol.UpdateProfileReq{
				Nickname: strp(strings.Repeat("é", 65))}, want: large},
			{name: "javascript url", req: &protocol.UpdateProfileReq{
				AvatarUrl: strp("javascript:alert(1)")}, want: bad},
			{name: "ftp url", req: &protocol.UpdateProfileReq{
				AvatarUrl: strp("ftp://x.example/a")}, want: bad},
			{name: "credentials", req: &protocol.UpdateProfileReq{
				AvatarUrl: strp("https://u:p@x.example/a")}, want: bad},
			{name: "relative", req: &protocol.UpdateProfileReq{AvatarUrl: strp("/a.png")},
				want: bad},
			{name: "space", req: &protocol.UpdateProfileReq{
				AvatarUrl: strp("https://x.example/a b")}, want: bad},
			{name: "url too long", req: &protocol.UpdateProfileReq{
				AvatarUrl: strp("https://x.example/" + strings.Repeat("a", 500))}, want: large},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := e.svc.UpdateProfile(context.Background(), sess, tc.req)
				wantCode(t, err, tc.want)
				got, gerr := e.svc.GetUser(context.Background(), sess,
					&protocol.GetUserReq{UserId: alice})
				if gerr != nil {
					t.Fatal(gerr)
				}
				if err == nil && (resp.Nickname != tc.wantNick || resp.AvatarUrl != tc.wantURL) {
					t.Fatalf("profile = %+v", resp)
				}
				changed := got.Nickname == "" || strings.ContainsAny(got.Nickname, "\xff\n")
				if err != nil && changed {
					t.Fatalf("rejected update changed the profile: %+v", got)
				}
			})
		}
		_, err := e.svc.UpdateProfile(context.Background(), &logicrpc.Session{}, nil)
		wantCode(t, err, common.ErrorCode_UNAUTHENTICATED)
	})
}

func TestSearchUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		me := e.register(t, "searcher")
		for _, n := range []string{"al_x", "alp", "alpha", "alxbeta", "bob"} {
			e.register(t, n)
		}
		for i := range 25 {
			e.register(t, fmt.Sprintf("zed%02d", i))
		}
		e.svc.limits.search = ratelimit.New(ratelimit.Config{Burst: 1000})
		cases := []struct {
			name  string
			query string
			limit int32
			want  []string
			code  common.ErrorCode
		}{
			{name: "short is exact only", query: "al"},
			{name: "prefix", query: "alp", want: []string{"alp", "alpha"}},
			{name: "underscore is literal", query: "al_", want: []string{"al_x"}},
			{name: "any case", query: "ALPH", want: []string{"alpha"}},
			{name: "capped", query: "zed", limit: 1000, want: zeds(20)},
			{name: "limit", query: "zed", limit: 2, want: zeds(2)},
			{name: "no wildcard", query: "a%", code: common.ErrorCode_BAD_REQUEST},
			{name: "sql", query: "' OR 1=1 --", code: common.ErrorCode_BAD_REQUEST},
			{name: "empty", query: "", code: common.ErrorCode_BAD_REQUEST},
			{name: "invalid utf8", query: "ab\xff", code: common.ErrorCode_BAD_REQUEST},
			{name: "too long", query: strings.Repeat("a", 33), code: common.ErrorCode_BAD_REQUEST},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := e.svc.SearchUsers(context.Background(), session(me, 1),
					&protocol.SearchUsersReq{Query: tc.query, Limit: tc.limit})
				wantCode(t, err, tc.code)
				if err != nil {
					return
				}
				var got []string
				for _, u := range resp.Users {
					got = append(got, u.Username)
				}
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Fatalf("found %v, want %v", got, tc.want)
				}
			})
		}
	})
}

func zeds(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("zed%02d", i)
	}
	return out
}

func TestSearchUsers_RateLimitedPerUser(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	search := func(user int64) error {
		_, err := e.svc.SearchUsers(context.Background(), session(user, 1),
			&protocol.SearchUsersReq{Query: "bob"})
		return err
	}
	for range DefaultSearchBurst {
		if err := search(alice); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, search(alice), common.ErrorCode_RATE_LIMITED)
	wantCode(t, search(bob), common.ErrorCode_OK)
	_, err := e.svc.SearchUsers(context.Background(), &logicrpc.Session{},
		&protocol.SearchUsersReq{Query: "bob"})
	wantCode(t, err, common.ErrorCode_UNAUTHENTICATED)
}
