package scenario

import (
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

func TestSeqSet_AddsOnceAndGrows(t *testing.T) {
	var s seqSet
	for _, seq := range []int64{1, 63, 64, 500} {
		if !s.add(seq) {
			t.Fatalf("add(%d) of a new seq reported a copy", seq)
		}
		if s.add(seq) {
			t.Fatalf("second add(%d) reported a new seq", seq)
		}
	}
	for _, tc := range []struct {
		seq  int64
		want bool
	}{{seq: 1, want: true}, {seq: 2, want: false}, {seq: 64, want: true},
		{seq: 500, want: true}, {seq: 501, want: false}, {seq: 100000, want: false}} {
		if got := s.has(tc.seq); got != tc.want {
			t.Errorf("has(%d) = %v, want %v", tc.seq, got, tc.want)
		}
	}
}

func TestGroupConfig_Defaults(t *testing.T) {
	tests := []struct {
		name       string
		cfg        GroupConfig
		wantOnline int
		wantErr    bool
	}{
		{name: "defaults", cfg: GroupConfig{Addr: "a"}, wantOnline: 100},
		{name: "never fewer than 2 online", cfg: GroupConfig{Addr: "a", Size: 10, Online: 0.01},
			wantOnline: 2},
		{name: "all online", cfg: GroupConfig{Addr: "a", Size: 7, Online: 1}, wantOnline: 7},
		{name: "no address", cfg: GroupConfig{}, wantErr: true},
		{name: "share over 1", cfg: GroupConfig{Addr: "a", Online: 1.5}, wantErr: true},
		{name: "one member", cfg: GroupConfig{Addr: "a", Size: 1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.cfg.withDefaults()
			if tt.wantErr {
				if !errors.Is(err, ErrBadConfig) {
					t.Fatalf("err %v, want ErrBadConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.onlinePerGroup(); got != tt.wantOnline {
				t.Fatalf("online per group %d, want %d", got, tt.wantOnline)
			}
		})
	}
}

// pipeGroup is a one-group run of n online members, each on a pipe whose
// server side the test writes.
func pipeGroup(t *testing.T, n int) (*groupRun, []net.Conn) {
	t.Helper()
	g := &benchGroup{id: "g:1"}
	r := &groupRun{cfg: GroupConfig{Groups: 1, Size: n, Online: 1, Rate: 1,
		Duration: time.Second}, groups: []*benchGroup{g}, closed: newClosures()}
	servers := make([]net.Conn, n)
	for i := range n {
		pipeSide, serverSide := net.Pipe()
		clientSide := socketPipe{pipeSide}
		t.Cleanup(func() { _ = clientSide.Close(); _ = serverSide.Close() })
		m := &groupMember{group: g, chatConn: &chatConn{
			benchConn: &benchConn{conn: clientSide, r: newReader(clientSide)},
			index:     i, name: fmt.Sprintf("member%d", i), readDone: make(chan struct{}),
			pending: make(map[uint32]time.Duration)}}
		g.online = append(g.online, m)
		r.members = append(r.members, m)
		servers[i] = serverSide
	}
	r.start = time.Now()
	r.e2e, r.ack = NewRecorder(r.start), NewRecorder(r.start)
	return r, servers
}

// socketPipe is one side of a net.Pipe that, closed, fails its reads as a
// closed socket does: with net.ErrClosed, which the readers take for the
// run's end.
type socketPipe struct{ net.Conn }

func (p socketPipe) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	if errors.Is(err, io.ErrClosedPipe) {
		err = net.ErrClosed
	}
	return n, err
}

// writeFrame writes one frame to the member on the other side of conn.
func writeFrame(t *testing.T, conn net.Conn, op protocol.Op, id uint32, body codec.Body) {
	t.Helper()
	if _, err := conn.Write(codec.AppendFrame(nil, op, 0, id, body)); err != nil {
		t.Fatal(err)
	}
}

// A member the server closes (here as a slow consumer) is accounted as in
// chat: the run fails naming the close, the group message it was not
// pushed is undeliverable, not lost, its own send waiting for an ack is
// not acked, not a failure, and nobody waits for it. Group used to take
// the CLOSE for a reader failure: "1 failed sends (first: member member2:
// scenario: server closed a connection: SLOW_CONSUMER), 1 lost", and it
// waited the whole timeout for the closed member's deliveries.
func TestGroup_MemberClosedByServerIsNotLoss(t *testing.T) {
	r, servers := pipeGroup(t, 3)
	// Member 0 sent message 1 and member 2 a message of its own; both wait
	// for their ack.
	for _, i := range []int{0, 2} {
		r.sent.Add(1)
		r.inFlight.Add(1)
		r.members[i].pending[1] = 0
	}
	r.receive()

	writeFrame(t, servers[0], protocol.Op_SEND_ACK, 1,
		&protocol.SendResp{MsgId: 10, ConvId: "g:1", Seq: 1})
	testwait.For(t, 5*time.Second, "the ack", func() bool { return r.acked.Load() == 1 })
	// It reaches member 1; the server closes member 2 before pushing it there.
	writeFrame(t, servers[1], protocol.Op_PUSH, 0, &protocol.PushMsg{Message: &common.Message{
		MsgId: 10, ConvId: "g:1", Seq: 1, ContentType: common.ContentType_BINARY,
		Content: encodeChatPayload(0, 0)}})
	writeFrame(t, servers[2], protocol.Op_CLOSE, 0,
		&protocol.CloseMsg{Reason: protocol.CloseReason_SLOW_CONSUMER})
	<-r.members[2].readDone
	testwait.For(t, 5*time.Second, "the push", func() bool { return r.deliveries.Load() == 1 })
	if !r.complete() {
		t.Fatal("the run waits for the deliveries of a member the server closed")
	}
	r.closeAll() // as Group ends its run
	r.readers.Wait()

	rep, err := r.report(time.Second, nil)
	const why = "the server closed 1 connection (SLOW_CONSUMER: 1); 0 failed sends " +
		"(first: <nil>), 0 unacked, 0 lost"
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), why) || rep.OK {
		t.Fatalf("report = %v (ok %v), want %q", err, rep.OK, why)
	}
	got := make(map[string]float64)
	for _, m := range rep.Metrics {
		got[m.Name] = m.Value
	}
	if got["conns closed by server (SLOW_CONSUMER)"] != 1 ||
		got["undeliverable: receiver closed by server (SLOW_CONSUMER)"] != 1 ||
		got["not acked: sender closed by server"] != 1 || got["unacked sends"] != 0 {
		t.Fatalf("metrics %v", rep.Metrics)
	}
}

