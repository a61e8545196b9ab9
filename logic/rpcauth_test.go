package logic

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudwego/kitex/client"

	"github.com/resonance-im/resonance/internal/rpcauth"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestServe_InternalSecret checks that a Logic server with a secret serves
// only clients that send it.
func TestServe_InternalSecret(t *testing.T) {
	cfg := sqliteConfig(t)
	cfg.InternalSecret = "s3cret"
	e := newEnv(t, cfg)
	ln := listenLocal(t)
	served := make(chan error, 1)
	go func() { served <- e.svc.Serve(ln) }()
	t.Cleanup(func() { _ = e.svc.Stop(); <-served })

	cases := []struct {
		name   string
		opts   []client.Option
		denied bool
	}{
		{name: "no secret", denied: true},
		{name: "wrong secret", opts: rpcauth.ClientOptions("guess"), denied: true},
		{name: "right secret", opts: rpcauth.ClientOptions("s3cret")},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]client.Option{client.WithHostPorts(ln.Addr().String()),
				client.WithRPCTimeout(5 * time.Second)}, tc.opts...)
			cli, err := logic.NewClient("logic", opts...)
			if err != nil {
				t.Fatal(err)
			}
			name := "user" + string(rune('a'+i))
			_, err = cli.Register(context.Background(),
				&protocol.RegisterReq{Username: name, Password: testPassword}, testConn)
			var biz *common.BizError
			if tc.denied && (err == nil || errors.As(err, &biz)) {
				t.Fatalf("call without the secret: %v", err)
			}
			if !tc.denied && err != nil {
				t.Fatalf("call with the secret: %v", err)
			}
			if u, _ := e.svc.findUser(context.Background(), name, 0); (u != nil) == tc.denied {
				t.Fatalf("user stored = %v, denied = %v", u != nil, tc.denied)
			}
		})
	}
}
