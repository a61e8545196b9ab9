package logic

import (
	"sync"
	"time"
)

const (
	// knownAddrsMax bounds the (account, address) pairs remembered; about
	// 100 bytes each.
	knownAddrsMax = 200_000
	// knownAddrsTTL is how long a sign-in keeps its address known.
	knownAddrsTTL = 30 * 24 * time.Hour
)

// knownAddrs remembers, in this process, the client addresses (clientHost)
// each account signed in from, so that a spent per-account password budget
// does not lock the owner out where they signed in before (allowPassword).
// It is bounded: past max pairs, an add first drops expired ones, then
// arbitrary ones, so an attacker who signs in to accounts of their own from
// many addresses costs memory only up to the bound. It is safe for
// concurrent use.
type knownAddrs struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	at map[string]int64 // account "\x00" host -> last sign-in, Unix ms
}

func newKnownAddrs(max int, ttl time.Duration) *knownAddrs {
	return &knownAddrs{max: max, ttl: ttl, now: time.Now, at: make(map[string]int64)}
}

// add records a sign-in of account from host.
func (k *knownAddrs) add(account, host string) {
	now := k.now().UnixMilli()
	key := account + "\x00" + host
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.at[key]; !ok && len(k.at) >= k.max {
		k.evict(now)
	}
	k.at[key] = now
}

// has reports whether account signed in from host within the ttl.
func (k *knownAddrs) has(account, host string) bool {
	k.mu.Lock()
	at, ok := k.at[account+"\x00"+host]
	k.mu.Unlock()
	return ok && k.now().UnixMilli()-at < k.ttl.Milliseconds()
}

// evict makes room for one pair: every expired pair goes, and when none
// had, an arbitrary tenth of the map (map order is random), so that a full
// map is not scanned on every add. k.mu is held.
func (k *knownAddrs) evict(now int64) {
	for key, at := range k.at {
		if now-at >= k.ttl.Milliseconds() {
			delete(k.at, key)
		}
	}
	for key := range k.at {
		if len(k.at) < k.max-k.max/10 {
			return
		}
		delete(k.at, key)
	}
}
