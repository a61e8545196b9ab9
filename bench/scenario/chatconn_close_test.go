package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A CLOSE that ends a chat or group connection is reported with its
// reason and message, as echo reports it: a chat run past the default
// --frame-rate printed "server closed a connection: UNKNOWN " while the
// gateway had closed it with RATE_LIMITED.
func TestChatConnReadFrames_ReportsCloseReason(t *testing.T) {
	clientSide, serverSide := net.Pipe()
	t.Cleanup(func() { _ = clientSide.Close(); _ = serverSide.Close() })
	c := &chatConn{benchConn: &benchConn{conn: clientSide, r: newReader(clientSide)}}
	go func() {
		frame := codec.AppendFrame(nil, protocol.Op_CLOSE, 0, 0, &protocol.CloseMsg{
			Reason: protocol.CloseReason_RATE_LIMITED, Message: "too many frames per second",
			ReconnectAfterMs: 5000})
		_, _ = serverSide.Write(frame)
		_ = serverSide.Close()
	}()
	err := c.readFrames(func(codec.Header, []byte) {}, func(*common.Message) {})
	if !errors.Is(err, ErrServerClosed) || !strings.Contains(err.Error(), "RATE_LIMITED") ||
		!strings.Contains(err.Error(), "too many frames per second") {
		t.Fatalf("readFrames = %v, want ErrServerClosed naming RATE_LIMITED and its message", err)
	}
}

// A receiver the server closes (here as a slow consumer) gets nothing
// after: what was acked to it is reported as undeliverable with the close
// reason, and its own sends as not acked, but neither as lost nor as failed
// sends, and the run passes. A run used to fail with every such message
// counted lost.
func TestChat_ReceiverClosedByServerIsNotLoss(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		// Once the run sends (past the 2 messages opening the pairs), the
		// server closes user 1, the receiver of user 0's messages.
		for ctx.Err() == nil && s.SendCount() < 20 {
			time.Sleep(5 * time.Millisecond)
		}
		names := s.Usernames()
		if len(names) == 4 {
			s.CloseUser(names[1], protocol.CloseReason_SLOW_CONSUMER, -1)
		}
	}()
	rep, err := Chat(ctx, ChatConfig{Addr: s.Addr(), Users: 4, Rate: 200,
		Duration: 500 * time.Millisecond, Timeout: 3 * time.Second})
	// The run fails, since what the closed user was sent went unchecked,
	// and says so, not that messages were lost.
	const why = "the server closed 1 connection (SLOW_CONSUMER: 1); 0 failed sends"
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), why) || rep.OK {
		t.Fatalf("Chat = %v (ok %v), want %q; metrics %v", err, rep.OK, why, rep.Metrics)
	}
	got := make(map[string]float64)
	for _, m := range rep.Metrics {
		got[m.Name] = m.Value
	}
	if got["lost"] != 0 || got["failed sends"] != 0 ||
		got["conns closed by server (SLOW_CONSUMER)"] != 1 ||
		got["undeliverable: receiver closed by server (SLOW_CONSUMER)"] == 0 {
		t.Fatalf("metrics %v", rep.Metrics)
	}
	if got["acked msgs"] != got["delivered msgs"]+
		got["undeliverable: receiver closed by server (SLOW_CONSUMER)"] {
		t.Fatalf("acked msgs are not all delivered or undeliverable: %v", rep.Metrics)
	}
}

// A send whose write is under way when the server closes its sender is
// counted once as not acked: the CLOSE gives up the sends waiting for an
// ack, this one with them, and its write failing afterwards only takes it
// off the sent. It used to be given up a second time: counted twice as not
// acked, and in flight one below zero, which let waitAcks stop while a live
// user's send still waited for its ack.
func TestChat_SendWrittenAsTheServerClosesItsSenderCountsOnce(t *testing.T) {
	users := make([]*chatConn, 2)
	servers := make([]net.Conn, 2)
	for i := range users {
		clientSide, serverSide := net.Pipe()
		t.Cleanup(func() { _ = clientSide.Close(); _ = serverSide.Close() })
		users[i] = &chatConn{benchConn: &benchConn{conn: clientSide, r: newReader(clientSide)},
			index: i, id: int64(i + 1), readDone: make(chan struct{}),
			pending: make(map[uint32]time.Duration)}
		servers[i] = serverSide
	}
	r := testChatRun(ChatConfig{Rate: 1, Duration: time.Second, MaxInFlight: 10}, users)
	r.receive()

	// One send, from user 0: nothing reads the server side, so its write
	// blocks with the send pending.
	offered := make(chan struct{})
	go func() { defer close(offered); r.offer(context.Background()) }()
	testwait.For(t, 5*time.Second, "the send pending", func() bool {
		users[0].mu.Lock()
		defer users[0].mu.Unlock()
		return len(users[0].pending) == 1
	})
	// The server closes user 0 meanwhile; the write fails once it is gone.
	frame := codec.AppendFrame(nil, protocol.Op_CLOSE, 0, 0,
		&protocol.CloseMsg{Reason: protocol.CloseReason_SLOW_CONSUMER})
	if _, err := servers[0].Write(frame); err != nil {
		t.Fatal(err)
	}
	<-users[0].readDone
	_ = servers[0].Close()
	<-offered
	_ = servers[1].Close()
	r.readers.Wait()

	if in, sent, unacked := r.inFlight.Load(), r.sent.Load(), r.unacked.Load(); in != 0 ||
		sent != 0 || unacked != 1 {
		t.Fatalf("in flight %d, sent %d, not acked %d; want 0, 0, 1", in, sent, unacked)
	}
}

