package task

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/testwait"
)

// Events that reach the stream out of seq order, as when two logic
// instances publish one conversation's messages, are pushed in seq order:
// a swapped pair waits for its first half, and an event after a seq that
// never comes goes out once the window passed. Each exactly once, all acked.
func TestTask_ReordersEventsOfAConversation(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	cases := []struct {
		name      string
		published []int64 // stream order
		pushed    []int64 // the order the connection must see
	}{
		{name: "swapped pairs", published: []int64{1, 3, 2, 5, 4}, pushed: []int64{1, 2, 3, 4, 5}},
		{name: "gap never filled", published: []int64{1, 2, 4, 3, 6, 8, 7},
			pushed: []int64{1, 2, 3, 4, 6, 7, 8}},
		{name: "three back", published: []int64{1, 4, 3, 2}, pushed: []int64{1, 2, 3, 4}},
		{name: "duplicate", published: []int64{1, 2, 2, 3}, pushed: []int64{1, 2, 2, 3}},
		{name: "in order", published: []int64{1, 2, 3}, pushed: []int64{1, 2, 3}},
	}
	conv := func(i int) string { return fmt.Sprintf("g:reorder-%d", i) }
	for i := range cases {
		en.putRoute(t, route.Route{UserID: int64(2000 + i), DeviceID: "d", Gateway: gw.addr,
			ConnID: int64(i + 1)})
	}
	cfg := orderConfig()
	// Far longer than publishing takes on a busy machine: only the gap
	// that is never filled waits it out.
	cfg.ReorderWindow = 2 * time.Second
	rt := startTask(t, en, cfg, nil)

	// Every conversation's first event sets where its order starts.
	msgID := int64(0)
	publish := func(i int, seq int64) {
		ev := newEvent(conv(i), seq, []int64{int64(2000 + i)}, route.Route{UserID: 1})
		msgID++
		ev.Message.MsgId = msgID // unique: the stream keeps a duplicate seq too
		en.publish(t, ev)
	}
	for i := range cases {
		publish(i, cases[i].published[0])
	}
	testwait.For(t, 10*time.Second, "first events pushed", func() bool {
		for i := range cases {
			if len(gw.framesOf(int64(i+1))) == 0 {
				return false
			}
		}
		return true
	})
	// The rest interleaved across conversations, in each one's order.
	for k := 1; ; k++ {
		more := false
		for i, c := range cases {
			if k < len(c.published) {
				publish(i, c.published[k])
				more = true
			}
		}
		if !more {
			break
		}
	}

	testwait.For(t, 20*time.Second, "every event pushed", func() bool {
		for i, c := range cases {
			if len(gw.framesOf(int64(i+1))) < len(c.pushed) {
				return false
			}
		}
		return true
	})
	testwait.For(t, 10*time.Second, "consumers settled", en.settled(t))
	for i, c := range cases {
		var got []int64
		for _, f := range gw.framesOf(int64(i + 1)) {
			got = append(got, decodePush(t, f).Message.Seq)
		}
		if !slices.Equal(got, c.pushed) {
			t.Errorf("%s: published %v, pushed %v, want %v", c.name, c.published, got, c.pushed)
		}
	}
	if n := testutil.ToFloat64(rt.task.metrics.reorderExpired); n < 1 {
		t.Errorf("reorder windows expired = %v, want at least 1 (seq 5 never comes)", n)
	}
	if n := testutil.ToFloat64(rt.task.metrics.reorderHeld); n < 4 {
		t.Errorf("events held = %v, want at least 4", n)
	}
}

// A stopping instance pushes and acks the events it holds before it gives
// its partitions back: nothing is lost and nothing is left unacked.
func TestTask_StopPushesHeldEvents(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	en.putRoute(t, route.Route{UserID: 2000, DeviceID: "d", Gateway: gw.addr, ConnID: 1})
	cfg := orderConfig()
	cfg.ReorderWindow = 2 * time.Second
	rt := startTask(t, en, cfg, nil)

	publish := func(seq int64) {
		ev := newEvent("g:reorder-stop", seq, []int64{2000}, route.Route{UserID: 1})
		en.publish(t, ev)
	}
	publish(1)
	testwait.For(t, 10*time.Second, "seq 1 pushed", func() bool { return len(gw.framesOf(1)) == 1 })
	publish(3) // 2 never comes
	testwait.For(t, 10*time.Second, "seq 3 held", func() bool {
		return testutil.ToFloat64(rt.task.metrics.reorderHeld) == 1
	})
	rt.stop()

	if got := len(gw.framesOf(1)); got != 2 {
		t.Errorf("pushes after stop = %d, want 2 (the held event too)", got)
	}
	testwait.For(t, 10*time.Second, "consumers settled", en.settled(t))
}

