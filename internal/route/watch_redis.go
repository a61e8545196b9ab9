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
// prefix+"presence:"+<user>, "1" or "0" and since when ("1:<unix ms>"),
// expiring with the watch TTL.
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

// SwapAnnounced implements Watches with one script call per user, all in
// one pipeline.
func (w *RedisWatches) SwapAnnounced(ctx context.Context,
	states map[int64]Presence) (map[int64]int64, error) {
	changed := make(map[int64]int64)
	users := make([]int64, 0, len(states))
	for u := range states {
		users = append(users, u)
	}
	retry, err := w.swapPipelined(ctx, users, states, changed)
	if len(retry) > 0 {
		// Only the calls that found no script are sent again: a swap that
		// ran, repeated, would find its own record and announce nothing. A
		// cluster client loads the script on every node.
		var again error
		if again = swapScript.Load(ctx, w.rdb).Err(); again == nil {
			retry, again = w.swapPipelined(ctx, retry, states, changed)
		}
		if again == nil && len(retry) > 0 {
			again = fmt.Errorf("%d users: %w", len(retry), errNoScript)
		}
		err = errors.Join(err, again)
	}
	if err != nil {
		// changed goes back with the error: those records were swapped, and
		// unless their watchers are told now, no later swap will.
		return changed, fmt.Errorf("route: swap presence of %d users: %w", len(states), err)
	}
	return changed, nil
}

// errNoScript is what a swap reports when Redis lost its script again
// right after loading it (a restart or SCRIPT FLUSH between the two).
var errNoScript = errors.New("presence script not loaded")

// swapPipelined runs the swap script for users, adding those changed to
// changed, and returns the users whose call found no script loaded. A call
// that failed otherwise fails that user alone: the others' outcomes are
// still added, and the error names the first user failed and how many.
func (w *RedisWatches) swapPipelined(ctx context.Context, users []int64,
	states map[int64]Presence, changed map[int64]int64) ([]int64, error) {
	ttlMs := w.ttl.Milliseconds()
	cmds := make([]*redis.Cmd, len(users))
	// Each command is checked below; the pipeline's error is one of theirs.
	_, _ = w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range users {
			st := states[u]
			on := "0"
			if st.Online {
				on = "1"
			}
			cmds[i] = swapScript.EvalSha(ctx, p,
				[]string{w.prefix + "presence:" + strconv.FormatInt(u, 10)},
				on, st.SinceMs, ttlMs)
		}
		return nil
	})
	var retry []int64
	var first error
	failed := 0
	for i, cmd := range cmds {
		since, err := cmd.Int64()
		switch {
		case err == nil:
			if since >= 0 {
				changed[users[i]] = since
			}
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			retry = append(retry, users[i])
		default:
			if failed++; first == nil {
				first = fmt.Errorf("user %d: %w", users[i], err)
			}
		}
	}
	if failed > 1 {
		first = fmt.Errorf("%w (and %d more users)", first, failed-1)
	}
	return retry, first
}

// swapLua swaps one user's presence record, "<online 1|0>:<since ms>" (a
// bare "1" or "0", as written before since was kept, reads as since 0).
// KEYS[1] the record; ARGV online, since ms, ttl ms. Returns -1 when the
// record says the same online (kept, its expiry pushed out), otherwise the
// since to announce: ARGV[2], or the record's when later.
const swapLua = `
local v = redis.call('GET', KEYS[1])
local since = tonumber(ARGV[2])
if v then
  if string.sub(v, 1, 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return -1
  end
  local old = tonumber(string.sub(v, 3)) or 0
  if old > since then since = old end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%d', since), 'PX', ARGV[3])
return since`

var swapScript = redis.NewScript(swapLua)
