package chat

import "testing"

func TestP2PPeer(t *testing.T) {
	tests := []struct {
		name   string
		convID string
		me     int64
		want   int64
		wantOK bool
	}{
		{name: "me lower", convID: "p2p:3:40", me: 3, want: 40, wantOK: true},
		{name: "me higher", convID: "p2p:3:40", me: 40, want: 3, wantOK: true},
		{name: "not mine", convID: "p2p:3:40", me: 7},
		{name: "one id", convID: "p2p:3", me: 3},
		{name: "not numbers", convID: "p2p:a:b", me: 3},
		{name: "a group", convID: "g:abc", me: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p2pPeer(tt.convID, tt.me)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("p2pPeer(%q, %d) = %d, %t; want %d, %t",
					tt.convID, tt.me, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
