package client

import (
	"slices"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
)

func TestSequencer_Offer(t *testing.T) {
	tests := []struct {
		name     string
		origin   int64
		seqs     []int64
		want     []int64 // seqs made ready, in order
		wantGap  bool    // after the last offer
		wantNext int64
	}{
		{name: "in order", seqs: []int64{1, 2, 3}, want: []int64{1, 2, 3}, wantNext: 3},
		{name: "duplicates dropped", seqs: []int64{1, 1, 2, 1, 2},
			want: []int64{1, 2}, wantNext: 2},
		{name: "gap held then filled", seqs: []int64{1, 4, 3, 4, 2},
			want: []int64{1, 2, 3, 4}, wantNext: 4},
		{name: "gap stays open", seqs: []int64{2, 3}, wantGap: true},
		{name: "starts at origin", origin: 5, seqs: []int64{4, 5, 6},
			want: []int64{6}, wantNext: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newSequencer(func(string, int64) int64 { return tt.origin })
			var got []int64
			var gap bool
			for _, seq := range tt.seqs {
				var ready []*common.Message
				ready, gap = q.offer(&common.Message{ConvId: "c", Seq: seq})
				for _, m := range ready {
					got = append(got, m.Seq)
				}
			}
			if !slices.Equal(got, tt.want) || gap != tt.wantGap {
				t.Fatalf("ready %v gap %v, want %v gap %v", got, gap, tt.want, tt.wantGap)
			}
			if next := q.position("c"); next != tt.wantNext && !tt.wantGap {
				t.Fatalf("position %d, want %d", next, tt.wantNext)
			}
			if tt.wantGap && !slices.Equal(q.gaps(), []string{"c"}) {
				t.Fatalf("gaps %v", q.gaps())
			}
		})
	}
}

func TestSequencer_TrackOnlyUnknown(t *testing.T) {
	q := newSequencer(func(string, int64) int64 { return 0 })
	if !q.track("c", 7) || q.position("c") != 7 {
		t.Fatalf("track of a new conversation did not set 7: %d", q.position("c"))
	}
	if q.track("c", 3) || q.position("c") != 7 {
		t.Fatalf("track moved a known conversation to %d", q.position("c"))
	}
}
