package logic

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestSync_PagesFitOneFrame fills a conversation with maximum-size messages:
// every page, forward and backward, must fit in one client frame, and paging
// must still visit every seq once.
func TestSync_PagesFitOneFrame(t *testing.T) {
	forEachStore(t, testPagesFitOneFrame)
}

func testPagesFitOneFrame(t *testing.T, e *env) {
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	big := strings.Repeat("x", DefaultMaxContent)
	const n = 12 // 12 x 16 KiB cannot fit in one 64 KiB frame
	for i := range n {
		req := textReq(fmt.Sprintf("big-%d", i), bob)
		req.Content = []byte(big)
		if _, err := e.svc.Send(context.Background(), session(alice, 1), req); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	conv := p2pConvID(alice, bob)
	page := func(req *protocol.SyncReq) *protocol.SyncResp {
		t.Helper()
		req.ConvId, req.Limit = conv, 200
		resp, err := e.svc.Sync(context.Background(), session(bob, 2), req)
		if err != nil {
			t.Fatal(err)
		}
		if size := codec.FrameLen(resp) - codec.HeaderSize; size > codec.DefaultMaxBody {
			t.Fatalf("page of %d messages is %d bytes, over the %d frame limit",
				len(resp.Messages), size, codec.DefaultMaxBody)
		}
		return resp
	}

	var forward []int64
	for after, more := int64(0), true; more; {
		resp := page(&protocol.SyncReq{AfterSeq: after})
		forward = appendSeqs(forward, resp.Messages)
		after, more = forward[len(forward)-1], resp.HasMore
	}
	var backward []int64
	for before, more := int64(math.MaxInt64), true; more; {
		resp := page(&protocol.SyncReq{BeforeSeq: before})
		backward = append(appendSeqs(nil, resp.Messages), backward...)
		before, more = backward[0], resp.HasMore
	}
	for name, seqs := range map[string][]int64{"forward": forward, "backward": backward} {
		if len(seqs) != n {
			t.Fatalf("%s paging saw %d messages, want %d: %v", name, len(seqs), n, seqs)
		}
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Fatalf("%s paging seqs %v, want 1..%d", name, seqs, n)
			}
		}
	}
}

func appendSeqs(dst []int64, msgs []*common.Message) []int64 {
	for _, m := range msgs {
		dst = append(dst, m.Seq)
	}
	return dst
}
