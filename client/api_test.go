package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func seqsOf(resp *protocol.SyncResp) []int64 {
	var seqs []int64
	for _, m := range resp.Messages {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

func TestClient_SyncBefore(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, aliceID := loginNew(t, s, "alice", client.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	sendN(t, alice, bobID, 5, "m")
	conv := client.P2PConvID(aliceID, bobID)
	ctx := context.Background()

	tests := []struct {
		name     string
		before   int64
		limit    int32
		want     []int64
		wantMore bool
	}{
		{name: "latest page", before: client.LatestSeq, limit: 2, want: []int64{4, 5},
			wantMore: true},
		{name: "older page", before: 4, limit: 10, want: []int64{1, 2, 3}},
		{name: "nothing older", before: 1, limit: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := alice.SyncBefore(ctx, conv, tt.before, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			got := seqsOf(resp)
			if len(got) != len(tt.want) || resp.HasMore != tt.wantMore || resp.LastSeq != 5 {
				t.Fatalf("seqs %v more %v last %d, want %v more %v last 5",
					got, resp.HasMore, resp.LastSeq, tt.want, tt.wantMore)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("seqs %v, want %v", got, tt.want)
				}
			}
		})
	}
	if _, err := alice.SyncBefore(ctx, conv, 0, 1); !errors.Is(err, client.ErrBadParams) {
		t.Fatalf("SyncBefore(0) = %v, want ErrBadParams", err)
	}
}

func TestClient_SyncConvsMarkReadDelivered(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, aliceID := loginNew(t, s, "alice", client.Options{})
	bob, bobID := loginNew(t, s, "bob", client.Options{})
	sendN(t, alice, bobID, 5, "m")
	conv := client.P2PConvID(aliceID, bobID)
	ctx := context.Background()

	all, err := bob.SyncConvs(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Convs) != 1 || all.HasMore || all.Cursor == "" {
		t.Fatalf("SyncConvs = %+v", all)
	}
	sum := all.Convs[0]
	if sum.ConvId != conv || sum.LastSeq != 5 || sum.Unread != 5 || sum.PeerUserId != aliceID ||
		sum.LastMessage == nil || sum.LastMessage.Seq != 5 {
		t.Fatalf("summary %+v", sum)
	}
	if again, err := bob.SyncConvs(ctx, all.Cursor, 0); err != nil || len(again.Convs) != 0 {
		t.Fatalf("nothing changed, yet SyncConvs = %+v, %v", again, err)
	}

	if read, err := bob.MarkRead(ctx, conv, 3); err != nil || read != 3 {
		t.Fatalf("MarkRead = %d, %v", read, err)
	}
	if read, err := bob.MarkRead(ctx, conv, 1); err != nil || read != 3 {
		t.Fatalf("MarkRead backwards = %d, %v; want it to stay at 3", read, err)
	}
	changed, err := bob.SyncConvs(ctx, all.Cursor, 0)
	if err != nil || len(changed.Convs) != 1 || changed.Convs[0].ReadSeq != 3 ||
		changed.Convs[0].Unread != 2 {
		t.Fatalf("after MarkRead, SyncConvs = %+v, %v", changed, err)
	}

	err = bob.Delivered(ctx, []*protocol.ConvPos{{ConvId: conv, Seq: 4}})
	if err != nil || s.DeliveredSeq("bob", "dev-bob", conv) != 4 {
		t.Fatalf("Delivered = %v, server holds %d", err, s.DeliveredSeq("bob", "dev-bob", conv))
	}
}
