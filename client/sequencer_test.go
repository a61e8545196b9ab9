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
			q := newSequencer(func(string, *common.Message) (int64, bool) { return tt.origin, true })
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
	q := newSequencer(func(string, *common.Message) (int64, bool) { return 0, true })
	if !q.track("c", 7) || q.position("c") != 7 {
		t.Fatalf("track of a new conversation did not set 7: %d", q.position("c"))
	}
	if q.track("c", 3) || q.position("c") != 7 {
		t.Fatalf("track moved a known conversation to %d", q.position("c"))
	}
}

func TestSequencer_UnplacedHoldsUntilPlaced(t *testing.T) {
	q := newSequencer(func(string, *common.Message) (int64, bool) { return 0, false })
	for _, seq := range []int64{5, 3, 4} {
		if ready, gap := q.offer(&common.Message{ConvId: "c", Seq: seq}); ready != nil || !gap {
			t.Fatalf("offer %d to an unplaced conversation: ready %v gap %v", seq, ready, gap)
		}
	}
	if !q.unplaced("c") || !slices.Equal(q.gaps(), []string{"c"}) {
		t.Fatalf("unplaced %v gaps %v", q.unplaced("c"), q.gaps())
	}
	var got []int64
	for _, m := range q.place("c", 3) {
		got = append(got, m.Seq)
	}
	if !slices.Equal(got, []int64{4, 5}) || q.position("c") != 5 || q.unplaced("c") {
		t.Fatalf("place at 3: ready %v position %d", got, q.position("c"))
	}
	if ready := q.place("c", 0); ready != nil || q.position("c") != 5 {
		t.Fatalf("a second place moved the conversation: %v, position %d", ready, q.position("c"))
	}

	// hold marks only a conversation not seen yet; place tracks one that
	// was never offered.
	if q.hold("c") || !q.hold("d") || !q.unplaced("d") {
		t.Fatal("hold")
	}
	if ready := q.place("e", 7); ready != nil || q.position("e") != 7 {
		t.Fatalf("place of an unknown conversation: position %d", q.position("e"))
	}
}

func TestSequencer_SkipPassesUnreadableSeqs(t *testing.T) {
	q := newSequencer(func(string, *common.Message) (int64, bool) { return 0, true })
	for _, seq := range []int64{6, 5} {
		if ready, _ := q.offer(&common.Message{ConvId: "c", Seq: seq}); ready != nil {
			t.Fatalf("offer %d behind a gap made %v ready", seq, ready)
		}
	}
	var got []int64
	for _, m := range q.skip("c", 4) {
		got = append(got, m.Seq)
	}
	if !slices.Equal(got, []int64{5, 6}) || q.position("c") != 6 || len(q.gaps()) != 0 {
		t.Fatalf("skip to 4: ready %v position %d gaps %v", got, q.position("c"), q.gaps())
	}
	if ready := q.skip("c", 3); ready != nil || q.position("c") != 6 {
		t.Fatalf("a skip below the position moved it to %d", q.position("c"))
	}
	if q.skip("d", 9); q.position("d") != 9 {
		t.Fatalf("skip of an unknown conversation: position %d", q.position("d"))
	}
}

func TestSequencer_AdvanceMovesOnlyForward(t *testing.T) {
	q := newSequencer(func(string, *common.Message) (int64, bool) { return 0, true })
	q.offer(&common.Message{ConvId: "c", Seq: 5}) // held behind 1..4
	var got []int64
	for _, m := range q.advance("c", 4) {
		got = append(got, m.Seq)
	}
	if !slices.Equal(got, []int64{5}) || q.position("c") != 5 {
		t.Fatalf("advance to 4: ready %v position %d", got, q.position("c"))
	}
	if ready := q.advance("c", 2); ready != nil || q.position("c") != 5 {
		t.Fatalf("advance below the position moved it to %d", q.position("c"))
	}

	q.hold("u")
	q.offer(&common.Message{ConvId: "u", Seq: 9})
	if ready := q.advance("u", 8); len(ready) != 1 || q.unplaced("u") || q.position("u") != 9 {
		t.Fatalf("advance of an unplaced conversation: ready %v position %d",
			ready, q.position("u"))
	}
	if q.advance("n", 3); q.position("n") != 3 {
		t.Fatalf("advance of an unknown conversation: position %d", q.position("n"))
	}
}

// A clear of a conversation whose start is not placed yet (Session.ClearConv
// before its first listing) must still keep the cleared seqs from being
// handed over once it is placed, wherever the start lands.
func TestSequencer_SkipOfUnplacedHoldsAtPlace(t *testing.T) {
	q := newSequencer(func(string, *common.Message) (int64, bool) { return 0, true })
	q.hold("u")
	for _, seq := range []int64{3, 5, 6} {
		q.offer(&common.Message{ConvId: "u", Seq: seq})
	}
	if ready := q.skip("u", 5); ready != nil || !q.unplaced("u") {
		t.Fatalf("skip of an unplaced conversation: ready %v unplaced %t",
			ready, q.unplaced("u"))
	}
	var got []int64
	for _, m := range q.place("u", 2) {
		got = append(got, m.Seq)
	}
	if !slices.Equal(got, []int64{6}) || q.position("u") != 6 {
		t.Fatalf("place at 2 after a skip to 5: ready %v position %d", got, q.position("u"))
	}
}
