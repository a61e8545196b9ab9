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

const (
	// pullWait is how long one pull request waits for events. A partition
	// stops only when its request has ended, so pullWait bounds the time to
	// stop or hand over a partition; each idle partition costs one request
	// per pullWait.
	pullWait = time.Second
	// pullGrace is how much longer than pullWait a request may go without
	// an answer before it is given up for lost (a NATS server restart
	// forgets its requests). Its events, if the server still sends them,
	// arrive on the same subscription and are handled like any other. It is
	// also how late the events of a partition come when a server drops a
	// request's expiry status: nats-server 2.9.10 (Debian 12's) did that
	// for a few partitions under 1,100 msgs/s, where 2.15 never did, and
	// with 10 s of grace 1-2% of deliveries came 8-10 s late.
	pullGrace = 2 * time.Second
	// pullStatusRoom is the room a puller's channel keeps, beyond the
	// events the consumer may have out (MaxAckPending), for the status
	// messages that end requests: one per request, and a puller has one
	// request out, or two while one given up for lost may still answer.
	pullStatusRoom = 16
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
	nc      *nats.Conn
	sub     *nats.Subscription
	msgs    chan *nats.Msg
	subject string // the consumer's next-message API subject
	request []byte // the pull request: batch and expiry
	batch   int
	// inbox is the subscription's prefix: request n is answered on
	// inbox.n, so a pull tells its own request's end from an older one's.
	inbox string
	sent  uint64 // requests sent
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
	nc := js.Conn()
	msgs := make(chan *nats.Msg, pending+pullStatusRoom)
	inbox := nc.NewInbox()
	sub, err := nc.ChanSubscribe(inbox+".*", msgs)
	if err != nil {
		return nil, fmt.Errorf("task: subscribe for %s: %w", consumer, err)
	}
	req, err := json.Marshal(pullRequest{Batch: batch, Expires: pullWait})
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	return &puller{nc: nc, sub: sub, msgs: msgs, request: req, batch: batch, inbox: inbox,
		subject: apiPrefix(js) + "CONSUMER.MSG.NEXT." + stream + "." + consumer}, nil
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
// An older request's events, should one still be out (given up for lost,
// or sent as the connection dropped), go to fn as well, and count towards
// this one's batch: JetStream delivers an event on its stream subject, not
// the request's. Its end does not count: a status comes on the request's
// reply subject, and ended by another request's, a pull would leave its own
// out, and the next pull one more, for good.
//
// While the connection is down it sends nothing and returns
// errPullDisconnected. nats.go would keep the request in its reconnect
// buffer, and a partition would buffer one per pullWait + pullGrace of the
// outage, all sent at reconnect: each ends, on its expiry status, a later
// pull whose own request is still out, and the next pull sends one more, so
// that the partition keeps that many requests out for good, their statuses
// coming in bursts that can overflow the subscription's channel.
func (pl *puller) pull(fn func(*nats.Msg)) error {
	if !pl.nc.IsConnected() {
		return errPullDisconnected
	}
	pl.sent++
	reply := pl.inbox + "." + strconv.FormatUint(pl.sent, 10)
	if err := pl.nc.PublishRequest(pl.subject, reply, pl.request); err != nil {
		return fmt.Errorf("pull request: %w", err)
	}
	unanswered := time.NewTimer(pullWait + pullGrace)
	defer unanswered.Stop()
	for got := 0; got < pl.batch; {
		var msg *nats.Msg
		select {
		case msg = <-pl.msgs:
		case <-unanswered.C:
			return errPullUnanswered
		}
		status := msg.Header.Get("Status")
		if len(msg.Data) > 0 || status == "" {
			fn(msg)
			got++
			continue
		}
		if msg.Subject != reply {
			continue // an older request ended
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

// close ends the subscription; call it only once the last request ended.
func (pl *puller) close() { _ = pl.sub.Unsubscribe() }
