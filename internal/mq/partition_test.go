package mq

import (
	"strings"
	"testing"
)

// The partition of a conversation is part of the wire contract between
// logic and task builds: it must never change silently.
func TestPartition_IsStable(t *testing.T) {
	cases := []struct {
		conv string
		want int
	}{
		{conv: "", want: 5},         // FNV-1a offset basis 2166136261 % 32
		{conv: "p2p:1:2", want: 24}, // pinned: a change here remaps every conversation
		{conv: "g:42", want: 22},
	}
	for _, tc := range cases {
		if got := Partition(tc.conv); got != tc.want {
			t.Errorf("Partition(%q) = %d, want %d", tc.conv, got, tc.want)
		}
	}
}

func TestNames_PartitionSubjectsInsideStream(t *testing.T) {
	n := NewNames("t.run1")
	seen := map[string]bool{}
	for p := range Partitions {
		subj, cons := n.PartitionSubject(p), n.PartitionConsumer(p)
		if !strings.HasPrefix(subj, n.Subject+".msg.") || strings.ContainsAny(cons, ".*> ") {
			t.Errorf("partition %d: subject %q, consumer %q", p, subj, cons)
		}
		if seen[subj] || seen[cons] {
			t.Errorf("partition %d: %q or %q used twice", p, subj, cons)
		}
		seen[subj], seen[cons] = true, true
	}
	if got := n.MessageSubject("g:42"); got != n.PartitionSubject(Partition("g:42")) {
		t.Errorf("MessageSubject(g:42) = %q", got)
	}
	if n.PartitionConsumer(0) == n.KickConsumer() || n.LeaseBucket() == n.Stream {
		t.Error("partition names collide with other names")
	}
}
