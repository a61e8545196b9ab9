package logic

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// kickEvents returns the kick events of the stream, oldest first.
func (e *env) kickEvents(t *testing.T) []*event.KickEvent {
	t.Helper()
	ctx := context.Background()
	cons, err := e.js.OrderedConsumer(ctx, e.names.Stream,
		jetstream.OrderedConsumerConfig{FilterSubjects: []string{e.names.KickSubject()}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.KickEvent
	for m := range batch.Messages() {
		ev := event.NewKickEvent()
		if _, err := ev.FastRead(m.Data()); err != nil {
			t.Fatalf("decode kick: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func TestLogin_ReplacedConnectionIsKicked(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice := e.register(t, "alice")
	login := func(conn int64, device string) {
		t.Helper()
		_, err := e.svc.Login(context.Background(), &protocol.LoginReq{Username: "alice",
			Password: testPassword, DeviceId: device},
			&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: conn})
		if err != nil {
			t.Fatal(err)
		}
	}
	login(1, "phone")
	login(2, "tablet") // another device: nobody is replaced
	login(1, "phone")  // the same connection again: nobody is replaced
	if evs := e.kickEvents(t); len(evs) != 0 {
		t.Fatalf("kicks before any replacement = %+v", evs)
	}
	login(3, "phone")
	evs := e.kickEvents(t)
	if len(evs) != 1 {
		t.Fatalf("kicks = %+v, want one", evs)
	}
	k := evs[0]
	if k.UserId != alice || k.Gateway != "gw-1:9000" || k.ConnId != 1 ||
		k.Reason != protocol.CloseReason_KICKED || k.Message != kickMessage {
		t.Fatalf("kick = %+v, want conn 1 of alice kicked", k)
	}
}
