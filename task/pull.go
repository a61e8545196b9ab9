package task

import (
	"encoding/json"
	"errors"
	"fmt"
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
)

// errPullUnanswered means a pull request ended neither by its batch nor by a
// status within pullWait + pullGrace.
var errPullUnanswered = errors.New("pull request unanswered")

// puller pulls the events of one partition consumer. It is used by one
// goroutine.
type puller struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	subject string // the consumer's next-message API subject
	request []byte // the pull request: batch and expiry
	batch   int
}

// pullRequest is the body of a JetStream pull request; expires is in
// nanoseconds.
type pullRequest struct {
	Batch   int           `json:"batch"`
	Expires time.Duration `json:"expires"`
}

// newPuller subscribes to a fresh inbox for pulling consumer's events in
// batches of batch.
func newPuller(js jetstream.JetStream, stream, consumer string, batch int) (*puller, error) {
	nc := js.Conn()
	sub, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		return nil, fmt.Errorf("task: subscribe for %s: %w", consumer, err)
	}
	req, err := json.Marshal(pullRequest{Batch: batch, Expires: pullWait})
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	return &puller{nc: nc, sub: sub, request: req, batch: batch,
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
func (pl *puller) pull(fn func(*nats.Msg)) error {
	if err := pl.nc.PublishRequest(pl.subject, pl.sub.Subject, pl.request); err != nil {
		return fmt.Errorf("pull request: %w", err)
	}
	deadline := time.Now().Add(pullWait + pullGrace)
	for got := 0; got < pl.batch; {
		msg, err := pl.sub.NextMsg(time.Until(deadline))
		switch {
		case errors.Is(err, nats.ErrTimeout):
			return errPullUnanswered
		case err != nil:
			return fmt.Errorf("pull: %w", err)
		}
		status := msg.Header.Get("Status")
		if len(msg.Data) > 0 || status == "" {
			fn(msg)
			got++
			continue
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
