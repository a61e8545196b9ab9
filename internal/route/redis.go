package route

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Table for a cluster of logic and task instances. Each user is
// one hash, prefix+"route:"+<user id>, whose fields are device ids and whose
// values are "<expiry unix ms>:<conn id>:<gateway>" (the gateway goes last
// because an address holds colons). The key's own TTL is refreshed on every
// write, so a user nobody renews vanishes whole; a single stale device is
// skipped by Lookup and swept by the next Put.
//
// Every script and command touches one user's key, so the table runs on a
// Redis Cluster as on one Redis; Renew and Lookup pipeline several users'
// keys, which a cluster client splits per node.
//
// Expiry is stamped with the caller's clock, so logic instances need
// roughly synchronized clocks (well within the TTL).
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// NewRedis returns a table on rdb whose keys start with prefix and whose
// routes expire after ttl without renewal (DefaultTTL when zero). The caller
// owns rdb.
func NewRedis(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Redis {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Redis{rdb: rdb, prefix: prefix, ttl: ttl, now: time.Now}
}

// The scripts make compare-and-write atomic: a Delete or Renew from an old
// connection must never touch the route a newer login wrote in between.
const (
	// KEYS[1] user hash; ARGV device, value, now ms, ttl ms. Returns the old
	// value or nil, and sweeps expired devices of the user.
	putLua = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[3])
for i = 1, #all, 2 do
  local exp = tonumber(string.match(all[i + 1], '^(%d+):'))
  if exp == nil or exp <= now then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return old`

	// KEYS[1] user hash; ARGV device, owner "<conn>:<gateway>". Returns 1
	// when deleted, 0 when absent, -1 when another connection owns it.
	deleteLua = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
if string.match(v, '^%d+:(.*)$') ~= ARGV[2] then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1`

	// KEYS[1] user hash; ARGV device, owner, new value, ttl ms. Returns 1
	// when renewed, 2 when written back because it was absent (Redis lost
	// it), 0 when another connection owns it.
	renewLua = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.match(v, '^%d+:(.*)$') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if not v then return 2 end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`
)

var (
	putScript    = redis.NewScript(putLua)
	deleteScript = redis.NewScript(deleteLua)
	// renewScript is a variable so a test can swap in a never-loaded copy.
	renewScript = redis.NewScript(renewLua)
)

func (t *Redis) key(userID int64) string {
	return t.prefix + "route:" + strconv.FormatInt(userID, 10)
}

func owner(r Route) string {
	return strconv.FormatInt(r.ConnID, 10) + ":" + r.Gateway
}

func (t *Redis) value(r Route, now time.Time) string {
	return strconv.FormatInt(now.Add(t.ttl).UnixMilli(), 10) + ":" + owner(r)
}

// parseValue decodes a field value of user and device into its route and
// expiry in unix ms; ok is false for a value Redis did not write.
func parseValue(userID int64, device, v string) (r Route, expires int64, ok bool) {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 {
		return r, 0, false
	}
	exp, err1 := strconv.ParseInt(parts[0], 10, 64)
	conn, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return r, 0, false
	}
	return Route{UserID: userID, DeviceID: device, Gateway: parts[2], ConnID: conn}, exp, true
}

// Put implements Table.
func (t *Redis) Put(ctx context.Context, r Route) (*Route, error) {
	now := t.now()
	old, err := putScript.Run(ctx, t.rdb, []string{t.key(r.UserID)},
		r.DeviceID, t.value(r, now), now.UnixMilli(), t.ttl.Milliseconds()).Text()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("route: put user %d device %q: %w", r.UserID, r.DeviceID, err)
	}
	prev, exp, ok := parseValue(r.UserID, r.DeviceID, old)
	if !ok || exp <= now.UnixMilli() || sameConn(prev, r) {
		// A malformed old value is overwritten now; nothing to kick.
		return nil, nil
	}
	return &prev, nil
}

// Delete implements Table.
func (t *Redis) Delete(ctx context.Context, r Route) error {
	res, err := deleteScript.Run(ctx, t.rdb, []string{t.key(r.UserID)}, r.DeviceID, owner(r)).Int()
	if err != nil {
		return fmt.Errorf("route: delete user %d device %q: %w", r.UserID, r.DeviceID, err)
	}
	if res < 0 {
		return ErrNotOwner
	}
	return nil
}

// Renew implements Table. The routes are renewed in one pipeline; a route
// another connection owns is left alone.
func (t *Redis) Renew(ctx context.Context, rs []Route) error {
	if len(rs) == 0 {
		return nil
	}
	err := t.renewPipelined(ctx, rs)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A pipeline cannot fall back to EVAL per command as Run does:
		// load the script once and replay (renewing twice is harmless). A
		// cluster client loads it on every node.
		if err = renewScript.Load(ctx, t.rdb).Err(); err == nil {
			err = t.renewPipelined(ctx, rs)
		}
	}
	if err != nil {
		return fmt.Errorf("route: renew %d routes: %w", len(rs), err)
	}
	return nil
}

func (t *Redis) renewPipelined(ctx context.Context, rs []Route) error {
	now := t.now()
	ttlMs := t.ttl.Milliseconds()
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range rs {
			renewScript.EvalSha(ctx, p, []string{t.key(r.UserID)},
				r.DeviceID, owner(r), t.value(r, now), ttlMs)
		}
		return nil
	})
	return err
}

// Lookup implements Table. It reads every user's hash in one pipeline and
// skips expired and malformed fields.
func (t *Redis) Lookup(ctx context.Context, userIDs []int64) ([]Route, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(userIDs))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, uid := range userIDs {
			cmds[i] = p.HGetAll(ctx, t.key(uid))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("route: lookup %d users: %w", len(userIDs), err)
	}
	nowMs := t.now().UnixMilli()
	var out []Route
	for i, cmd := range cmds {
		for device, v := range cmd.Val() {
			r, exp, ok := parseValue(userIDs[i], device, v)
			if ok && exp > nowMs {
				out = append(out, r)
			}
		}
	}
	return out, nil
}