// A group message missing at a member the server closed is lost when it
// was acked more than closeGrace before the close (a live member would
// have had it), undeliverable when acked later; missing at a live member
// it is lost.
func TestGroupTally_ClosedMemberLosesWhatWasAckedLongBefore(t *testing.T) {
	closedAt := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		ackedAt       time.Time
		liveHasIt     bool
		lost          int
		undeliverable int
	}{
		{name: "long before", ackedAt: closedAt.Add(-time.Hour), liveHasIt: true, lost: 1},
		{name: "at the grace", ackedAt: closedAt.Add(-closeGrace), liveHasIt: true,
			undeliverable: 1},
		{name: "after", ackedAt: closedAt.Add(time.Second), liveHasIt: true, undeliverable: 1},
		{name: "missing at the live member too", ackedAt: closedAt, lost: 1, undeliverable: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &benchGroup{id: "g:1"}
			r := &groupRun{groups: []*benchGroup{g}, closed: newClosures()}
			for i := range 3 {
				m := &groupMember{group: g, chatConn: &chatConn{index: i}}
				g.online = append(g.online, m)
			}
			r.members = g.online
			g.acked = []ackedSeq{{seq: 1, sender: g.online[0], ackedAt: tt.ackedAt}}
			if tt.liveHasIt {
				g.online[1].seen.add(1)
			}
			r.closed.add(2, "SLOW_CONSUMER", closedAt)
			lost, _, _, undeliverable := r.tally()
			if lost != tt.lost || undeliverable["SLOW_CONSUMER"] != tt.undeliverable {
				t.Fatalf("lost %d, undeliverable %v; want %d, %d", lost, undeliverable,
					tt.lost, tt.undeliverable)
			}
		})
	}
}

// A CLOSE the bench has read when the run ends counts in the report,
// though the member's reader is still busy with the frame before it, as
// in chat (TestChat_ReportCountsTheCloseItsReaderIsBusyWith). The report
// used to count while the readers ran: here the group message the closed
// member never got was counted lost, and no close was named.
func TestGroup_ReportCountsTheCloseItsReaderIsBusyWith(t *testing.T) {
	r, servers := pipeGroup(t, 3)
	g := r.groups[0]
	// Member 0's message, seq 1, was acked and reached member 1, not 2.
	r.sent.Add(1)
	r.acked.Add(1)
	g.acked = []ackedSeq{{seq: 1, sender: r.members[0], ackedAt: time.Now()}}
	r.members[1].seen.add(1)
	r.receive()

	// The server acks a send of member 2 and closes it; member 2's reader
	// reads both frames and is held at the ack, before the CLOSE.
	r.members[2].chatConn.mu.Lock() // the reader's, not the tally's
	frames := codec.AppendFrame(nil, protocol.Op_SEND_ACK, 0, 7,
		&protocol.SendResp{MsgId: 11, ConvId: "g:1", Seq: 2})
	frames = codec.AppendFrame(frames, protocol.Op_CLOSE, 0, 0,
		&protocol.CloseMsg{Reason: protocol.CloseReason_SLOW_CONSUMER})
	if _, err := servers[2].Write(frames); err != nil {
		t.Fatal(err)
	}
	var rep Report
	var err error
	reported := make(chan struct{})
	go func() { defer close(reported); rep, err = r.report(time.Second, nil) }()
	awaitReportOrEnd(t, reported, servers[2])
	r.members[2].chatConn.mu.Unlock()
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
