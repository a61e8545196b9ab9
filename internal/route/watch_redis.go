package route

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisWatches is a Watches for a cluster. Each watcher has a set,
// prefix+"watching:"+<watcher>, of the users it watches, which expires with
// the watch set; each watched user has a sorted set, prefix+"watchers:"+<user>,
// of its watchers scored by the expiry of their watch set in unix ms, so that
// a lapsed watcher is skipped (and swept) without a lookup per watcher.
//
// The presence last announced for a user is a string key,
// prefix+"presence:"+<user>, "1" or "0", expiring with the watch TTL.
//
// Every command and transaction touches one key, so the store runs on a
// Redis Cluster as on one Redis; pipelines over several users' keys are
// split by a cluster client per node (see SetWatched for the order of its
// writes).
//
// Expiry is stamped with the caller's clock, like Redis routes.
type RedisWatches struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// NewRedisWatches returns a store on rdb whose keys start with prefix and
// whose watch sets lapse ttl after they were last set (DefaultWatchTTL when
// zero). The caller owns rdb.
func NewRedisWatches(rdb redis.UniversalClient, prefix string, ttl time.Duration) *RedisWatches {
	if ttl <= 0 {
		ttl = DefaultWatchTTL
	}
	return &RedisWatches{rdb: rdb, prefix: prefix, ttl: ttl, now: time.Now}
}

func (w *RedisWatches) watchingKey(watcher int64) string {
	return w.prefix + "watching:" + strconv.FormatInt(watcher, 10)
}

func (w *RedisWatches) watchersKey(user int64) string {
	return w.prefix + "watchers:" + strconv.FormatInt(user, 10)
}

// SetWatched implements Watches. The watcher's set and the watched users'
// sets are keys of different users, so in a Redis Cluster they lie in
// different slots, where no transaction spans them. It therefore writes in
// three steps, each of which keeps the watcher's set a superset of the
// reverse entries that name it, so that a step that fails leaves nothing the
// next call cannot remove:
//
//  1. one transaction on the watcher's set reads the old members and adds
//     the new ones;
//  2. a pipeline, one command per key, adds the watcher to each watched
//     user's set and removes it from the sets of users no longer watched;
//  3. one transaction on the watcher's set replaces it by the new members.
//
// A step that fails returns the error with the earlier steps done: until
// the client sets its watches again, it may hear from users it stopped
// watching or miss ones it just started to. Two racing calls of one watcher
// may leave it in a user's set it no longer watches until the entry's
// expiry; the cost is a few extra presence notifications to that watcher.
func (w *RedisWatches) SetWatched(ctx context.Context, watcher int64, watched []int64) error {
	old, err := w.addWatching(ctx, watcher, watched)
	if err != nil {
		return fmt.Errorf("route: watch set of user %d: %w", watcher, err)
	}
	if err := w.linkWatchers(ctx, watcher, old, watched); err != nil {
		return fmt.Errorf("route: set %d watched users of user %d: %w", len(watched), watcher, err)
	}
	if err := w.replaceWatching(ctx, watcher, watched); err != nil {
		return fmt.Errorf("route: replace watch set of user %d: %w", watcher, err)
	}
	return nil
}

// Unwatch implements Watches with one command per key, so a cluster client
// sends each to its slot's master.
func (w *RedisWatches) Unwatch(ctx context.Context, watcher, watched int64) error {
	_, err := w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, w.watchingKey(watcher), watched)
		p.ZRem(ctx, w.watchersKey(watched), strconv.FormatInt(watcher, 10))
		return nil
	})
	if err != nil {
		return fmt.Errorf("route: unwatch %d by user %d: %w", watched, watcher, err)
	}
	return nil
}

// addWatching adds watched to the watcher's set and returns the members it
// had before.
func (w *RedisWatches) addWatching(ctx context.Context, watcher int64,
	watched []int64) ([]string, error) {
	key := w.watchingKey(watcher)
	var old *redis.StringSliceCmd
	_, err := w.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		old = p.SMembers(ctx, key)
		if len(watched) > 0 {
			p.SAdd(ctx, key, int64sToAny(watched)...)
			p.PExpire(ctx, key, w.ttl)
		}
		return nil
	})
	return old.Val(), err
}

// linkWatchers adds watcher, scored by its new expiry, to the set of each
// watched user and removes it from the sets of the old users it no longer
// watches. Each command touches one key, so a cluster client sends each to
// its slot's master.
func (w *RedisWatches) linkWatchers(ctx context.Context, watcher int64, old []string,
	watched []int64) error {
	member := strconv.FormatInt(watcher, 10)
	expires := float64(w.now().Add(w.ttl).UnixMilli())
	keep := make(map[string]bool, len(watched))
	for _, u := range watched {
		keep[strconv.FormatInt(u, 10)] = true
	}
	_, err := w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range old {
			if !keep[u] {
				p.ZRem(ctx, w.prefix+"watchers:"+u, member)
			}
		}
		for _, u := range watched {
			key := w.watchersKey(u)
			p.ZAdd(ctx, key, redis.Z{Score: expires, Member: member})
			// Every entry expires by now+ttl, so the whole set may too.
			p.PExpire(ctx, key, w.ttl)
		}
		return nil
	})
	return err
}

// replaceWatching makes watched the watcher's whole set, or deletes the set
// when watched is empty.
func (w *RedisWatches) replaceWatching(ctx context.Context, watcher int64, watched []int64) error {
	key := w.watchingKey(watcher)
	_, err := w.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		if len(watched) > 0 {
			p.SAdd(ctx, key, int64sToAny(watched)...)
			p.PExpire(ctx, key, w.ttl)
		}
		return nil
	})
	return err
}

func int64sToAny(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// Watchers implements Watches. It sweeps lapsed entries in the same round
// trip.
func (w *RedisWatches) Watchers(ctx context.Context, user int64) ([]int64, error) {
	key := w.watchersKey(user)
	nowMs := strconv.FormatInt(w.now().UnixMilli(), 10)
	var live *redis.StringSliceCmd
	_, err := w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, key, "-inf", nowMs)
		live = p.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: "(" + nowMs, Max: "+inf"})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("route: watchers of user %d: %w", user, err)
	}
	out := make([]int64, 0, len(live.Val()))
	for _, s := range live.Val() {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			out = append(out, id)
		}
	}
	return out, nil
}

// SwapAnnounced implements Watches with one GETSET per user, all in one
// pipeline.
func (w *RedisWatches) SwapAnnounced(ctx context.Context,
	online map[int64]bool) ([]int64, error) {
	if len(online) == 0 {
		return nil, nil
	}
	users := make([]int64, 0, len(online))
	cmds := make([]*redis.StatusCmd, 0, len(online))
	_, err := w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for u, on := range online {
			v := "0"
			if on {
				v = "1"
			}
			key := w.prefix + "presence:" + strconv.FormatInt(u, 10)
			users = append(users, u)
			// One SET ... GET PX (Redis 6.2): a value written without its
			// expiry would outlive every user it describes.
			cmds = append(cmds, p.SetArgs(ctx, key, v, redis.SetArgs{Get: true, TTL: w.ttl}))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("route: swap presence of %d users: %w", len(online), err)
	}
	var changed []int64
	for i, cmd := range cmds {
		old, err := cmd.Result()
		want := "0"
		if online[users[i]] {
			want = "1"
		}
		if err != nil || old != want {
			changed = append(changed, users[i])
		}
	}
	return changed, nil
}
