package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A partition is pulled over a subscription of its own that lives as long
// as the partition's run, one pull request at a time, and a request counts
// as ended only on the server's word: its batch complete, or a status
// message (408 when it expired). jetstream's Fetch is not used for this: it
// ends a request on a client-side timer and unsubscribes, and an event the
// server delivers to that request afterwards (a late expiry, or a reply that
// was already queued when a busy process reached it) is lost to us until its
// ack wait runs out, to come back behind later ones. Keeping the
// subscription until the last request has ended, every event delivered to
// this instance reaches a worker in order, and a partition handed over
// leaves no request behind that could take events from its next owner.
//
// A request the puller gives up on (unanswered; see pullGrace) may still be
// held by the server. Its subscription is kept, so its events still reach a
// worker in delivery order, but the next request goes out on a fresh one:
// JetStream delivers an event on its stream subject, not the request's
// reply subject, so only the subscription tells whose event it is, and a
// pull counts only its own towards its batch.

const (
	// pullWait is how long one pull request waits for events. A partition
	// stops only when its request has ended, so pullWait bounds the time to
	// stop or hand over a partition; each idle partition costs one request
	// per pullWait.
	pullWait = time.Second
	// pullGrace is how much longer than pullWait a request may go without
	// an answer before it is given up for lost (a NATS server restart
	// forgets its requests); answers waiting in the channel, the caller
	// having been held, give it pullGrace more. The events of a request
	// given up on, if the server still sends them, come on its
	// subscription, which is kept, and are handled like any other. It is
	// also how late the events of a partition come when a server drops a
	// request's expiry status: nats-server 2.9.10 (Debian 12's) did that
	// for a few partitions under 1,100 msgs/s, where 2.15 never did, and
	// with 10 s of grace 1-2% of deliveries came 8-10 s late.
	pullGrace = 2 * time.Second
	// pullStatusRoom is the room a puller's channel keeps, beyond the
	// events the consumer may have out (MaxAckPending), for the status
	// messages that end requests: one per request, and a puller has one
	// request out, and up to pullLapsedSubs given up for lost that may
	// still answer.
	pullStatusRoom = 16
	// pullLapsedSubs bounds the subscriptions a puller keeps for requests
	// it gave up on. One is dropped when its request's status comes; one
	// that never comes (a restarted server forgot the request) is dropped
	// when this many later requests were given up too, each at least
	// pullWait + pullGrace after it.
	pullLapsedSubs = 4
)

var (
	// errPullUnanswered means a pull request ended neither by its batch nor
	// by a status within pullWait + pullGrace.
	errPullUnanswered = errors.New("pull request unanswered")
	// errPullDisconnected means no pull request was sent: the connection to
	// NATS is down (see pull).
	errPullDisconnected = errors.New("pull request not sent: nats disconnected")
)

// puller pulls the events of one partition consumer. It is used by one
// goroutine.
//
// Its subscription delivers into a channel of its own, sized by what the
// consumer may deliver, rather than a sync subscription's: nats.go gives
// each of those a channel of 65,536 message pointers (512 KiB), which the
// garbage collector scans at every cycle, whatever is in it. One per
// partition, they were a third of the whole process's live heap in 1:1
// chat at 5,000 msgs/s (16 of 50 MB), and the collector, whose mark phase
// takes about all of a 2-CPU machine, spent its cycles scanning them. What
// comes on the subscription is what this puller's requests asked for, a
// batch each, and the server never has more events out to the consumer
// than MaxAckPending: the channel holds the latter and the statuses, many
// times the former. One more would be dropped by nats.go as a slow
// consumer's and redelivered after its ack wait.
type puller struct {
	nc   *nats.Conn
	msgs chan *nats.Msg
	// sub takes the answers to this puller's requests since the last one
	// it gave up on; lapsed, oldest first, those of the requests given up
	// on. All deliver into msgs.
	sub     *nats.Subscription
	lapsed  []*nats.Subscription
	subject string // the consumer's next-message API subject
	request []byte // the pull request: batch and expiry
	batch   int
	// inbox is sub's prefix: request n is answered on inbox.n, so a pull
	// tells its own request's end from an older one's.
	inbox string
	sent  uint64 // requests sent
	// resubscribe is set when a request was given up on: the next is sent
	// on a fresh subscription.
	resubscribe bool
	// giveUp is how long a request may go without its end before it is
	// given up for lost: pullWait + pullGrace, shorter in tests.
	giveUp time.Duration
}

// pullRequest is the body of a JetStream pull request; expires is in
// nanoseconds.
type pullRequest struct {
	Batch   int           `json:"batch"`
	Expires time.Duration `json:"expires"`
}

// newPuller subscribes to a fresh inbox for pulling consumer's events in
// batches of batch; pending is the consumer's MaxAckPending.
func newPuller(js jetstream.JetStream, stream, consumer string, batch, pending int) (*puller, error) {
	req, err := json.Marshal(pullRequest{Batch: batch, Expires: pullWait})
	if err != nil {
		return nil, err
	}
	pl := &puller{nc: js.Conn(), msgs: make(chan *nats.Msg, pending+pullStatusRoom),
		request: req, batch: batch, giveUp: pullWait + pullGrace,
		subject: apiPrefix(js) + "CONSUMER.MSG.NEXT." + stream + "." + consumer}
	if err := pl.subscribe(); err != nil {
		return nil, fmt.Errorf("task: subscribe for %s: %w", consumer, err)
	}
	return pl, nil
}