// reorderJobs builds jobs of conv with the given seqs, from run.
func reorderJobs(conv string, run *partRun, seqs ...int64) []job {
	out := make([]job, len(seqs))
	for i, s := range seqs {
		out[i] = job{ev: newEvent(conv, s, []int64{1}, route.Route{UserID: 1}), part: run}
	}
	return out
}

func seqsOf(jobs []job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ev.Message.Seq
	}
	return out
}

// The reorderer alone, on a fake clock: what each admitted event releases.
func TestReorderer_Admit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	runA, runB := newPartRun(0, "c"), newPartRun(0, "c")
	cases := []struct {
		name  string
		run   *partRun
		seqs  []int64
		ready []int64
	}{
		{name: "first seen goes at once", run: runA, seqs: []int64{5}, ready: []int64{5}},
		{name: "ahead is held", run: runA, seqs: []int64{7, 8}, ready: nil},
		{name: "the gap filled releases", run: runA, seqs: []int64{6}, ready: []int64{6, 7, 8}},
		{name: "redelivery goes at once", run: runA, seqs: []int64{3}, ready: []int64{3}},
		{name: "last did not move back", run: runA, seqs: []int64{9}, ready: []int64{9}},
		{name: "a new run starts fresh", run: runB, seqs: []int64{20}, ready: []int64{20}},
	}
	r := newReorderer(time.Second, 1, newMetrics(nil))
	for _, c := range cases {
		var ready []job
		for _, j := range reorderJobs("g:1", c.run, c.seqs...) {
			ready = r.admit(j, ready, now)
		}
		ready = r.expire(ready, now)
		if got := seqsOf(ready); !slices.Equal(got, c.ready) {
			t.Errorf("%s: admitted %v, ready %v, want %v", c.name, c.seqs, got, c.ready)
		}
	}

	// A gap never filled: held until the window passes, then in seq order.
	var ready []job
	for _, j := range reorderJobs("g:1", runB, 24, 22) {
		ready = r.admit(j, ready, now)
	}
	if len(ready) != 0 || r.due() == nil {
		t.Fatalf("ready %v, due %v: want both held and a timer", seqsOf(ready), r.due())
	}
	if ready = r.expire(ready, now.Add(999*time.Millisecond)); len(ready) != 0 {
		t.Fatalf("ready %v before the window passed", seqsOf(ready))
	}
	ready = r.expire(ready, now.Add(time.Second))
	if got := seqsOf(ready); !slices.Equal(got, []int64{22, 24}) || r.due() != nil {
		t.Errorf("after the window: ready %v, want [22 24] and no timer", got)
	}
	ready = r.admit(reorderJobs("g:1", runB, 25)[0], nil, now.Add(time.Second))
	if got := seqsOf(ready); !slices.Equal(got, []int64{25}) {
		t.Errorf("after the expiry, 25 gave %v: last should be 24", got)
	}
}

// Off, every event passes as it comes.
func TestReorderer_Off(t *testing.T) {
	r := newReorderer(-1, 1, newMetrics(nil))
	var ready []job
	for _, j := range reorderJobs("g:1", newPartRun(0, "c"), 1, 3, 2) {
		ready = r.admit(j, ready, time.Now())
	}
	if got := seqsOf(ready); !slices.Equal(got, []int64{1, 3, 2}) {
		t.Errorf("ready %v, want [1 3 2]", got)
	}
}

// Memory stays bounded: past the cap, conversations without held events are
// forgotten, and idle ones are swept.
func TestReorderer_ForgetsConversations(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	r := newReorderer(time.Second, 1, newMetrics(nil))
	r.maxConvs, r.lastSweep = 8, now // on the fake clock
	run := newPartRun(0, "c")
	r.admit(reorderJobs("g:held", run, 1)[0], nil, now)
	r.admit(reorderJobs("g:held", run, 3)[0], nil, now)
	for i := range 20 {
		r.admit(reorderJobs(fmt.Sprintf("g:%d", i), run, 1)[0], nil, now)
	}
	if n := len(r.convs); n > r.maxConvs {
		t.Errorf("%d conversations remembered, cap %d", n, r.maxConvs)
	}
	if r.convs["g:held"] == nil {
		t.Error("a conversation with a held event was forgotten")
	}
	r.expire(nil, now.Add(reorderIdle)) // flushes g:held, sweeps the idle others
	r.expire(nil, now.Add(2*reorderIdle))
	if n := len(r.convs); n != 0 {
		t.Errorf("%d conversations remembered after %v idle, want 0", n, 2*reorderIdle)
	}
}
