package logic

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cloudwego/kitex/client"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestKitex_RoundTrip drives the service through a real Kitex server and
// client, checking that results and BizErrors survive the wire.
func TestKitex_RoundTrip(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	cli, _ := serveKitex(t, e)
	ctx := context.Background()

	alice := registerOver(t, cli, "alice")
	bob := registerOver(t, cli, "bob")
	_, err := cli.Register(ctx, &protocol.RegisterReq{Username: "alice", Password: testPassword},
		testConn)
	wantCode(t, err, common.ErrorCode_USERNAME_TAKEN)

	login, err := cli.Login(ctx, &protocol.LoginReq{Username: "alice", Password: testPassword},
		&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 3})
	if err != nil || login.UserId != alice {
		t.Fatalf("login = %+v, %v", login, err)
	}
	sess := &logicrpc.Session{UserId: alice, DeviceId: defaultDevice, Gateway: "gw-1:9000",
		ConnId: 3}
	sent, err := cli.Send(ctx, sess, textReq("k1", bob))
	if err != nil || sent.Seq != 1 {
		t.Fatalf("send = %+v, %v", sent, err)
	}
	synced, err := cli.Sync(ctx, sess, &protocol.SyncReq{ConvId: sent.ConvId})
	if err != nil || len(synced.Messages) != 1 || synced.Messages[0].MsgId != sent.MsgId ||
		synced.LastSeq != 1 {
		t.Fatalf("sync = %+v, %v", synced, err)
	}
	positionsOver(t, cli, sess, sent)
	sendBatchOver(t, cli, sess, bob)
	if err := cli.Disconnect(ctx, sess); err != nil {
		t.Fatal(err)
	}
}

// positionsOver drives Delivered, MarkRead and SyncConvs over the wire after
// sess sent one message.
func positionsOver(t *testing.T, cli logic.Client, sess *logicrpc.Session,
	sent *protocol.SendResp) {
	t.Helper()
	ctx := context.Background()
	_, err := cli.Delivered(ctx, sess, &protocol.DeliveredReq{
		Positions: []*protocol.ConvPos{{ConvId: sent.ConvId, Seq: 1}}})
	if err != nil {
		t.Fatalf("delivered: %v", err)
	}
	read, err := cli.MarkRead(ctx, sess, &protocol.MarkReadReq{ConvId: sent.ConvId, Seq: 1})
	if err != nil || read.ReadSeq != 1 {
		t.Fatalf("mark read = %+v, %v", read, err)
	}
	convs, err := cli.SyncConvs(ctx, sess, &protocol.SyncConvsReq{})
	if err != nil || len(convs.Convs) != 1 || convs.Cursor == "" {
		t.Fatalf("sync convs = %+v, %v", convs, err)
	}
	if c := convs.Convs[0]; c.DeliveredSeq != 1 || c.LastMessage.GetMsgId() != sent.MsgId {
		t.Fatalf("summary = %+v", c)
	}
	_, err = cli.MarkRead(ctx, sess, &protocol.MarkReadReq{ConvId: "p2p:900:901", Seq: 1})
	wantCode(t, err, common.ErrorCode_FORBIDDEN)
}

// sendBatchOver drives SendBatch over the wire after sess sent one message
// to bob: acks and a refused request inside the outcomes, and a call
// refused whole as a thrown BizError.
func sendBatchOver(t *testing.T, cli logic.Client, sess *logicrpc.Session, bob int64) {
	t.Helper()
	ctx := context.Background()
	empty := textReq("k3", bob)
	empty.Content = nil
	out, err := cli.SendBatch(ctx, sess, []*protocol.SendReq{textReq("k2", bob), empty,
		textReq("k1", bob)})
	if err != nil || len(out) != 3 {
		t.Fatalf("send batch = %v, %v", out, err)
	}
	refused := out[1].GetErr().GetCode()
	if out[0].GetResp().GetSeq() != 2 || refused != common.ErrorCode_BAD_REQUEST ||
		!out[2].GetResp().GetDuplicate() || out[2].GetResp().GetSeq() != 1 {
		t.Fatalf("send batch outcomes = %v, %v, %v", out[0], out[1], out[2])
	}
	_, err = cli.SendBatch(ctx, sess, nil)
	wantCode(t, err, common.ErrorCode_BAD_REQUEST)
}

func registerOver(t *testing.T, cli logic.Client, name string) int64 {
	t.Helper()
	resp, err := cli.Register(context.Background(),
		&protocol.RegisterReq{Username: name, Password: testPassword}, testConn)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return resp.UserId
}

func TestServe_AfterStopFails(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	if err := e.svc.Stop(); err != nil {
		t.Fatal(err)
	}
	ln := listenLocal(t)
	if err := e.svc.Serve(ln); err == nil {
		t.Fatal("Serve after Stop returned nil")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still open after refused Serve")
	}
	if err := e.svc.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// serveKitex serves e's service on a loopback port until the test ends, and
// returns a Kitex client of it and the channel Serve's result comes on. A
// test that takes the result puts it back for the cleanup, which stops the
// service and checks both.
func serveKitex(t *testing.T, e *env) (logic.Client, chan error) {
	t.Helper()
	ln := listenLocal(t)
	served := make(chan error, 1)
	go func() { served <- e.svc.Serve(ln) }()
	t.Cleanup(func() {
		if err := e.svc.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	cli, err := logic.NewClient("logic", client.WithHostPorts(ln.Addr().String()),
		client.WithRPCTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return cli, served
}
