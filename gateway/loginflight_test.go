package gateway

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc/push"
)

// kickRecord is what a test's stand-in for task saw of its Kick call.
type kickRecord struct {
	mu   sync.Mutex
	conn int64 // the connection kicked; 0 before the call
	resp *pushrpc.PushResp
	err  error
}

func (k *kickRecord) set(conn int64, resp *pushrpc.PushResp, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.conn, k.resp, k.err = conn, resp, err
}

// check fails t unless the Kick call was made and found its target.
func (k *kickRecord) check(t *testing.T) int64 {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn == 0 {
		t.Fatal("no Kick call was made")
	}
	if k.err != nil || k.resp.Delivered != 1 || len(k.resp.MissingConns) != 0 {
		t.Fatalf("Kick of conn %d: resp %+v err %v, want it delivered", k.conn, k.resp, k.err)
	}
	return k.conn
}

// kickConn calls the gateway's Kick for conn of user, as task does on a kick
// event, and records the answer in rec.
func kickConn(cli push.Client, rec *kickRecord, conn, user int64) {
	resp, err := cli.Kick(context.Background(), &pushrpc.KickReq{
		Targets: []*pushrpc.Target{{ConnId: conn, UserId: user}},
		Reason:  protocol.CloseReason_KICKED,
	})
	rec.set(conn, resp, err)
}

// Two token LOGINs of one device, on two connections, go to logic in one
// LoginBatch. Logic gives the device's route to one and kicks the other,
// whose kick reaches the gateway (through task) before the batch's answer,
// while that connection is still logging in. The kick is not lost: the
// connection gets its LOGIN_ACK, then CLOSE KICKED, and the other stays.
func TestGateway_KickDuringLoginBatchIsNotLost(t *testing.T) {
	h := startGateway(t, Config{})
	holders := holdLoginCalls(t, h)
	kicker := h.pushClient(t)
	var (
		mu     sync.Mutex
		routed int64 // the connection holding the device's route
		kick   kickRecord
	)
	// The stub plays logic's route replacement and task's kick, in one.
	h.logic.onLogin(func(req *protocol.LoginReq, info *logicrpc.ConnInfo) {
		if req.Token != stubToken {
			return
		}
		mu.Lock()
		replaced := routed
		routed = info.ConnId
		mu.Unlock()
		if replaced != 0 {
			kickConn(kicker, &kick, replaced, 1)
		}
	})
	first := h.dial(t)
	first.tokenLogin(1, stubToken)
	waitLoginsQueued(t, h, 1)
	second := h.dial(t)
	second.tokenLogin(1, stubToken)
	waitLoginsQueued(t, h, 2)
	close(h.logic.release)
	for _, c := range holders {
		c.expectLoggedIn(1, 1)
	}
	// Both are acked, after the batch's answer, hence after the Kick call
	// and after the stub recorded the batch.
	first.expectLoggedIn(1, 1)
	second.expectLoggedIn(1, 1)
	if got, want := h.logic.loginBatches(), []int{1, 1, 1, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("LoginBatch calls of %v attempts, want the two logins in one: %v", got, want)
	}

	// The stub runs a batch's attempts concurrently, as logic did, so
	// either may have lost. Ids count up as connections open: first's
	// opened before second's.
	kicked := kick.check(t)
	mu.Lock()
	lastRouted := routed
	mu.Unlock()
	loser, winner := first, second
	if kicked > lastRouted {
		loser, winner = second, first
	}
	loser.expectClose(protocol.CloseReason_KICKED)
	winner.send(protocol.Op_GET_USER, 2, &protocol.GetUserReq{UserId: 1})
	winner.expectReply(protocol.Op_GET_USER_ACK, 2, &protocol.GetUserResp{})
}

