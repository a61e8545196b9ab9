package logic

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
		aliceToken, bobToken := e.phoneToken(t, "alice"), e.phoneToken(t, "bob")
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

// Attempts of one device in a LoginBatch take the device's route in their
// order, whatever tokens they carry: the last connection keeps the route,
// and each earlier one is kicked. (The gateway lists a batch's attempts in
// the order their LOGINs came, so the newest connection wins.) Several
// rounds, as an order left to the scheduler would often come out right.
func TestLoginBatch_LastAttemptOfADeviceWins(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	ctx := context.Background()
	alice := e.register(t, "alice")
	first, err := e.svc.Login(ctx, &protocol.LoginReq{Username: "alice",
		Password: testPassword, DeviceId: "phone"}, testConn)
	if err != nil {
		t.Fatal(err)
	}
	access, refresh := first.Token, first.RefreshToken
	conn := func(id int64) *logicrpc.ConnInfo {
		return &logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: id}
	}
	var wantKicked []int64
	for round := range int64(8) {
		base := 100 + 10*round
		attempts := []*logicrpc.LoginAttempt{
			{Req: &protocol.LoginReq{Token: access}, Conn: conn(base + 1)},
			{Req: &protocol.LoginReq{Token: refresh, DeviceId: "phone"}, Conn: conn(base + 2)},
			{Req: &protocol.LoginReq{Token: access, DeviceId: "phone"}, Conn: conn(base + 3)},
		}
		out, err := e.svc.LoginBatch(ctx, attempts)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range out {
			if o.Err != nil {
				t.Fatalf("round %d attempt %d: %v", round, i, o.Err)
			}
		}
		refresh = out[1].Resp.RefreshToken // rotated
		wantRoute(t, e, route.Route{UserID: alice, DeviceID: "phone", Gateway: "gw-2:9000",
			ConnID: base + 3})
		wantKicked = append(wantKicked, base+1, base+2)
	}
	kicked := map[int64]bool{}
	for _, k := range e.kickEvents(t) {
		kicked[k.ConnId] = true
	}
	for _, c := range wantKicked {
		if !kicked[c] {
			t.Errorf("conn %d, replaced in its batch, was not kicked", c)
		}
	}
}

// panickyRoutes is a route table whose Put panics for one connection, as a
// store with a bug might: no input makes Login itself panic.
type panickyRoutes struct {
	route.Table
	conn int64
}

func (p panickyRoutes) Put(ctx context.Context, r route.Route) (*route.Route, error) {
	if r.ConnID == p.conn {
		panic(fmt.Sprintf("route put of conn %d", r.ConnID))
	}
	return p.Table.Put(ctx, r)
}

// An attempt that panics fails INTERNAL alone: the process lives on, and
// the other attempts of the batch, a later one of the same device among
// them, log in.
func TestLoginBatch_PanicFailsOnlyItsAttempt(t *testing.T) {
	const panicky = 12
	e := newEnvWith(t, sqliteConfig(t), func(d *Deps) {
		d.Routes = panickyRoutes{Table: d.Routes, conn: panicky}
	})
	ctx := context.Background()
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	aliceToken, bobToken := e.phoneToken(t, "alice"), e.phoneToken(t, "bob")
	conn := func(id int64) *logicrpc.ConnInfo {
		return &logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: id}
	}
	out, err := e.svc.LoginBatch(ctx, []*logicrpc.LoginAttempt{
		{Req: &protocol.LoginReq{Token: aliceToken}, Conn: conn(11)},
		{Req: &protocol.LoginReq{Token: bobToken}, Conn: conn(panicky)},
		{Req: &protocol.LoginReq{Token: bobToken}, Conn: conn(13)},
	})
	if err != nil || len(out) != 3 {
		t.Fatalf("login batch: %d outcomes, %v", len(out), err)
	}
	if o := out[1]; o.Resp != nil || o.GetErr().GetCode() != common.ErrorCode_INTERNAL {
		t.Fatalf("panicking attempt: %+v, want INTERNAL", o)
	}
	for i, user := range map[int]int64{0: alice, 2: bob} {
		if o := out[i]; o.Err != nil || o.GetResp().GetUserId() != user {
			t.Errorf("attempt %d: %+v, want user %d logged in", i, o, user)
		}
	}
	wantRoute(t, e, route.Route{UserID: bob, DeviceID: "phone", Gateway: "gw-2:9000", ConnID: 13})
}

// A nil attempt, which only a Go caller can send, is refused as a nil
// request is, and costs the others nothing.
func TestLoginBatch_NilAttemptIsRefused(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	ctx := context.Background()
	alice := e.register(t, "alice")
	resp, err := e.svc.Login(ctx, &protocol.LoginReq{Username: "alice",
		Password: testPassword}, testConn)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.LoginBatch(ctx, []*logicrpc.LoginAttempt{nil,
		{Req: &protocol.LoginReq{Token: resp.Token}, Conn: testConn}})
	if err != nil || len(out) != 2 {
		t.Fatalf("login batch: %d outcomes, %v", len(out), err)
	}
	if out[0].GetErr().GetCode() != common.ErrorCode_BAD_REQUEST {
		t.Errorf("nil attempt: %+v, want BAD_REQUEST", out[0])
	}
	if out[1].GetResp().GetUserId() != alice {
		t.Errorf("attempt 1: %+v, want alice logged in", out[1])
	}
}