// subscribe makes a fresh inbox the one the next requests are answered on.
// The previous subscription, if any, is kept in lapsed: its request was
// given up on, and its events may still come.
func (pl *puller) subscribe() error {
	inbox := pl.nc.NewInbox()
	sub, err := pl.nc.ChanSubscribe(inbox+".*", pl.msgs)
	if err != nil {
		return err
	}
	if pl.sub != nil {
		if len(pl.lapsed) == pullLapsedSubs {
			_ = pl.lapsed[0].Unsubscribe()
			pl.lapsed = append(pl.lapsed[:0], pl.lapsed[1:]...)
		}
		pl.lapsed = append(pl.lapsed, pl.sub)
	}
	pl.sub, pl.inbox, pl.resubscribe = sub, inbox, false
	return nil
}

// apiPrefix returns the JetStream API prefix js sends requests with.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		if o.APIPrefix[len(o.APIPrefix)-1] != '.' {
			return o.APIPrefix + "."
		}
		return o.APIPrefix
	}
	return jetstream.DefaultAPIPrefix
}

// pull sends one request and calls fn with each event it brings, in
// delivery order, until the server ended the request. An error status
// (409: consumer deleted, too many requests...) ends it with an error.
//
// The events of requests given up on, should the server still deliver
// them, go to fn as well, in delivery order, but neither they nor their end
// count towards this request's: counted, they would end the pull with its
// own request still out, its events left in the channel, and one more
// request out for each pull after it. A pull that gives up on its request
// returns errPullUnanswered, and the next is sent on a fresh subscription.
//
// While the connection is down it sends nothing and returns
// errPullDisconnected. nats.go would keep the request in its reconnect
// buffer, and a partition would buffer one per pullWait + pullGrace of the
// outage, all sent at reconnect, their statuses coming in bursts that can
// overflow the subscription's channel.
func (pl *puller) pull(fn func(*nats.Msg)) error {
	if !pl.nc.IsConnected() {
		return errPullDisconnected
	}
	if pl.resubscribe {
		if err := pl.subscribe(); err != nil {
			return fmt.Errorf("pull: subscribe: %w", err)
		}
	}
	pl.sent++
	reply := pl.inbox + "." + strconv.FormatUint(pl.sent, 10)
	if err := pl.nc.PublishRequest(pl.subject, reply, pl.request); err != nil {
		return fmt.Errorf("pull request: %w", err)
	}
	unanswered := time.NewTimer(pl.giveUp)
	defer unanswered.Stop()
	for got := 0; got < pl.batch; {
		var msg *nats.Msg
		select {
		case msg = <-pl.msgs:
		case <-unanswered.C:
			if len(pl.msgs) == 0 {
				pl.resubscribe = true
				return errPullUnanswered
			}
			// Answers wait: the time went on fn (a worker queue full), not
			// on the server. Its status, if it was sent, is near.
			unanswered.Reset(pullGrace)
			continue
		}
		if msg.Sub != pl.sub {
			pl.lapsedMsg(msg, fn)
			continue
		}
		status := pullStatus(msg)
		if status == "" {
			fn(msg)
			got++
			continue
		}
		if msg.Subject != reply {
			continue // an older request on this inbox ended
		}
		switch status {
		case "100": // a heartbeat; none are asked for
		case "404", "408": // no events, or the request expired: it ended
			return nil
		default:
			return fmt.Errorf("pull: status %s %s", status, msg.Header.Get("Description"))
		}
	}
	return nil
}

// lapsedMsg handles msg, which answers a request given up on: an event goes
// to fn; a status that ends the request drops its subscription, which
// nothing else answers on (each subscription's earlier requests ended
// before it was given up on).
func (pl *puller) lapsedMsg(msg *nats.Msg, fn func(*nats.Msg)) {
	status := pullStatus(msg)
	if status == "" {
		fn(msg)
		return
	}
	if status == "100" {
		return
	}
	for i, sub := range pl.lapsed {
		if sub == msg.Sub {
			_ = sub.Unsubscribe()
			pl.lapsed = append(pl.lapsed[:i], pl.lapsed[i+1:]...)
			return
		}
	}
}

// pullStatus returns the status of msg, which came on a pull subscription,
// or "" when msg is an event: one carrying data, or no status.
func pullStatus(msg *nats.Msg) string {
	if len(msg.Data) > 0 {
		return ""
	}
	return msg.Header.Get("Status")
}

// close ends the subscriptions; call it only once the last request ended.
func (pl *puller) close() {
	_ = pl.sub.Unsubscribe()
	for _, sub := range pl.lapsed {
		_ = sub.Unsubscribe()
	}
	pl.lapsed = nil
}