// A kick that comes while a single Login call is out is held as well, and
// applied only if the login makes the connection the kick's user: a kick
// of another user was meant for someone else, as Kick's lookup would say
// of a connection already logged in.
func TestGateway_KickDuringLoginAppliesToItsUser(t *testing.T) {
	for _, tc := range []struct {
		name     string
		kickUser int64
		closed   bool
	}{
		{name: "same user", kickUser: 1, closed: true},
		{name: "another user", kickUser: 2, closed: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, Config{})
			kicker := h.pushClient(t)
			var kick kickRecord
			h.logic.onLogin(func(_ *protocol.LoginReq, info *logicrpc.ConnInfo) {
				kickConn(kicker, &kick, info.ConnId, tc.kickUser)
			})
			c := h.dial(t)
			c.login("alice", 1) // a password login: one Login call
			kick.check(t)
			if tc.closed {
				c.expectClose(protocol.CloseReason_KICKED)
				return
			}
			c.send(protocol.Op_GET_USER, 2, &protocol.GetUserReq{UserId: 1})
			c.expectReply(protocol.Op_GET_USER_ACK, 2, &protocol.GetUserResp{})
		})
	}
}

// A LOGIN that has reached logic when its connection closes runs to its
// end: logic records the connection's route, and only its answer tells the
// gateway whose route to remove. Cut short by the close, the call would
// leave that route to its TTL, the device shown online and its pushes sent
// to a connection gone. Each way a LOGIN goes to logic is covered: a
// password login (Login), a token login (a LoginBatch of one, on the
// LOGIN's context) and a token login to a logic older than LoginBatch.
func TestGateway_LoginTheCloseOvertookRemovesItsRoute(t *testing.T) {
	for _, tc := range []struct {
		name  string
		req   *protocol.LoginReq
		older bool // logic has no LoginBatch
	}{
		{name: "password", req: &protocol.LoginReq{Username: "alice", Password: "pw"}},
		{name: "token", req: &protocol.LoginReq{Token: stubToken}},
		{name: "token to an older logic", req: &protocol.LoginReq{Token: stubToken}, older: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startGatewayWith(t, Config{}, func(s *stubLogic) {
				s.withoutLoginBatch = tc.older
			})
			// Logic holds the login until the close has reached the
			// gateway, then records the route as it would.
			arrived := make(chan int64, 1)
			h.logic.onLogin(func(_ *protocol.LoginReq, info *logicrpc.ConnInfo) {
				arrived <- info.ConnId
				<-h.logic.release
			})
			c := h.dial(t)
			c.send(protocol.Op_LOGIN, 1, tc.req)
			var id int64
			select {
			case id = <-arrived:
			case <-time.After(5 * time.Second):
				t.Fatal("the LOGIN did not reach logic")
			}
			_ = c.conn.Close()
			// onClose ends the flight; a LOGIN it cancels has been
			// cancelled by then.
			testwait.For(t, 5*time.Second, "the close to reach the gateway", func() bool {
				_, flying := h.gw.loginFlights.Load(id)
				return !flying
			})
			close(h.logic.release)

			testwait.For(t, 5*time.Second, "the route of the closed connection removed", func() bool {
				return slices.ContainsFunc(h.logic.disconnected(), func(s *logicrpc.Session) bool {
					return s.ConnId == id && s.UserId == 1
				})
			})
		})
	}
}

// A token LOGIN still waiting in the batcher when its connection closes is
// dropped: logic never saw it, the client is gone, and nothing failed. A
// reconnect storm closes many such connections; each used to log a warning
// that a logic call had failed.
func TestGateway_LoginDroppedByTheCloseIsNoFailure(t *testing.T) {
	var logs syncbuf.Buffer
	h := startGatewayLog(t, Config{}, func(*stubLogic) {}, zerolog.New(&logs))
	holders := holdLoginCalls(t, h)
	c := h.dial(t)
	c.tokenLogin(1, stubToken)
	waitLoginsQueued(t, h, 1)
	_ = c.conn.Close()
	waitLoginsQueued(t, h, 0) // the close took it out of the queue
	close(h.logic.release)
	for _, holder := range holders {
		holder.expectLoggedIn(1, 1)
	}
	testwait.For(t, 5*time.Second, "every worker to finish", func() bool {
		return h.gw.pool.Running() == 0
	})
	if line := logs.String(); strings.Contains(line, `"level":"warn"`) {
		t.Fatalf("a LOGIN the close dropped logged a warning: %s", line)
	}
}
