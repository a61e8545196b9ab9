package chat

import "testing"

func TestCursor_Mark(t *testing.T) {
	tests := []struct {
		name     string
		seqs     []int64
		wantNew  []bool
		wantUpTo int64
	}{
		{name: "in order", seqs: []int64{1, 2, 3}, wantNew: []bool{true, true, true}, wantUpTo: 3},
		{name: "repeat", seqs: []int64{1, 1, 2, 1}, wantNew: []bool{true, false, true, false},
			wantUpTo: 2},
		{name: "gap then fill", seqs: []int64{1, 3, 3, 2}, wantNew: []bool{true, true, false, true},
			wantUpTo: 3},
		{name: "gap stays open", seqs: []int64{2, 3}, wantNew: []bool{true, true}, wantUpTo: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCursor("c")
			for i, seq := range tt.seqs {
				if got := c.mark(seq); got != tt.wantNew[i] {
					t.Fatalf("mark(%d) #%d = %v, want %v", seq, i, got, tt.wantNew[i])
				}
			}
			if c.upTo != tt.wantUpTo {
				t.Fatalf("upTo = %d, want %d", c.upTo, tt.wantUpTo)
			}
			if tt.wantUpTo == 3 && len(c.ahead) != 0 {
				t.Fatalf("ahead not emptied: %v", c.ahead)
			}
		})
	}
}
