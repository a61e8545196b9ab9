package logic

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/gateway"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
)

// lateRoutes is a route table whose Put for one user hangs until released,
// then writes the route whatever its context says, as a store deaf to
// cancellation would.
type lateRoutes struct {
	route.Table
	user    int64
	entered chan struct{}
	release chan struct{}
	left    chan struct{}
}

func (l *lateRoutes) Put(ctx context.Context, r route.Route) (*route.Route, error) {
	if r.UserID != l.user {
		return l.Table.Put(ctx, r)
	}
	defer close(l.left)
	close(l.entered)
	<-l.release
	return l.Table.Put(context.WithoutCancel(ctx), r)
}

// startGateway runs a real gateway against cli until the test ends and
// returns its client address.
func startGateway(t *testing.T, cli logic.Client, cfg gateway.Config) string {
	t.Helper()
	pushLn := listenLocal(t)
	cfg.Addr = "127.0.0.1:0"
	gw, err := gateway.New(cfg, gateway.Deps{Log: zerolog.Nop(), Logic: cli, PushListener: pushLn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("gateway run: %v", err)
		}
	})
	select {
	case <-gw.Ready():
	case err := <-ran:
		t.Fatalf("gateway did not start: %v", err)
	}
	return gw.Addr().String()
}

// A password LOGIN, a Login call of its own, whose route write stalls past
// the call's deadline leaves no route once the write lands: the client was
// told the login failed, so the gateway never took the connection as logged
// in and never disconnects it. Left in the store until its TTL, the route
// showed the user online on a connection that is not logged in.
func TestLogin_LateLoneLoginLeavesNoRoute(t *testing.T) {
	routes := &lateRoutes{entered: make(chan struct{}), release: make(chan struct{}),
		left: make(chan struct{})}
	cfg := sqliteConfig(t)
	cfg.LoginBatchWait = 500 * time.Millisecond
	e := newEnvWith(t, cfg, func(d *Deps) {
		routes.Table = d.Routes
		d.Routes = routes
	})
	cli, _ := serveKitex(t, e)
	released := false
	t.Cleanup(func() { // before the Stop
		if !released {
			close(routes.release)
		}
		select {
		case <-routes.entered:
			<-routes.left
		default:
		}
	})
	routes.user = e.register(t, "bob")
	addr := startGateway(t, cli, gateway.Config{RequestTimeout: 2 * time.Second})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Login(ctx, client.LoginParams{Username: "bob", Password: testPassword})
	if code := client.CodeOf(err); code != common.ErrorCode_UNAVAILABLE {
		t.Fatalf("login with its route write stalled: %v (code %v), want UNAVAILABLE", err, code)
	}

	// The write lands after the failure was answered; the client goes.
	<-routes.entered
	close(routes.release)
	released = true
	<-routes.left
	_ = c.Close()
	testwait.For(t, 5*time.Second, "bob's route of the failed login removed", func() bool {
		rs, err := e.routes.Lookup(context.Background(), []int64{routes.user})
		if err != nil {
			t.Fatalf("route lookup of bob: %v", err)
		}
		return len(rs) == 0
	})
}
