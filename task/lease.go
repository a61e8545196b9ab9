package task

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
)

// leaseStore keeps this instance's membership and partition leases in the
// JetStream key-value bucket mq.Names.LeaseBucket, shared by every task
// instance. The bucket's TTL is the lease TTL and it keeps one revision per
// key, so a key that is not written again within the TTL vanishes: that is
// how the leases of a crashed instance lapse. Keys:
//
//	m.<instance>   the instance is alive (value: its id)
//	p.<partition>  the partition's owner (value: the owner's id)
//
// Every write of a partition key is a compare-and-set on its revision
// (Create, Update, Delete with LastRevision), so two instances never both
// hold a partition while its key lives.
type leaseStore struct {
	kv jetstream.KeyValue
	id string // this instance; random per Task
}

// errLeaseLost means the partition key no longer holds this instance's
// lease: it lapsed, and maybe another instance took it.
var errLeaseLost = errors.New("task: partition lease lost")

// openLeases creates or updates the lease bucket with the given TTL. With
// fresh set (Config.SoleInstance) it first deletes the bucket, and with it
// every lease of an earlier run.
func openLeases(ctx context.Context, js jetstream.JetStream, n mq.Names,
	ttl time.Duration, fresh bool) (*leaseStore, error) {
	if fresh {
		err := js.DeleteKeyValue(ctx, n.LeaseBucket())
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("task: drop lease bucket %s: %w", n.LeaseBucket(), err)
		}
	}
	kv, err := mq.RetryStore(ctx, func() (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      n.LeaseBucket(),
			Description: "task instances and their partition leases",
			TTL:         ttl,
			History:     1,
			Storage:     jetstream.FileStorage,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("task: lease bucket %s: %w", n.LeaseBucket(), err)
	}
	id, err := newInstanceID()
	if err != nil {
		return nil, err
	}
	return &leaseStore{kv: kv, id: id}, nil
}

// newInstanceID returns 8 random bytes in hex: unique per Task, so that a
// restarted instance never mistakes an old lease for its own.
func newInstanceID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("task: instance id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

const (
	memberPrefix    = "m."
	partitionPrefix = "p."
)

func partitionKey(p int) string { return partitionPrefix + strconv.Itoa(p) }

// join writes this instance's member key, or renews it.
func (l *leaseStore) join(ctx context.Context) error {
	if _, err := l.kv.Put(ctx, memberPrefix+l.id, []byte(l.id)); err != nil {
		return fmt.Errorf("task: member key %s: %w", l.id, err)
	}
	return nil
}

// leave deletes this instance's member key, so that the others count their
// shares without it at once instead of after the TTL.
func (l *leaseStore) leave(ctx context.Context) error {
	if err := l.kv.Delete(ctx, memberPrefix+l.id); err != nil {
		return fmt.Errorf("task: delete member key %s: %w", l.id, err)
	}
	return nil
}

// acquire takes partition p if no instance holds it and returns the
// lease's revision; ok is false when another instance holds it.
func (l *leaseStore) acquire(ctx context.Context, p int) (rev uint64, ok bool, err error) {
	rev, err = l.kv.Create(ctx, partitionKey(p), []byte(l.id))
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("task: acquire partition %d: %w", p, err)
	}
	return rev, true, nil
}

// renew extends the lease of p held at revision rev and returns the new
// revision. It returns errLeaseLost when the key is gone or names another
// instance; any other error leaves the question open (NATS unreachable).
func (l *leaseStore) renew(ctx context.Context, p int, rev uint64) (uint64, error) {
	key := partitionKey(p)
	next, err := l.kv.Update(ctx, key, []byte(l.id), rev)
	if err == nil {
		return next, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("task: renew partition %d: %w", p, err)
	}
	// The revision moved. Either an earlier renewal was written but its
	// reply lost, and the key still names us at a later revision, or the
	// lease lapsed. Only our own writes put our id in the key.
	e, err := l.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, errLeaseLost
	case err != nil:
		return 0, fmt.Errorf("task: read partition %d lease: %w", p, err)
	case string(e.Value()) != l.id:
		return 0, fmt.Errorf("%w: partition %d now held by %s", errLeaseLost, p, e.Value())
	}
	return e.Revision(), nil
}

// release deletes the lease of p if it is still at revision rev; another
// instance may then take p.
func (l *leaseStore) release(ctx context.Context, p int, rev uint64) error {
	if err := l.kv.Delete(ctx, partitionKey(p), jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("task: release partition %d: %w", p, err)
	}
	return nil
}

// leaseView is one reading of the bucket: live members (this instance
// included, even when its key lapsed) and the partitions someone holds.
type leaseView struct {
	members int
	held    [mq.Partitions]bool
}

// view lists the bucket's live keys. ctx must have a deadline: the listing
// ends only when every key was read.
func (l *leaseStore) view(ctx context.Context) (leaseView, error) {
	var v leaseView
	lister, err := l.kv.ListKeys(ctx)
	if err != nil {
		return v, fmt.Errorf("task: list leases: %w", err)
	}
	self := false
	for key := range lister.Keys() {
		if id, ok := strings.CutPrefix(key, memberPrefix); ok {
			v.members++
			self = self || id == l.id
			continue
		}
		s, ok := strings.CutPrefix(key, partitionPrefix)
		if p, err := strconv.Atoi(s); ok && err == nil && p >= 0 && p < mq.Partitions {
			v.held[p] = true
		}
	}
	if err := ctx.Err(); err != nil {
		// The lister stops early, without an error of its own.
		return v, fmt.Errorf("task: list leases: %w", err)
	}
	if !self {
		v.members++
	}
	return v, nil
}
