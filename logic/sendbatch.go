package logic

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// SendBatch is Send for up to logicrpc.MaxSendBatch requests of one session,
// the SENDs a gateway found queued together on one connection: SendRuns with
// one run. Gateways of this release send SendRuns; SendBatch serves those of
// the release before it during a rolling upgrade.
func (s *Service) SendBatch(ctx context.Context, session *logicrpc.Session,
	reqs []*protocol.SendReq) ([]*logicrpc.SendOutcome, error) {
	out, err := s.SendRuns(ctx, []*logicrpc.SendRun{{Session: session, Reqs: reqs}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// SendRuns is Send for the runs of SENDs of several connections, up to
// logicrpc.MaxSendBatch requests in all, that a gateway gathered while its
// earlier calls were out. Their writes go to the group commit as one group,
// so they usually commit in one transaction, and within a conversation each
// run is stored in the order given. Outcome j of run i is what Send would
// have returned or thrown for runs[i].Reqs[j]; the call itself fails only for
// a run without a session or counts out of range.
func (s *Service) SendRuns(ctx context.Context,
	runs []*logicrpc.SendRun) ([][]*logicrpc.SendOutcome, error) {
	if err := checkRuns(runs); err != nil {
		return nil, s.fail("send runs", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int("runs", len(runs))
		})
	}
	signedOut, err := s.signedOutRuns(ctx, runs)
	if err != nil {
		return nil, s.fail("send runs", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int("runs", len(runs))
		})
	}
	var items []sendItem
	for i, run := range runs {
		if signedOut[i] {
			items = refusedSends(run, errSignedOut(run.Session), items)
			continue
		}
		items = s.prepareSends(ctx, run.Session, run.Reqs, items)
	}
	stored := s.storeSends(ctx, items)
	out := make([][]*logicrpc.SendOutcome, len(runs))
	rest := items
	for i, run := range runs {
		out[i] = make([]*logicrpc.SendOutcome, len(run.Reqs))
		for j := range out[i] {
			out[i][j] = s.sendOutcome(ctx, &rest[j])
		}
		rest = rest[len(run.Reqs):]
	}
	s.log.Debug().Int("runs", len(runs)).Int("sends", len(items)).Int("stored", stored).
		Msg("runs stored")
	return out, nil
}

// checkRuns checks what SendRuns refuses whole: a run without a session, no
// runs, an empty run, or more than logicrpc.MaxSendBatch requests in all.
func checkRuns(runs []*logicrpc.SendRun) error {
	total := 0
	for _, run := range runs {
		if run == nil || run.Session == nil || run.Session.UserId == 0 {
			return ErrUnauthenticated
		}
		if len(run.Reqs) == 0 {
			return fmt.Errorf("%w: a run without sends", ErrBadRequest)
		}
		total += len(run.Reqs)
	}
	if total == 0 || total > logicrpc.MaxSendBatch {
		return fmt.Errorf("%w: %d sends in %d runs, want 1-%d in all", ErrBadRequest, total,
			len(runs), logicrpc.MaxSendBatch)
	}
	return nil
}

// sendItem is one request of a SendRuns on its way through.
type sendItem struct {
	session *logicrpc.Session // whose run it is
	req     *protocol.SendReq
	// valid says that validateSend passed, so that a failure from here on
	// may be a retry of a message stored before (findFirst).
	valid bool
	// m is the message to store, nil when the request failed before the
	// store (invalid, or refused by its conversation).
	m      *messageRow
	stored bool  // m is stored now, by this call
	err    error // why the request is not stored, while !stored
}

// signedOutRuns returns which runs come from a signed-out device's
// connection (signedOutSessions): one read per call at most, none while the
// sessions' devices are cached.
func (s *Service) signedOutRuns(ctx context.Context, runs []*logicrpc.SendRun) ([]bool, error) {
	sessions := make([]*logicrpc.Session, len(runs))
	for i, run := range runs {
		sessions[i] = run.Session
	}
	return s.signedOutSessions(ctx, sessions)
}

// refusedSends returns items with run's requests appended, each failing
// with err before the store.
func refusedSends(run *logicrpc.SendRun, err error, items []sendItem) []sendItem {
	for _, req := range run.Reqs {
		items = append(items, sendItem{session: run.Session, req: req, err: err})
	}
	return items
}

// prepareSends validates each request of session's run as Send does,
// resolves its conversation, and returns items with the run's items
// appended.
func (s *Service) prepareSends(ctx context.Context, session *logicrpc.Session,
	reqs []*protocol.SendReq, items []sendItem) []sendItem {
	for _, req := range reqs {
		items = append(items, sendItem{session: session, req: req})
		it := &items[len(items)-1]
		if it.err = s.validateSend(req); it.err != nil {
			continue
		}
		it.valid = true
		convID, _, err := sendTarget(session.UserId, req)
		if it.err = err; err == nil {
			it.m = s.newMessage(session, req, convID)
		}
	}
	return items
}

// storeSends stores the messages of items as one group and returns how many
// it stored. It reruns the writes storeMessage would rerun (a deadlock, the
// first message of a p2p conversation), as a group again, keeping the order:
// see rerunSends. Every item left unstored has its error, as Send's would be.
func (s *Service) storeSends(ctx context.Context, items []sendItem) int {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var pending []int // indexes into items, ascending
	for i := range items {
		if items[i].m != nil {
			pending = append(pending, i)
		}
	}
	stored := 0
	for attempt := 1; len(pending) > 0; attempt++ {
		ws := make([]seqWrite, len(pending))
		for j, i := range pending {
			ws[j] = s.sendWrite(items[i].session, items[i].m)
		}
		for j, r := range s.storeBatchedGroup(ctx, ws) {
			it := &items[pending[j]]
			if it.stored, it.err = r.err == nil, r.err; it.stored {
				stored++
			}
		}
		pending = s.rerunSends(ctx, items, pending, attempt < maxTxAttempts)
	}
	return stored
}

// rerunSends returns the items of pending to store again, in order: those
// whose write failed in a way storeMessage reruns, when again is true. An item
// of a conversation in which a later item of the batch is stored already is
// not rerun, since it would be stored after that one; it fails UNAVAILABLE
// instead, and the client's retry stores it. Every item not rerun gets the
// error storeMessage would return.
func (s *Service) rerunSends(ctx context.Context, items []sendItem, pending []int,
	again bool) []int {
	lastStored := make(map[string]int) // conversation -> index of its last stored item
	for i := range items {
		if items[i].stored {
			lastStored[items[i].m.ConvID] = i
		}
	}
	created := make(map[string]bool) // p2p conversations this round created
	var rerun []int
	for _, i := range pending {
		it := &items[i]
		if it.stored {
			continue
		}
		retry := false
		if again {
			retry = s.retrySend(ctx, it, created)
		}
		last, overtaken := lastStored[it.m.ConvID]
		switch {
		case retry && overtaken && last > i:
			it.err = fmt.Errorf("%w: conv=%s client=%q not stored before a later message "+
				"of its batch: %v", ErrUnavailable, it.m.ConvID, it.m.ClientMsgID, it.err)
		case retry:
			rerun = append(rerun, i)
		default:
			it.err = storeError(it.m, it.err)
		}
	}
	return rerun
}

// retrySend is retryWrite for an item of a batch, creating each missing
// conversation once per round: the batch's other items of it are then
// rerun without asking again. It sets it.err to what retryWrite returned.
func (s *Service) retrySend(ctx context.Context, it *sendItem, created map[string]bool) bool {
	noConv := errors.Is(it.err, errNoConv)
	if noConv && created[it.m.ConvID] {
		return true
	}
	retry, err := s.retryWrite(ctx, seqWrite{m: it.m}, it.err)
	if noConv && retry {
		created[it.m.ConvID] = true
	}
	it.err = err
	return retry
}

// sendOutcome is what Send would have answered for it: its ack, the first
// ack of its client id when storing failed because it was a retry, or its
// error.
func (s *Service) sendOutcome(ctx context.Context, it *sendItem) *logicrpc.SendOutcome {
	if it.stored {
		return &logicrpc.SendOutcome{Resp: sendResp(it.m, false)}
	}
	err := it.err
	if it.valid {
		var first *messageRow
		if first, err = s.findFirst(ctx, it.session.UserId, it.req.ClientMsgId, err); err == nil {
			return &logicrpc.SendOutcome{Resp: sendResp(first, true)}
		}
	}
	return &logicrpc.SendOutcome{Err: s.failBiz("send", err,
		sendLogIDs(it.session, it.req))}
}
