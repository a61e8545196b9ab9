package scenario

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// heldConn is the bench's side of a loopback TCP connection whose reads
// wait until release is closed: what the server sends meanwhile stays in
// the socket, on its way, as a CLOSE is when the bench ends its run.
type heldConn struct {
	*net.TCPConn
	release chan struct{}
}

func (c heldConn) Read(b []byte) (int, error) {
	<-c.release
	return c.TCPConn.Read(b)
}

// heldPair connects a heldConn to a server side the test writes.
func heldPair(t *testing.T) (heldConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return heldConn{client.(*net.TCPConn), make(chan struct{})}, server.(*net.TCPConn)
}

// closeOnEnd acts as the gateway does when the bench ends a connection: it
// reads until the bench's end of stream and then closes its side.
func closeOnEnd(server net.Conn) {
	_, _ = io.Copy(io.Discard, server)
	_ = server.Close()
}

// endCase is a run's end with a CLOSE on its way to the receiver of an
// acked message, or nothing on its way: the message was lost.
var endCases = []struct {
	name    string
	closing bool
	wantErr string
	// wantLost and wantUndeliverable are the report's figures.
	wantLost, wantUndeliverable float64
}{
	{name: "close on its way", closing: true,
		wantErr:  "the server closed 1 connection (SLOW_CONSUMER: 1)",
		wantLost: 0, wantUndeliverable: 1},
	{name: "nothing on its way", wantErr: "1 lost", wantLost: 1},
}

// A CLOSE the server sent before the bench ended its run, still in the
// socket when the run ends, is read and named: what its receiver missed
// is undeliverable, not lost. The run used to close its connections
// outright and drop the CLOSE with them: "check failed: 0 failed sends
// (first: <nil>), 1 lost, ...", with no close named. A receiver with
// nothing on its way still counts its missed message as lost.
func TestChat_ReportNamesTheCloseOnItsWayAtTheEnd(t *testing.T) {
	for _, tt := range endCases {
		t.Run(tt.name, func(t *testing.T) {
			client, server := heldPair(t)
			users := chatUsers(t, 2)
			users[1].benchConn = &benchConn{conn: client, r: newReader(client)}
			r := testChatRun(ChatConfig{Rate: 1, Duration: time.Second}, users)
			r.receive()
			// User 0's message to user 1 was acked and not pushed.
			r.sent.Add(1)
			r.acked.Add(1)
			r.tr.acked(10, 1, time.Now())

			rep, err := reportAtEnd(t, client, server, tt.closing, func() (Report, error) {
				return r.report(time.Second, nil)
			})
			checkEndReport(t, rep, err, tt.wantErr, tt.wantLost, tt.wantUndeliverable)
		})
	}
}

// As in chat (TestChat_ReportNamesTheCloseOnItsWayAtTheEnd), a CLOSE on
// its way to a group member at the end is named, not taken for a loss.
func TestGroup_ReportNamesTheCloseOnItsWayAtTheEnd(t *testing.T) {
	for _, tt := range endCases {
		t.Run(tt.name, func(t *testing.T) {
			client, server := heldPair(t)
			r, _ := pipeGroup(t, 3)
			r.members[2].benchConn = &benchConn{conn: client, r: newReader(client)}
			g := r.groups[0]
			// Member 0's message, seq 1, was acked and reached member 1, not 2.
			r.sent.Add(1)
			r.acked.Add(1)
			g.acked = []ackedSeq{{seq: 1, sender: r.members[0], ackedAt: time.Now()}}
			r.members[1].seen.add(1)
			r.receive()

			rep, err := reportAtEnd(t, client, server, tt.closing, func() (Report, error) {
				return r.report(time.Second, nil)
			})
			checkEndReport(t, rep, err, tt.wantErr, tt.wantLost, tt.wantUndeliverable)
		})
	}
}

// chatUsers are n chat users on pipes nothing writes to.
func chatUsers(t *testing.T, n int) []*chatConn {
	t.Helper()
	users := make([]*chatConn, n)
	for i := range users {
		pipeSide, serverSide := net.Pipe()
		clientSide := socketPipe{pipeSide}
		t.Cleanup(func() { _ = clientSide.Close(); _ = serverSide.Close() })
		users[i] = &chatConn{benchConn: &benchConn{conn: clientSide, r: newReader(clientSide)},
			index: i, id: int64(i + 1), readDone: make(chan struct{}),
			pending: make(map[uint32]time.Duration)}
	}
	return users
}

// reportAtEnd has the server send a CLOSE (when closing) to the held
// client, then reports, and lets the client read only once the report has
// ended the connection (the server read its end), or the report is done.
func reportAtEnd(t *testing.T, client heldConn, server *net.TCPConn, closing bool,
	report func() (Report, error)) (Report, error) {
	t.Helper()
	if closing {
		writeFrame(t, server, protocol.Op_CLOSE, 0,
			&protocol.CloseMsg{Reason: protocol.CloseReason_SLOW_CONSUMER})
	}
	var rep Report
	var err error
	reported := make(chan struct{})
	go func() { defer close(reported); rep, err = report() }()
	ended := make(chan struct{})
	go func() { closeOnEnd(server); close(ended) }()
	select {
	case <-reported:
	case <-ended:
	}
	close(client.release)
	<-reported
	return rep, err
}

func checkEndReport(t *testing.T, rep Report, err error, wantErr string,
	wantLost, wantUndeliverable float64) {
	t.Helper()
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("report = %v, want %q; metrics %v", err, wantErr, rep.Metrics)
	}
	got := make(map[string]float64)
	for _, m := range rep.Metrics {
		got[m.Name] = m.Value
	}
	if got["lost"] != wantLost ||
		got["undeliverable: receiver closed by server (SLOW_CONSUMER)"] != wantUndeliverable {
		t.Fatalf("metrics %v, want %v lost and %v undeliverable", rep.Metrics, wantLost,
			wantUndeliverable)
	}
}
