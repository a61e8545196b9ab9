package task

import (
	"fmt"
	"time"

	"github.com/resonance-im/resonance/internal/mq"
)

// Defaults of Config; a zero field takes its default.
const (
	DefaultWorkers     = 64
	DefaultMaxDeliver  = 10
	DefaultAckWait     = 30 * time.Second
	DefaultPushTimeout = 3 * time.Second
	// DefaultBatchSize is 4,096: with 256 a partition pulled 64 events at a
	// time, one request in flight, and at 20,000 msgs/s over 32 partitions
	// the events pending in the stream grew by about 6,000 a second; pulls
	// of 128 cut that to about 4,000, and with more push calls in flight
	// (maxCallsInFlight) to none.
	DefaultBatchSize = 4096
	// DefaultRegistryRefresh is the default of Config.RegistryRefresh.
	DefaultRegistryRefresh = 2 * time.Second
	// DefaultPresenceWindow is the default of Config.PresenceWindow.
	DefaultPresenceWindow = 2 * time.Second
	// DefaultPresenceRecheck is the default of Config.PresenceRecheck.
	DefaultPresenceRecheck = time.Minute
	// DefaultLeaseTTL is the default of Config.LeaseTTL.
	DefaultLeaseTTL = 10 * time.Second
	// DefaultReorderWindow is the default of Config.ReorderWindow.
	DefaultReorderWindow = 200 * time.Millisecond
)

// minLeaseTTL bounds Config.LeaseTTL from below: leases are renewed every
// third of it, each renewal a write to the lease bucket.
const minLeaseTTL = 500 * time.Millisecond

// Config tunes a Task. Every instance sharing the durable consumers and the
// lease bucket must use the same values: each one updates them at start, so
// differing values would make the last one started win.
type Config struct {
	// Workers is the number of workers of one instance, shared by the
	// partitions it owns: events of a conversation always land on the same
	// worker and are pushed one after the other. Default 64.
	Workers int
	// MaxDeliver is how many times JetStream delivers an event before task
	// gives up and dead-letters it. Default 10.
	MaxDeliver int
	// AckWait is how long JetStream waits for an ack before redelivering the
	// first delivery; later deliveries wait longer (see backoffSchedule).
	// It must exceed PushTimeout. Default 30s.
	AckWait time.Duration
	// PushTimeout bounds one push to one gateway: its call (Push or
	// PushBatch), connecting included, and for a push that waits behind the
	// calls in flight to that gateway, the wait and the call together.
	// Default 3s.
	PushTimeout time.Duration
	// BatchSize is about how many events the client buffers ahead of the
	// workers when the instance owns every partition: one pull of a
	// partition asks for BatchSize/mq.Partitions events, at least
	// minPartitionBatch. It also sizes the worker queues (maxRun at least)
	// and each partition consumer's MaxAckPending. Default 4,096.
	BatchSize int
	// LeaseTTL is how long a partition lease lasts without renewal: an
	// instance that dies without releasing its partitions holds them this
	// long, and its unacked events come back after AckWait. Leases are
	// renewed every LeaseTTL/3. It is the TTL of the lease bucket, so every
	// instance must use the same. Default 10s, at least 500ms.
	LeaseTTL time.Duration
	// SoleInstance says that no other task instance can reach this NATS
	// server, as with the embedded server of the single-process mode: Run
	// then drops the leases a crashed run left instead of waiting out their
	// TTL. Never set it on a shared NATS: two instances would both push a
	// partition.
	SoleInstance bool
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
	// ReorderWindow is how long an event that comes ahead of its
	// conversation's seq (logic instances publish independently, so seq 6
	// may reach the stream before 5) is held for the missing ones before it
	// is pushed anyway (see reorder.go). At most AckWait/4. Default 200ms,
	// or AckWait/4 if less; negative: off, events are pushed in stream
	// order.
	ReorderWindow time.Duration
	// Notify configures offline push notifications; off by default.
	Notify NotifyConfig

	// pushCallsInFlight, when set, replaces maxCallsInFlight: tests hold
	// a few calls to watch what queues behind them.
	pushCallsInFlight int
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
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.ReorderWindow == 0 {
		// Short ack waits (tests) get a shorter window: see validate.
		c.ReorderWindow = min(DefaultReorderWindow, c.AckWait/4)
	}
	c.Notify.applyDefaults()
}

// Validate reports a setting New would refuse, after zero fields take their
// defaults. It opens nothing, so a caller can check before starting
// anything else.
func (c Config) Validate() error {
	c.applyDefaults()
	return c.validate()
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
	case c.ReorderWindow > c.AckWait/4:
		// A held event is unacked: it must be pushed long before JetStream
		// gives up waiting for its ack and delivers it again.
		return fmt.Errorf("%w: ReorderWindow %v > AckWait/4 (%v)",
			ErrBadConfig, c.ReorderWindow, c.AckWait/4)
	case c.LeaseTTL < minLeaseTTL:
		return fmt.Errorf("%w: LeaseTTL %v < %v", ErrBadConfig, c.LeaseTTL, minLeaseTTL)
	}
	return c.Notify.validate()
}

// queueLen is the capacity of each worker's queue: the batch spread over the
// workers, and at least a full run (maxRun). A busy conversation has one
// worker, whose next push carries what queued behind the last: a queue of
// 4 (256 over 64 workers) held a 200-member group at about 4 events a push
// and 1,500 messages a second, its deliveries seconds behind.
func (c *Config) queueLen() int {
	return max(maxRun, c.BatchSize/c.Workers)
}

// minPartitionBatch is the smallest pull of a partition: a busy conversation
// waits one round trip to NATS per pull.
const minPartitionBatch = maxRun

// partitionBatch is how many events one pull of a partition asks for: the
// batch spread over the partitions, so that an instance owning all of them
// buffers about BatchSize events.
func (c *Config) partitionBatch() int {
	return max(minPartitionBatch, (c.BatchSize+mq.Partitions-1)/mq.Partitions)
}

// maxAckPending bounds the events of one partition delivered but not yet
// acked: one pull buffered in the client, and the worker queues with one
// event in hand per worker, which one partition's conversations may fill
// alone. JetStream stops delivering at this bound (see consumePartition).
func (c *Config) maxAckPending() int {
	return c.partitionBatch() + c.Workers*(c.queueLen()+1)
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
