package task

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resonance-im/resonance/internal/testwait"
)

// A mention reaches a user who muted the conversation, by name or @all,
// marked mentioned; never in do-not-disturb, and a muted conversation
// without a mention stays silent.
func TestNotify_MentionPassesMuteNotDND(t *testing.T) {
	tests := []struct {
		name     string
		dnd      bool
		mentions []int64
		all      bool
		want     int // notifications
	}{
		{name: "muted and mentioned", mentions: []int64{3, 2}, want: 1},
		{name: "muted and @all", all: true, want: 1},
		{name: "muted, mentioned, do not disturb", dnd: true, mentions: []int64{2}},
		{name: "muted, someone else mentioned", mentions: []int64{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			en := newEnv(t)
			gw := startGateway(t, gatewayMode{})
			rcv := startReceiver(t, false)
			alice, lg := twoUsers(t, en, gw)
			lg.muted[2], lg.dnd[2] = true, tc.dnd
			startNotifyTask(t, en, notifyConfig(rcv, -1), lg)
			ev := newEvent("g:1", 1, []int64{1, 2, 3}, alice)
			ev.Message.Mentions, ev.Message.MentionAll = tc.mentions, new(tc.all)
			en.publish(t, ev)
			testwait.For(t, 5*time.Second, "event acked", en.notifySettled(t))
			notes := rcv.got()
			if len(notes) != tc.want {
				t.Fatalf("got %d notifications, want %d: %+v", len(notes), tc.want, notes)
			}
			if tc.want == 1 && (!notes[0].Mentioned || notes[0].DeviceID != "phone") {
				t.Errorf("notification %+v, want bob's phone, mentioned", notes[0])
			}
		})
	}
}

// A coalesced burst whose mention is not its newest message is still
// marked mentioned; one without a mention is not.
func TestNotify_CoalescedBurstKeepsMention(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, false)
	alice, lg := twoUsers(t, en, gw)
	tk := startNotifyTask(t, en, notifyConfig(rcv, 500*time.Millisecond), lg)
	for seq := int64(1); seq <= 3; seq++ {
		ev := newEvent("g:1", seq, []int64{1, 2}, alice)
		if seq == 2 {
			ev.Message.Mentions = []int64{2}
		}
		en.publish(t, ev)
	}
	testwait.For(t, 5*time.Second, "events acked", en.notifySettled(t))
	notes := rcv.got()
	if len(notes) != 1 || notes[0].Count != 3 || notes[0].MsgID != 1003 || !notes[0].Mentioned {
		t.Fatalf("notifications %+v, want one of 3 messages, newest 1003, mentioned", notes)
	}
	if v := testutil.ToFloat64(tk.task.notify.metrics.sent); v != 1 {
		t.Errorf("sent metric %v, want 1", v)
	}
}