// A CLOSE the bench has read when the run ends counts in every figure of
// the report, though its reader is still busy with the frame before it:
// the report waits for the readers. It used to count while they ran, so a
// CLOSE read then landed between its counts: here the message the closed
// receiver never got was counted lost, by a report that named no close
// ("1 lost" and no closes).
func TestChat_ReportCountsTheCloseItsReaderIsBusyWith(t *testing.T) {
	users := make([]*chatConn, 2)
	servers := make([]net.Conn, 2)
	for i := range users {
		pipeSide, serverSide := net.Pipe()
		clientSide := socketPipe{pipeSide}
		t.Cleanup(func() { _ = clientSide.Close(); _ = serverSide.Close() })
		users[i] = &chatConn{benchConn: &benchConn{conn: clientSide, r: newReader(clientSide)},
			index: i, name: fmt.Sprintf("user%d", i), id: int64(i + 1),
			readDone: make(chan struct{}), pending: make(map[uint32]time.Duration)}
		servers[i] = serverSide
	}
	r := testChatRun(ChatConfig{Rate: 1, Duration: time.Second}, users)
	r.receive()
	// User 0's message to user 1 was acked and not pushed.
	r.sent.Add(1)
	r.acked.Add(1)
	r.tr.acked(10, 1, time.Now())

	// The server acks a send of user 1 and closes it; user 1's reader reads
	// both frames and is held at the ack, before the CLOSE.
	users[1].mu.Lock()
	frames := codec.AppendFrame(nil, protocol.Op_SEND_ACK, 0, 7,
		&protocol.SendResp{MsgId: 11, Seq: 1})
	frames = codec.AppendFrame(frames, protocol.Op_CLOSE, 0, 0,
		&protocol.CloseMsg{Reason: protocol.CloseReason_SLOW_CONSUMER})
	if _, err := servers[1].Write(frames); err != nil {
		t.Fatal(err)
	}
	var rep Report
	var err error
	reported := make(chan struct{})
	go func() { defer close(reported); rep, err = r.report(time.Second, nil) }()
	awaitReportOrEnd(t, reported, servers[1])
	users[1].mu.Unlock()
	<-reported

	const why = "the server closed 1 connection (SLOW_CONSUMER: 1); 0 failed sends " +
		"(first: <nil>), 0 unacked, 0 lost"
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), why) {
		t.Fatalf("report = %v, want %q; metrics %v", err, why, rep.Metrics)
	}
	got := make(map[string]float64)
	for _, m := range rep.Metrics {
		got[m.Name] = m.Value
	}
	if got["lost"] != 0 || got["undeliverable: receiver closed by server (SLOW_CONSUMER)"] != 1 {
		t.Fatalf("metrics %v, want the message undeliverable, not lost", rep.Metrics)
	}
}

// awaitReportOrEnd waits until the report is done or has closed the
// connection whose server side is server, ending the run: a report that
// counts while the readers run is done first.
func awaitReportOrEnd(t *testing.T, reported <-chan struct{}, server net.Conn) {
	t.Helper()
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, server); close(ended) }()
	testwait.For(t, 10*time.Second, "the report, or its end of the run", func() bool {
		select {
		case <-reported:
			return true
		case <-ended:
			return true
		default:
			return false
		}
	})
}

// A send the server never answered fails the run, as in group: one still
// waiting for its ack when the report counts is neither failed nor acked,
// and chat used to pass with it ("1 sent, 0 acked", result ok).
func TestChat_ReportFailsOnASendNeverAnswered(t *testing.T) {
	r := testChatRun(ChatConfig{Rate: 1, Duration: time.Second}, nil)
	r.sent.Add(1)
	r.inFlight.Add(1)

	rep, err := r.report(time.Second, nil)
	if rep.OK || !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), "1 unacked") {
		t.Fatalf("report ok=%v, err %v; want a failed check naming 1 unacked send", rep.OK, err)
	}
	for _, m := range rep.Metrics {
		if m.Name == "unacked sends" {
			if m.Value != 1 {
				t.Fatalf("unacked sends = %v, want 1", m.Value)
			}
			return
		}
	}
	t.Fatalf("no unacked sends in %v", rep.Metrics)
}

// testChatRun is a chat run of users with cfg, started now, whose tracker
// knows two users.
func testChatRun(cfg ChatConfig, users []*chatConn) *chatRun {
	start := time.Now()
	return &chatRun{cfg: cfg, users: users, tr: newTracker(2), start: start,
		e2e: NewRecorder(start), ack: NewRecorder(start), late: NewRecorder(start)}
}
