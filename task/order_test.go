package task

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/internal/testwait"
)

// orderLoad is many conversations with many events each. Each conversation
// has a recipient of its own with one connection, so the frames of that
// connection are the pushes of that conversation, in arrival order.
type orderLoad struct {
	convs, events int
}

func (l orderLoad) conv(i int) string { return fmt.Sprintf("g:order-%d", i) }

func (l orderLoad) putRoutes(t *testing.T, en *env, gw *stubGateway) {
	t.Helper()
	for i := range l.convs {
		en.putRoute(t, route.Route{UserID: int64(1000 + i), DeviceID: "d", Gateway: gw.addr,
			ConnID: int64(i + 1)})
	}
}

// publish sends events seqs from..to of every conversation, interleaved.
func (l orderLoad) publish(t *testing.T, en *env, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for seq := from; seq <= to; seq++ {
		for i := range l.convs {
			ev := newEvent(l.conv(i), int64(seq), []int64{int64(1000 + i)}, route.Route{UserID: 1})
			ev.Message.MsgId = int64(i*l.events + seq)
			buf := make([]byte, ev.BLength())
			ev.FastWriteNocopy(buf, nil)
			_, err := en.js.PublishAsync(en.names.MessageSubject(ev.Message.ConvId), buf,
				jetstream.WithMsgID(fmt.Sprintf("msg-%d", ev.Message.MsgId)))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-en.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publish acks not in after 30s")
	}
}

// delivered reports whether every conversation's connection got all events.
func (l orderLoad) delivered(gw *stubGateway) bool {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	for i := range l.convs {
		if len(gw.conns[int64(i+1)]) < l.events {
			return false
		}
	}
	return true
}

// delivery is what a check asks of every conversation's pushes.
type delivery int

const (
	inOrder     delivery = iota // each event exactly once, in seq order
	atLeastOnce                 // each event at least once, any order
)

// check fails unless every conversation's pushes are as want says. It logs
// how many conversations were out of order.
func (l orderLoad) check(t *testing.T, gw *stubGateway, want delivery) {
	t.Helper()
	all := seqRange(1, int64(l.events))
	var reordered, doubled, lost []string
	for i := range l.convs {
		var got []int64
		for _, f := range gw.framesOf(int64(i + 1)) {
			got = append(got, decodePush(t, f).Message.Seq)
		}
		sorted := slices.Sorted(slices.Values(got))
		line := fmt.Sprintf("%s: %v", l.conv(i), got)
		switch {
		case !slices.Equal(slices.Compact(sorted), all):
			lost = append(lost, line)
		case want == inOrder && len(got) != len(all):
			doubled = append(doubled, line)
		case !slices.Equal(got, all):
			reordered = append(reordered, line)
		}
	}
	for _, bad := range []struct {
		what  string
		convs []string
	}{{"lost events", lost}, {"doubled events", doubled}} {
		if len(bad.convs) > 0 {
			t.Errorf("%d of %d conversations %s, first: %s", len(bad.convs), l.convs, bad.what,
				bad.convs[0])
		}
	}
	if len(reordered) > 0 {
		t.Logf("%d of %d conversations pushed out of seq order or twice, first: %s",
			len(reordered), l.convs, reordered[0])
		if want == inOrder {
			t.Errorf("pushes out of seq order in %d conversations", len(reordered))
		}
	}
}

// waitBalanced waits until tasks hold every partition between them, in
// shares that differ by one at most.
func waitBalanced(t *testing.T, tasks ...*runningTask) {
	t.Helper()
	testwait.For(t, 30*time.Second, "partitions shared evenly", func() bool {
		total, lo, hi := 0, mq.Partitions, 0
		for _, rt := range tasks {
			n := len(rt.owned())
			total, lo, hi = total+n, min(lo, n), max(hi, n)
		}
		return total == mq.Partitions && hi-lo <= 1
	})
}

// leaseLog follows partition ownership through Task.onLease and records
// every time a partition was taken while another instance held it.
type leaseLog struct {
	mu     sync.Mutex
	owner  [mq.Partitions]string
	faults []string
}

func (l *leaseLog) hook(instance string, p int, held bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case held && l.owner[p] != "":
		l.faults = append(l.faults, fmt.Sprintf("partition %d taken by %s while %s holds it",
			p, instance, l.owner[p]))
	case held:
		l.owner[p] = instance
	case l.owner[p] != instance:
		l.faults = append(l.faults, fmt.Sprintf("partition %d released by %s, held by %q",
			p, instance, l.owner[p]))
	default:
		l.owner[p] = ""
	}
}

func (l *leaseLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.faults {
		t.Error(f)
	}
}

// orderConfig is testConfig for the tests that check order: an event
// redelivered because its ack wait ran out (a machine too busy to push it
// in time) may be pushed twice or late, which is allowed but not what they
// test, so the ack wait is long; lost deliveries do not run out either.
func orderConfig() Config {
	cfg := testConfig()
	cfg.AckWait, cfg.MaxDeliver, cfg.PushTimeout = 30*time.Second, DefaultMaxDeliver, 3*time.Second
	return cfg
}

// Several instances share the work; each conversation's events still reach
// the gateway once each and in seq order.
func TestTask_InstancesKeepConversationOrder(t *testing.T) {
	load := orderLoad{convs: 100, events: 40}
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	load.putRoutes(t, en, gw)
	var tasks []*runningTask
	for range 3 {
		tasks = append(tasks, startTask(t, en, orderConfig(), nil))
	}
	waitBalanced(t, tasks...)

	load.publish(t, en, 1, load.events)
	testwait.For(t, 60*time.Second, "every event pushed", func() bool { return load.delivered(gw) })
	testwait.For(t, 10*time.Second, "consumers settled", en.settled(t))
	load.check(t, gw, inOrder)
	for i, rt := range tasks {
		if rt.pushed() == 0 {
			t.Errorf("instance %d pushed nothing: the work was not shared", i)
		}
	}
}

