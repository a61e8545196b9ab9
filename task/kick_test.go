package task

import (
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestTask_KickReachesGatewayPastAStalledOne(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	stalled := startGateway(t, gatewayMode{stall: true})
	cfg := testConfig()
	cfg.PushTimeout, cfg.AckWait = 5*time.Second, 10*time.Second
	startTask(t, en, cfg, nil)

	// The stalled gateway's kick holds its call for PushTimeout; the live
	// gateway's kick, published after it, must arrive well before that.
	en.publishKick(t, &event.KickEvent{UserId: 7, Gateway: stalled.addr, ConnId: 1,
		Reason: protocol.CloseReason_KICKED, Message: "gone"})
	testwait.For(t, 4*time.Second, "kick on the stalled gateway", func() bool {
		return len(stalled.kicksCopy()) == 1
	})
	en.publishKick(t, &event.KickEvent{UserId: 7, Gateway: gw.addr, ConnId: 42,
		Reason: protocol.CloseReason_KICKED, Message: "signed in on another connection"})
	testwait.For(t, cfg.PushTimeout/2, "kick on the live gateway", func() bool {
		return len(gw.kicksCopy()) == 1
	})
	k := gw.kicksCopy()[0]
	if len(k.Targets) != 1 || k.Targets[0].ConnId != 42 || k.Targets[0].UserId != 7 ||
		k.Reason != protocol.CloseReason_KICKED || k.Message != "signed in on another connection" {
		t.Fatalf("kick = %+v", k)
	}
	if calls := gw.callsCopy(); len(calls) != 0 {
		t.Fatalf("kick events caused %d pushes", len(calls))
	}
}

func TestTask_UndecodableKickIsDeadLettered(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	startTask(t, en, testConfig(), nil)

	en.publishOn(t, en.names.KickSubject(), []byte("\xa3 not a kick"), "kick-poison")
	dead := waitDeadLetter(t, en, deadLetterSubject(en.names))
	if got := dead.Header.Get(HeaderDeadReason); got != reasonUndecodable {
		t.Fatalf("dead-letter reason = %q, want %q", got, reasonUndecodable)
	}
	// The consumer goes on with the next kick.
	en.publishKick(t, &event.KickEvent{UserId: 1, Gateway: gw.addr, ConnId: 5,
		Reason: protocol.CloseReason_KICKED})
	testwait.For(t, 5*time.Second, "kick after the poison one", func() bool {
		return len(gw.kicksCopy()) == 1
	})
}

// TestTask_FailedKickIsDeadLetteredWithOnePrefix: the error an operator
// reads in the dead letter names the package once, however many helpers it
// passed through.
func TestTask_FailedKickIsDeadLetteredWithOnePrefix(t *testing.T) {
	en := newEnv(t)
	cfg := testConfig()
	cfg.MaxDeliver = 1
	startTask(t, en, cfg, nil)

	en.publishKick(t, &event.KickEvent{UserId: 3, Gateway: deadAddr(t), ConnId: 9,
		Reason: protocol.CloseReason_KICKED})
	dead := waitDeadLetter(t, en, deadLetterSubject(en.names))
	got := dead.Header.Get(HeaderDeadError)
	if !strings.Contains(got, "user 3 conn 9") || strings.Count(got, "task: ") != 1 {
		t.Fatalf("dead-letter error = %q, want the ids and one task prefix", got)
	}
}

func TestDecodeKick(t *testing.T) {
	cases := []struct {
		name string
		ev   *event.KickEvent
		ok   bool
	}{
		{name: "complete", ev: &event.KickEvent{UserId: 1, Gateway: "g:1", ConnId: 2}, ok: true},
		{name: "no gateway", ev: &event.KickEvent{UserId: 1, ConnId: 2}},
		{name: "no connection", ev: &event.KickEvent{UserId: 1, Gateway: "g:1"}},
	}
	for _, tc := range cases {
		buf := make([]byte, tc.ev.BLength())
		tc.ev.FastWriteNocopy(buf, nil)
		_, err := decodeKick(buf)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
