package client_test

import (
	"context"
	"os"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// realServerEnv names a running gateway (host:port) to check the SDK
// against the real server instead of the fake.
const realServerEnv = "RESONANCE_TEST_ADDR"

func TestClient_ConversationOpsAgainstRealServer(t *testing.T) {
	addr := os.Getenv(realServerEnv)
	if addr == "" {
		t.Skipf("set %s to a running gateway", realServerEnv)
	}
	ctx := context.Background()
	prefix := "sdk" + client.NewClientMsgID()[:8]
	alice, aliceID := registerReal(t, addr, prefix+"a")
	bob, bobID := registerReal(t, addr, prefix+"b")
	sendN(t, alice, bobID, 5, "real")
	conv := client.P2PConvID(aliceID, bobID)

	page, err := bob.SyncBefore(ctx, conv, client.LatestSeq, 2)
	if err != nil || len(page.Messages) != 2 || page.Messages[1].Seq != 5 || !page.HasMore ||
		page.LastSeq != 5 {
		t.Fatalf("SyncBefore = %+v, %v", page, err)
	}
	convs, err := bob.SyncConvs(ctx, "", 0)
	if err != nil || len(convs.Convs) != 1 || convs.Convs[0].LastSeq != 5 ||
		convs.Convs[0].PeerUserId != aliceID || convs.Convs[0].Unread != 5 {
		t.Fatalf("SyncConvs = %+v, %v", convs, err)
	}
	if read, err := bob.MarkRead(ctx, conv, 3); err != nil || read != 3 {
		t.Fatalf("MarkRead = %d, %v", read, err)
	}
	if err := bob.Delivered(ctx, []*protocol.ConvPos{{ConvId: conv, Seq: 5}}); err != nil {
		t.Fatalf("Delivered = %v", err)
	}
	again, err := bob.SyncConvs(ctx, "", 0)
	if err != nil || again.Convs[0].ReadSeq != 3 || again.Convs[0].DeliveredSeq != 5 {
		t.Fatalf("SyncConvs after MarkRead and Delivered = %+v, %v", again, err)
	}

	sess := openRealSession(t, addr, prefix+"b")
	st := collectSession(t, sess)
	sendN(t, alice, bobID, 1, "live")
	waitFor(t, "the live message only", func() bool { return st.count(conv) == 1 })
	if st.msgs[0].Seq != 6 {
		t.Fatalf("resumed at the delivered position, yet handed seq %d", st.msgs[0].Seq)
	}
}

func registerReal(t *testing.T, addr, name string) (*client.Client, int64) {
	t.Helper()
	c := dial(t, addr, client.Options{})
	ctx := context.Background()
	if _, err := c.Register(ctx, name, passwordOf(name)); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Login(ctx, client.LoginParams{Username: name, Password: passwordOf(name),
		DeviceID: "dev-" + name})
	if err != nil {
		t.Fatal(err)
	}
	return c, resp.UserId
}

// openRealSession logs in as the device of registerReal, so the server's
// delivered position for it applies.
func openRealSession(t *testing.T, addr, name string) *client.Session {
	t.Helper()
	sess, err := client.OpenSession(context.Background(), client.SessionConfig{
		Addr: addr, Login: client.LoginParams{Username: name, Password: passwordOf(name),
			DeviceID: "dev-" + name},
	})
	if err != nil {
		t.Fatal(err)
	}
	return sess
}
