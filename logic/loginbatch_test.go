package logic

import (
	"context"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Each attempt of a LoginBatch gets what its own Login would have given:
// token logins of two users on their connections, a forged token and an
// over-long device id refused alone, each with its own code; every accepted
// login records its connection's route.
func TestLoginBatch_AnswersEachAsLogin(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		token := func(user string) string {
			resp, err := e.svc.Login(ctx, &protocol.LoginReq{Username: user,
				Password: testPassword, DeviceId: "phone"}, testConn)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Token
		}
		aliceToken, bobToken := token("alice"), token("bob")
		conn := func(id int64) *logicrpc.ConnInfo {
			return &logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: id, RemoteAddr: "10.0.0.9:5000"}
		}
		attempts := []*logicrpc.LoginAttempt{
			{Req: &protocol.LoginReq{Token: aliceToken, DeviceId: "phone"}, Conn: conn(11)},
			{Req: &protocol.LoginReq{Token: flipLast(bobToken), DeviceId: "phone"}, Conn: conn(12)},
			{Req: &protocol.LoginReq{Token: bobToken, DeviceId: "phone"}, Conn: conn(13)},
			{Req: &protocol.LoginReq{Token: aliceToken, DeviceId: strings.Repeat("d", 300)},
				Conn: conn(14)},
		}
		out, err := e.svc.LoginBatch(ctx, attempts)
		if err != nil || len(out) != len(attempts) {
			t.Fatalf("login batch: %d outcomes, %v", len(out), err)
		}
		for i, want := range []struct {
			user int64
			code common.ErrorCode
		}{{alice, common.ErrorCode_OK}, {0, common.ErrorCode_TOKEN_INVALID}, {bob, common.ErrorCode_OK},
			{0, common.ErrorCode_TOO_LARGE}} {
			o := out[i]
			switch {
			case want.code == common.ErrorCode_OK && (o.Err != nil || o.GetResp().GetUserId() != want.user):
				t.Errorf("attempt %d: %+v, want user %d logged in", i, o, want.user)
			case want.code != common.ErrorCode_OK && (o.Resp != nil || o.GetErr().GetCode() != want.code):
				t.Errorf("attempt %d: %+v, want %s", i, o, want.code)
			}
		}
		for _, r := range []route.Route{{UserID: alice, DeviceID: "phone", Gateway: "gw-2:9000", ConnID: 11},
			{UserID: bob, DeviceID: "phone", Gateway: "gw-2:9000", ConnID: 13}} {
			wantRoute(t, e, r)
		}
	})
}

// A call without attempts or with more than MaxLoginBatch is refused whole.
func TestLoginBatch_Bounds(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	req := &logicrpc.LoginAttempt{Req: &protocol.LoginReq{Token: "x"}, Conn: testConn}
	many := make([]*logicrpc.LoginAttempt, logicrpc.MaxLoginBatch+1)
	for i := range many {
		many[i] = req
	}
	for _, attempts := range [][]*logicrpc.LoginAttempt{nil, many} {
		out, err := e.svc.LoginBatch(context.Background(), attempts)
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
		if out != nil {
			t.Fatalf("refused call of %d returned outcomes", len(attempts))
		}
	}
}
