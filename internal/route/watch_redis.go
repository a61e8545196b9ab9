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

// SetWatched implements Watches: it reads the old set, then in one
// transaction removes the watcher from the old users' sets and adds it to
// the new ones'. Two racing calls of one watcher may leave it in a user's
// set it no longer watches until the entry's expiry; the cost is a few
// extra presence notifications to that watcher.
func (w *RedisWatches) SetWatched(ctx context.Context, watcher int64, watched []int64) error {
	old, err := w.rdb.SMembers(ctx, w.watchingKey(watcher)).Result()
	if err != nil {
		return fmt.Errorf("route: watch set of user %d: %w", watcher, err)
	}
	now := w.now()
	expires := float64(now.Add(w.ttl).UnixMilli())
	member := strconv.FormatInt(watcher, 10)
	_, err = w.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range old {
			p.ZRem(ctx, w.prefix+"watchers:"+u, member)
		}
		p.Del(ctx, w.watchingKey(watcher))
		if len(watched) == 0 {
			return nil
		}
		users := make([]any, len(watched))
		for i, u := range watched {
			users[i] = u
			key := w.watchersKey(u)
			p.ZAdd(ctx, key, redis.Z{Score: expires, Member: member})
			// Every entry expires by now+ttl, so the whole set may too.
			p.PExpire(ctx, key, w.ttl)
		}
		p.SAdd(ctx, w.watchingKey(watcher), users...)
		p.PExpire(ctx, w.watchingKey(watcher), w.ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("route: set %d watched users of user %d: %w", len(watched), watcher, err)
	}
	return nil
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
	cmds := make([]*redis.StringCmd, 0, len(online))
	_, err := w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for u, on := range online {
			v := "0"
			if on {
				v = "1"
			}
			key := w.prefix + "presence:" + strconv.FormatInt(u, 10)
			users = append(users, u)
			cmds = append(cmds, p.GetSet(ctx, key, v))
			p.PExpire(ctx, key, w.ttl)
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
