package task

import (
	"fmt"
	"slices"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
)

// runJob is a job of conversation conv at seq, to recipients.
func runJob(conv string, seq int64, recipients ...int64) job {
	return job{ev: &event.MessageEvent{Message: &common.Message{ConvId: conv, Seq: seq},
		Recipients: recipients}}
}

// names lists jobs as conv:seq, poison as "x".
func names(jobs []job) []string {
	var out []string
	for _, j := range jobs {
		if j.ev == nil {
			out = append(out, "x")
			continue
		}
		out = append(out, fmt.Sprintf("%s:%d", j.convID(), j.ev.Message.Seq))
	}
	return out
}

func TestSplitRun(t *testing.T) {
	tests := []struct {
		name      string
		pending   []job
		run, rest []string
	}{
		{name: "other conversations in between do not split a run",
			pending: []job{runJob("a", 1, 1, 2), runJob("b", 1, 3), runJob("a", 2, 1, 2),
				runJob("b", 2, 3), runJob("a", 3, 1, 2)},
			run: []string{"a:1", "a:2", "a:3"}, rest: []string{"b:1", "b:2"}},
		{name: "new recipients end the run and hold the conversation's later events",
			pending: []job{runJob("a", 1, 1, 2), runJob("a", 2, 1, 2, 3), runJob("b", 1, 3),
				runJob("a", 3, 1, 2)},
			run: []string{"a:1"}, rest: []string{"a:2", "b:1", "a:3"}},
		{name: "poison first goes alone",
			pending: []job{{}, runJob("a", 1, 1), runJob("a", 2, 1)},
			run:     []string{"x"}, rest: []string{"a:1", "a:2"}},
		{name: "poison in between stays in order",
			pending: []job{runJob("a", 1, 1), {}, runJob("a", 2, 1)},
			run:     []string{"a:1", "a:2"}, rest: []string{"x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run, rest := splitRun(tc.pending, nil, nil)
			if !slices.Equal(names(run), tc.run) || !slices.Equal(names(rest), tc.rest) {
				t.Errorf("run %v rest %v; want %v and %v", names(run), names(rest), tc.run, tc.rest)
			}
		})
	}
}

func TestSplitRun_AtMostMaxRun(t *testing.T) {
	var pending []job
	for seq := range int64(maxRun + 3) {
		pending = append(pending, runJob("a", seq+1, 1))
	}
	run, rest := splitRun(pending, nil, nil)
	if len(run) != maxRun || len(rest) != 3 || rest[0].ev.Message.Seq != maxRun+1 {
		t.Fatalf("run of %d, rest %v; want %d and seqs %d..", len(run), names(rest),
			maxRun, maxRun+1)
	}
}
