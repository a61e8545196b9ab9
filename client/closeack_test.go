package client_test

import (
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
)

// A message handed to the application before Close is acknowledged to the
// server by Close's final DELIVERED, even when Close comes while the
// session is fetching a gap: a device without local positions starts its
// next run from the server's delivered position, and one that never
// reached the server makes a StartAtLatest device skip what came since.
func TestSession_CloseDuringFillStillAcksHandedOver(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.AckInterval = time.Hour // only Close's final acknowledgement sends positions
	})
	got := make(chan int64, 8)
	go func() {
		for m := range sess.Messages() {
			got <- m.Seq
		}
	}()
	sendN(t, bob, aliceID, 1, "first")
	select {
	case seq := <-got:
		if seq != 1 {
			t.Fatalf("first message handed over as seq %d", seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first message not handed over")
	}

	// The push of 2 is lost and 3 reveals the gap: the session fetches it
	// with a SYNC the server answers late, and Close comes meanwhile.
	s.SlowSync(700 * time.Millisecond)
	s.DropPushes(1)
	sendN(t, bob, aliceID, 2, "gap")
	time.Sleep(300 * time.Millisecond) // the fill's SYNC is out
	_ = sess.Close()

	if seq := s.DeliveredSeq("alice", "phone", conv); seq != 1 {
		t.Fatalf("server's delivered position after Close = %d, want 1 (handed over before Close)", seq)
	}
}
