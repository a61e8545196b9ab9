package task

import (
	"fmt"
	"time"
)

// Defaults of Config; a zero field takes its default.
const (
	DefaultWorkers     = 64
	DefaultMaxDeliver  = 10
	DefaultAckWait     = 30 * time.Second
	DefaultPushTimeout = 3 * time.Second
	DefaultBatchSize   = 256
	// DefaultRegistryRefresh is the default of Config.RegistryRefresh.
	DefaultRegistryRefresh = 2 * time.Second
	// DefaultPresenceWindow is the default of Config.PresenceWindow.
	DefaultPresenceWindow = 2 * time.Second
	// DefaultPresenceRecheck is the default of Config.PresenceRecheck.
	DefaultPresenceRecheck = time.Minute
)

// Config tunes a Task. Every instance sharing one durable consumer must use
// the same values: each one updates the consumer at start, so differing
// values would make the last one started win.
type Config struct {
	// Workers is the number of ordered partitions: events of a conversation
	// always land on the same worker and are pushed one after the other.
	// Default 64.
	Workers int
	// MaxDeliver is how many times JetStream delivers an event before task
	// gives up and dead-letters it. Default 10.
	MaxDeliver int
	// AckWait is how long JetStream waits for an ack before redelivering the
	// first delivery; later deliveries wait longer (see backoffSchedule).
	// It must exceed PushTimeout. Default 30s.
	AckWait time.Duration
	// PushTimeout bounds one Push call to one gateway, connecting included.
	// Default 3s.
	PushTimeout time.Duration
	// BatchSize is how many events the client buffers ahead of the workers;
	// it also sizes the consumer's MaxAckPending. Default 256.
	BatchSize int
	// RegistryRefresh is how often the gateway registry (Deps.Registry) is
	// read to drop the clients of vanished gateways; a gateway seen vanished
	// is read again before each push it would be skipped from. Default 2s.
	RegistryRefresh time.Duration
	// InternalSecret, when set, is sent with every call to a gateway's Push
	// service (see internal/rpcauth); gateways must require the same.
	// Empty: none.
	InternalSecret string
	// PresenceWindow is how long presence events of a user are coalesced
	// before its presence is read and, if changed, announced to its
	// watchers. Default 2s.
	PresenceWindow time.Duration
	// PresenceRecheck is how often users announced online are checked
	// again, so that those whose routes lapsed with a dead gateway (which
	// sends no event) are announced offline. Default 1m; negative: never.
	PresenceRecheck time.Duration
	// Notify configures offline push notifications; off by default.
	Notify NotifyConfig
}

// applyDefaults fills every zero field with its default.
func (c *Config) applyDefaults() {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.PushTimeout == 0 {
		c.PushTimeout = DefaultPushTimeout
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.RegistryRefresh == 0 {
		c.RegistryRefresh = DefaultRegistryRefresh
	}
	if c.PresenceWindow == 0 {
		c.PresenceWindow = DefaultPresenceWindow
	}
	if c.PresenceRecheck == 0 {
		c.PresenceRecheck = DefaultPresenceRecheck
	}
	c.Notify.applyDefaults()
}

// validate checks a Config after applyDefaults.
func (c *Config) validate() error {
	switch {
	case c.Workers < 1:
		return fmt.Errorf("%w: Workers %d < 1", ErrBadConfig, c.Workers)
	case c.MaxDeliver < 1:
		// Unlimited delivery (-1 in JetStream) is refused: a poison event
		// would loop for ever instead of reaching the dead-letter subject.
		return fmt.Errorf("%w: MaxDeliver %d < 1", ErrBadConfig, c.MaxDeliver)
	case c.PushTimeout < 0:
		return fmt.Errorf("%w: PushTimeout %v < 0", ErrBadConfig, c.PushTimeout)
	case c.AckWait <= c.PushTimeout:
		// An ack wait shorter than one push would redeliver events that are
		// still being pushed, doubling them on the clients.
		return fmt.Errorf("%w: AckWait %v <= PushTimeout %v",
			ErrBadConfig, c.AckWait, c.PushTimeout)
	case c.BatchSize < 1:
		return fmt.Errorf("%w: BatchSize %d < 1", ErrBadConfig, c.BatchSize)
	case c.RegistryRefresh < 0:
		return fmt.Errorf("%w: RegistryRefresh %v < 0", ErrBadConfig, c.RegistryRefresh)
	case c.PresenceWindow < 0:
		return fmt.Errorf("%w: PresenceWindow %v < 0", ErrBadConfig, c.PresenceWindow)
	}
	return c.Notify.validate()
}

// queueLen is the capacity of each worker's queue: the batch spread over the
// workers, at least one, so that the queues together hold about one batch.
func (c *Config) queueLen() int {
	return max(1, c.BatchSize/c.Workers)
}

// maxAckPending bounds the events delivered but not yet acked: one batch
// buffered in the client, the worker queues, and one event in hand per
// worker. JetStream stops delivering at this bound, which is what keeps
// memory bounded when gateways are slow (see dispatch).
func (c *Config) maxAckPending() int {
	return c.BatchSize + c.Workers*(c.queueLen()+1)
}

// Redelivery schedule: each delivery waits longer for its ack than the one
// before, doubling from AckWait up to maxBackoffSteps doublings.
const maxBackoffSteps = 4

// backoffSchedule returns the consumer's BackOff: entry i is how long
// JetStream waits for the ack of delivery i+1 before redelivering; later
// deliveries wait as long as the last entry. JetStream replaces AckWait by
// the first entry, so the schedule starts at AckWait. It has fewer entries
// than MaxDeliver: NATS servers before 2.10 refuse a consumer otherwise
// (newer ones accept as many), and with MaxDeliver 1 it is empty.
func (c *Config) backoffSchedule() []time.Duration {
	n := min(c.MaxDeliver-1, maxBackoffSteps+1)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = c.AckWait << i
	}
	return out
}

// Nak delays for transient failures (route lookup): doubling from
// nakBaseDelay, capped at AckWait so a retry never waits longer than a lost
// ack would.
const nakBaseDelay = 250 * time.Millisecond

// nakDelay returns the delay before redelivering an event that failed on
// its delivered-th delivery.
func (c *Config) nakDelay(delivered uint64) time.Duration {
	d := nakBaseDelay
	for i := uint64(1); i < delivered && d < c.AckWait; i++ {
		d *= 2
	}
	return min(d, c.AckWait)
}
