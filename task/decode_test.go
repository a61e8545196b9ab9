package task

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func encodeEvent(ev *event.MessageEvent) []byte {
	buf := make([]byte, ev.BLength())
	return buf[:ev.FastWriteNocopy(buf, nil)]
}

func TestDecodeEvent(t *testing.T) {
	good := encodeEvent(newEvent("p2p:1:2", 7, []int64{1, 2}, route.Route{UserID: 1}))
	tests := []struct {
		name       string
		data       []byte
		wantPoison bool
	}{
		{name: "whole event", data: good},
		{name: "empty", data: nil, wantPoison: true},
		{name: "truncated", data: good[:len(good)/2], wantPoison: true},
		{name: "trailing bytes", data: append(slices.Clone(good), 0, 0), wantPoison: true},
		{name: "no message", data: encodeEvent(&event.MessageEvent{Recipients: []int64{1}}),
			wantPoison: true},
		{name: "field type byte over 0x7f", data: []byte("\xa3000"), wantPoison: true},
		{name: "no conversation", wantPoison: true,
			data: encodeEvent(&event.MessageEvent{Message: &common.Message{Seq: 7}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := decodeEvent(tc.data)
			if got := errors.Is(err, ErrPoison); got != tc.wantPoison {
				t.Fatalf("decodeEvent error = %v, want poison %v", err, tc.wantPoison)
			}
			if err == nil && ev.Message.Seq != 7 {
				t.Errorf("seq = %d, want 7", ev.Message.Seq)
			}
		})
	}
}

// FuzzDecodeEvent checks that no input panics the decoder and that whatever
// it accepts encodes back to the same bytes.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(encodeEvent(newEvent("p2p:1:2", 1, []int64{1, 2}, route.Route{UserID: 1, Gateway: "g"})))
	f.Add([]byte{})
	f.Add([]byte("not thrift"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodeEvent(data)
		if err != nil {
			return
		}
		if again := encodeEvent(ev); !bytes.Equal(encodeEvent(mustDecode(t, again)), again) {
			t.Fatalf("re-encoding %x is not stable", data)
		}
	})
}

func mustDecode(t *testing.T, data []byte) *event.MessageEvent {
	t.Helper()
	ev, err := decodeEvent(data)
	if err != nil {
		t.Fatalf("decode of re-encoded event: %v", err)
	}
	return ev
}

// BenchmarkPrepareGroupPush measures the per-event work before the RPCs for
// a 200-member group spread over 4 gateways: grouping routes and encoding
// the one shared frame.
func BenchmarkPrepareGroupPush(b *testing.B) {
	var routes []route.Route
	for i := range int64(200) {
		routes = append(routes, route.Route{UserID: i, DeviceID: "d",
			Gateway: fmt.Sprintf("127.0.0.1:%d", 9000+i%4), ConnID: i})
	}
	ev := newEvent("g:1", 1, nil, routes[0])
	b.ReportAllocs()
	for b.Loop() {
		targets := groupTargets(routes, routes[0].Gateway, routes[0].ConnID)
		frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{Message: ev.Message})
		if len(targets) != 4 || len(frame) == 0 {
			b.Fatal("bad preparation")
		}
	}
}
