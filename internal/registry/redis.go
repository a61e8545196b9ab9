package registry

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Registry for a cluster: one sorted set, prefix+"gateways",
// whose members are push addresses scored by their expiry in unix ms. A
// deregistered address is scored "now" rather than removed, so it reads as
// vanished; members gone for longer than retention are trimmed by the next
// Register. The key itself expires retention after the last registration, so
// a deployment that stopped leaves nothing behind.
//
// Every command and the Register transaction touch only that key, so the
// registry runs on a Redis Cluster as on one Redis (the key then lives on
// one master; it is written every few seconds per gateway and read every
// few seconds per task instance).
//
// Expiry is stamped with the caller's clock, so gateways and task instances
// need roughly synchronized clocks (well within the TTL).
type Redis struct {
	rdb       redis.UniversalClient
	key       string
	retention time.Duration
	now       func() time.Time
}

// NewRedis returns a registry on rdb under the key prefix+"gateways",
// keeping vanished addresses for retention (DefaultRetention when zero). The
// caller owns rdb.
func NewRedis(rdb redis.UniversalClient, prefix string, retention time.Duration) *Redis {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Redis{rdb: rdb, key: prefix + "gateways", retention: retention, now: time.Now}
}

// Register implements Registry: one pipeline sets the score, trims members
// gone past retention and pushes the key's own expiry out.
func (r *Redis) Register(ctx context.Context, addr string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: register %s with ttl %v", ErrBadTTL, addr, ttl)
	}
	now := r.now()
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, r.key, redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: addr})
		p.ZRemRangeByScore(ctx, r.key, "-inf",
			"("+strconv.FormatInt(now.Add(-r.retention).UnixMilli(), 10))
		p.PExpire(ctx, r.key, ttl+r.retention)
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry: register %s: %w", addr, err)
	}
	return nil
}

// Deregister implements Registry. ZADD XX leaves an unknown address
// unknown, and LT leaves an already expired one at its expiry.
func (r *Redis) Deregister(ctx context.Context, addr string) error {
	score := float64(r.now().UnixMilli())
	err := r.rdb.ZAddArgs(ctx, r.key, redis.ZAddArgs{XX: true, LT: true,
		Members: []redis.Z{{Score: score, Member: addr}}}).Err()
	if err != nil {
		return fmt.Errorf("registry: deregister %s: %w", addr, err)
	}
	return nil
}

// Snapshot implements Registry. It only reads: members past retention that
// no Register trimmed yet are left out, not removed.
func (r *Redis) Snapshot(ctx context.Context) (Snapshot, error) {
	zs, err := r.rdb.ZRangeWithScores(ctx, r.key, 0, -1).Result()
	if err != nil {
		return Snapshot{}, fmt.Errorf("registry: snapshot %s: %w", r.key, err)
	}
	now := r.now()
	var s Snapshot
	for _, z := range zs {
		addr, ok := z.Member.(string)
		if !ok {
			continue
		}
		s.classify(addr, time.UnixMilli(int64(z.Score)), now, r.retention)
	}
	return s, nil
}