// stuckRoutes is a route table whose Put for one connection hangs until
// released, whatever its context says, as a stalled store's may.
type stuckRoutes struct {
	route.Table
	conn    int64
	entered chan context.Context // the stuck Put's context
	release chan struct{}
	left    chan struct{}
	// late, when set, makes the stuck Put write the route once released,
	// its context cancelled or not, as a store deaf to cancellation would.
	late bool
}

func (s stuckRoutes) Put(ctx context.Context, r route.Route) (*route.Route, error) {
	if r.ConnID != s.conn {
		return s.Table.Put(ctx, r)
	}
	defer close(s.left)
	s.entered <- ctx
	<-s.release
	if s.late {
		return s.Table.Put(context.WithoutCancel(ctx), r)
	}
	return nil, fmt.Errorf("route put of conn %d: store stalled", r.ConnID)
}

// One attempt that hangs fails alone: the batch, called over Kitex with a
// gateway's timeout, is answered within LoginBatchWait, the other attempts
// logged in and the hung one UNAVAILABLE (retry) with its context
// cancelled. Waiting for it made the call time out, failing every attempt.
func TestLoginBatch_HungAttemptFailsAlone(t *testing.T) {
	const stuck = 12
	routes := stuckRoutes{conn: stuck, entered: make(chan context.Context, 1),
		release: make(chan struct{}), left: make(chan struct{})}
	cfg := sqliteConfig(t)
	cfg.LoginBatchWait = 2 * time.Second // well inside the client's 5s
	e := newEnvWith(t, cfg, func(d *Deps) {
		routes.Table = d.Routes
		d.Routes = routes
	})
	cli, _ := serveKitex(t, e)
	t.Cleanup(func() { close(routes.release); <-routes.left }) // before the Stop
	alice, carol := e.register(t, "alice"), e.register(t, "carol")
	e.register(t, "bob")
	aliceToken, bobToken := e.phoneToken(t, "alice"), e.phoneToken(t, "bob")
	carolToken := e.phoneToken(t, "carol")
	conn := func(id int64) *logicrpc.ConnInfo {
		return &logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: id}
	}

	out, err := cli.LoginBatch(context.Background(), []*logicrpc.LoginAttempt{
		{Req: &protocol.LoginReq{Token: aliceToken}, Conn: conn(11)},
		{Req: &protocol.LoginReq{Token: bobToken}, Conn: conn(stuck)},
		{Req: &protocol.LoginReq{Token: carolToken}, Conn: conn(13)},
	})
	if err != nil || len(out) != 3 {
		t.Fatalf("login batch with one attempt hung: %d outcomes, %v", len(out), err)
	}
	if o := out[1]; o.Resp != nil || o.GetErr().GetCode() != common.ErrorCode_UNAVAILABLE {
		t.Errorf("hung attempt: %+v, want UNAVAILABLE", o)
	}
	if ctx := <-routes.entered; ctx.Err() == nil {
		t.Error("hung attempt's context not cancelled when the batch answered")
	}
	for i, user := range map[int]int64{0: alice, 2: carol} {
		if o := out[i]; o.Err != nil || o.GetResp().GetUserId() != user {
			t.Errorf("attempt %d: %+v, want user %d logged in", i, o, user)
		}
	}
	for user, id := range map[int64]int64{alice: 11, carol: 13} {
		wantRoute(t, e, route.Route{UserID: user, DeviceID: "phone", Gateway: "gw-2:9000",
			ConnID: id})
	}
}

// An attempt answered UNAVAILABLE that logs in all the same (the store
// finished its write after the cancel) leaves no route: the gateway never
// saw the session, so nothing else would remove it before its TTL, and
// presence would show the user on a connection that is not logged in.
func TestLoginBatch_LateLoginLeavesNoRoute(t *testing.T) {
	const stuck = 12
	routes := stuckRoutes{conn: stuck, entered: make(chan context.Context, 1),
		release: make(chan struct{}), left: make(chan struct{}), late: true}
	cfg := sqliteConfig(t)
	cfg.LoginBatchWait = 500 * time.Millisecond
	e := newEnvWith(t, cfg, func(d *Deps) {
		routes.Table = d.Routes
		d.Routes = routes
	})
	cli, _ := serveKitex(t, e)
	released := false
	t.Cleanup(func() {
		if !released {
			close(routes.release)
		}
		<-routes.left
	})
	bob := e.register(t, "bob")
	out, err := cli.LoginBatch(context.Background(), []*logicrpc.LoginAttempt{
		{Req: &protocol.LoginReq{Token: e.phoneToken(t, "bob")},
			Conn: &logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: stuck}},
	})
	if err != nil || len(out) != 1 || out[0].GetErr().GetCode() != common.ErrorCode_UNAVAILABLE {
		t.Fatalf("login batch with its attempt hung = %+v, %v; want UNAVAILABLE", out, err)
	}
	<-routes.entered
	close(routes.release)
	released = true
	<-routes.left
	deadline := time.Now().Add(5 * time.Second)
	for {
		rs, err := e.routes.Lookup(context.Background(), []int64{bob})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("routes of bob 5s after his login was answered UNAVAILABLE = %+v, want none", rs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