// An instance joins while another works through a backlog, then the first
// stops while events keep coming: the partitions change hands twice with
// events pending, and every conversation is still pushed once and in order.
func TestTask_RebalanceAndStopKeepOrder(t *testing.T) {
	load := orderLoad{convs: 64, events: 45}
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{delay: 2 * time.Millisecond})
	load.putRoutes(t, en, gw)
	var leases leaseLog
	deps := func() Deps {
		return Deps{Log: zerolog.Nop(), JS: en.connect(t), MQ: en.names, Routes: en.routes}
	}
	hook := func(tk *Task) { tk.onLease = leases.hook }

	a := startTaskDeps(t, orderConfig(), deps(), hook)
	testwait.For(t, 10*time.Second, "a owns every partition", func() bool {
		return len(a.owned()) == mq.Partitions
	})
	load.publish(t, en, 1, 15)
	testwait.For(t, 10*time.Second, "a pushing", func() bool { return a.pushed() > 0 })
	b := startTaskDeps(t, orderConfig(), deps(), hook)
	waitBalanced(t, a, b)

	load.publish(t, en, 16, 30)
	testwait.For(t, 10*time.Second, "b pushing", func() bool { return b.pushed() > 0 })
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		a.stop()
	}()
	load.publish(t, en, 31, 45)
	<-stopped

	testwait.For(t, 10*time.Second, "b owns every partition", func() bool {
		return len(b.owned()) == mq.Partitions
	})
	testwait.For(t, 60*time.Second, "every event pushed", func() bool { return load.delivered(gw) })
	testwait.For(t, 10*time.Second, "consumers settled", en.settled(t))
	load.check(t, gw, inOrder)
	leases.check(t)
}

// An instance that dies (its NATS connection gone: no acks, no lease
// renewals) holds its partitions until their leases lapse; then the other
// takes them, and its unacked events come back after their ack wait.
// Nothing is lost; those redelivered may arrive out of order or twice.
func TestTask_CrashedInstanceIsTakenOver(t *testing.T) {
	load := orderLoad{convs: 64, events: 30}
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{delay: 2 * time.Millisecond})
	load.putRoutes(t, en, gw)
	// The dead instance's events come back after the ack wait; the other
	// deliveries must not run out meanwhile on a busy machine.
	cfg := testConfig()
	cfg.MaxDeliver = DefaultMaxDeliver
	crashJS := en.connect(t)
	a := startTaskDeps(t, cfg, Deps{Log: zerolog.Nop(), JS: crashJS, MQ: en.names,
		Routes: en.routes})
	b := startTask(t, en, cfg, nil)
	waitBalanced(t, a, b)

	load.publish(t, en, 1, 15)
	testwait.For(t, 10*time.Second, "a pushing", func() bool { return a.pushed() > 0 })
	crashJS.Conn().Close()
	load.publish(t, en, 16, 30)

	testwait.For(t, 20*time.Second, "b owns every partition", func() bool {
		return len(b.owned()) == mq.Partitions
	})
	testwait.For(t, 60*time.Second, "every event pushed", func() bool { return load.delivered(gw) })
	testwait.For(t, 20*time.Second, "consumers settled", en.settled(t))
	load.check(t, gw, atLeastOnce)
	a.stop() // returns although its connection is gone
}

// Events published by a build before partitions wait on the old subject
// for the old consumer; a new task does not read them and says so.
func TestTask_WarnsWhileTheLegacyConsumerHasEvents(t *testing.T) {
	en := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := mq.EnsureStream(ctx, en.js, en.names)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: en.names.Consumer, FilterSubject: en.names.LegacyMessageSubject(),
		AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	en.publishOn(t, en.names.LegacyMessageSubject(), []byte("an event of the old build"), "old-1")

	var logs syncbuf.Buffer
	startTaskDeps(t, testConfig(), Deps{Log: zerolog.New(&logs), JS: en.connect(t), MQ: en.names,
		Routes: en.routes})
	if !strings.Contains(logs.String(), "events of the previous build wait on the old subject") {
		t.Errorf("no warning of the undrained old consumer in:\n%s", logs.String())
	}
}

// A sole instance (the embedded NATS of the single-process mode) restarted
// after a crash takes every partition at once, not after the dead run's
// leases lapse.
func TestTask_SoleInstanceRestartTakesTheLeasesOfItsCrash(t *testing.T) {
	en := newEnv(t)
	cfg := testConfig()
	cfg.SoleInstance = true
	cfg.LeaseTTL = time.Minute // waiting it out would time the test out
	crashJS := en.connect(t)
	first := startTaskDeps(t, cfg, Deps{Log: zerolog.Nop(), JS: crashJS, MQ: en.names,
		Routes: en.routes})
	if n := len(first.owned()); n != mq.Partitions {
		t.Fatalf("first run owns %d partitions, want all %d", n, mq.Partitions)
	}
	crashJS.Conn().Close()

	second := startTask(t, en, cfg, nil)
	if n := len(second.owned()); n != mq.Partitions {
		t.Fatalf("restart owns %d partitions when ready, want all %d", n, mq.Partitions)
	}
	first.stop()
}
