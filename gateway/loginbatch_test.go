package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// tokenLogin sends a LOGIN with token as id, without waiting for its ack.
func (c *testClient) tokenLogin(id uint32, token string) {
	c.send(protocol.Op_LOGIN, id, &protocol.LoginReq{Token: token})
}

// expectLoggedIn reads the LOGIN_ACK of id and checks the user.
func (c *testClient) expectLoggedIn(id uint32, user int64) {
	c.t.Helper()
	var resp protocol.LoginResp
	c.expectReply(protocol.Op_LOGIN_ACK, id, &resp)
	if resp.UserId != user {
		c.t.Fatalf("LOGIN %d logged in user %d, want %d", id, resp.UserId, user)
	}
}

// holdLoginCalls fills the gateway's loginCallsInFlight LoginBatch calls
// with a slow token login each, so that the token LOGINs that come next
// wait in the batcher and go to logic together once the test closes
// h.logic.release. It returns the holding clients, to read their acks.
func holdLoginCalls(t *testing.T, h *harness) []*testClient {
	t.Helper()
	holders := make([]*testClient, loginCallsInFlight)
	for i := range holders {
		holders[i] = h.dial(t)
		holders[i].tokenLogin(1, slowToken)
		h.logic.awaitEntered(t, "a slow token login")
	}
	return holders
}

// waitLoginsQueued waits until n token LOGINs wait in the batcher.
func waitLoginsQueued(t *testing.T, h *harness, n int) {
	t.Helper()
	testwait.For(t, 5*time.Second, fmt.Sprintf("%d logins queued", n), func() bool {
		items, _ := h.gw.logins.Queued()
		return items == n
	})
}

// Token LOGINs of several connections that come while loginCallsInFlight
// calls are out wait, and go to logic together in one LoginBatch call; each
// connection gets its own ack. A password LOGIN goes alone, as Login.
func TestGateway_CoalescesTokenLoginsAcrossConnections(t *testing.T) {
	h := startGateway(t, Config{})
	holders := holdLoginCalls(t, h)
	waiting := make([]*testClient, 3)
	for k := range waiting {
		waiting[k] = h.dial(t)
		waiting[k].tokenLogin(1, stubToken)
		waitLoginsQueued(t, h, k+1)
	}
	close(h.logic.release)
	for _, c := range holders {
		c.expectLoggedIn(1, 1)
	}
	for _, c := range waiting {
		c.expectLoggedIn(1, 1)
	}
	want := []int{1, 1, 1, 1, 3}
	if got := h.logic.loginBatches(); !slices.Equal(got, want) {
		t.Fatalf("LoginBatch calls of %v attempts, want %v", got, want)
	}
	h.dial(t).login("bob", 1)
	if got := h.logic.loginBatches(); !slices.Equal(got, want) {
		t.Fatalf("a password login made LoginBatch calls %v, want none past %v", got, want)
	}
}

// Against a logic older than LoginBatch, token LOGINs go as Login calls, and
// the gateway remembers the refusal.
func TestGateway_LoginBatchFallsBackToLogin(t *testing.T) {
	h := startGatewayWith(t, Config{}, func(s *stubLogic) { s.withoutLoginBatch = true })
	c := h.dial(t)
	c.tokenLogin(1, stubToken)
	c.expectLoggedIn(1, 1)
	if !h.gw.loginsOld.active() {
		t.Fatal("the refusal was not remembered")
	}
	c2 := h.dial(t)
	c2.tokenLogin(1, stubToken)
	c2.expectLoggedIn(1, 1)
}

// A token LOGIN still waiting in the batcher when its connection closes is
// never sent: logic would record a route for a connection gone, which could
// take the device's route from a newer connection.
func TestGateway_QueuedLoginOfClosedConnIsNotSent(t *testing.T) {
	h := startGateway(t, Config{})
	holders := holdLoginCalls(t, h)
	gone := h.dial(t)
	gone.tokenLogin(1, stubToken)
	waitLoginsQueued(t, h, 1)
	_ = gone.conn.Close()
	// Well inside RequestTimeout, after which the LOGIN would leave the
	// queue anyway.
	testwait.For(t, 2*time.Second, "the closed connection's login dropped", func() bool {
		items, _ := h.gw.logins.Queued()
		return items == 0
	})
	close(h.logic.release)
	for _, c := range holders {
		c.expectLoggedIn(1, 1)
	}
	if got, want := h.logic.loginBatches(), []int{1, 1, 1, 1}; !slices.Equal(got, want) {
		t.Fatalf("LoginBatch calls of %v attempts, want only the held %v", got, want)
	}
}
