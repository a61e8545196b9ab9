package gateway

import (
	"net"
	"net/netip"
	"sync"
)

// addrPruneMin is the size of the per-address accept table under which it
// is never swept.
const addrPruneMin = 1024

// addrBuckets is the accept rate per client address (Config.AcceptAddrRate),
// shared by all event loops like the gateway's tokenBucket. An entry whose
// bucket has refilled (a second without a connection from its address) says
// nothing and is swept once the table has doubled since the last sweep, so
// the table holds about the addresses of the last second's connections,
// never every address ever seen.
type addrBuckets struct {
	mu      sync.Mutex
	buckets map[netip.Addr]addrBucket
	sweepAt int // table size that triggers the next sweep
}

// addrBucket is one address's budget, in thousandths of a connection, and
// the gateway clock (ms) of its last refill.
type addrBucket struct {
	budget, at int64
}

// take spends one connection of key's bucket, refilled at rate per second
// with a burst of one second's worth; false means key is over its rate.
func (a *addrBuckets) take(key netip.Addr, nowMs, rate int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	burst := rate * 1000
	if a.buckets == nil {
		a.buckets = make(map[netip.Addr]addrBucket)
	}
	if len(a.buckets) >= max(a.sweepAt, addrPruneMin) {
		a.sweep(nowMs)
	}
	b, ok := a.buckets[key]
	if !ok {
		b = addrBucket{budget: burst, at: nowMs}
	}
	b.budget = min(b.budget+max(nowMs-b.at, 0)*rate, burst)
	b.at = nowMs
	allowed := b.budget >= 1000
	if allowed {
		b.budget -= 1000
	}
	a.buckets[key] = b
	return allowed
}

// sweep drops the entries whose bucket a second has refilled: a new entry
// for their address starts full, the same.
func (a *addrBuckets) sweep(nowMs int64) {
	for k, b := range a.buckets {
		if nowMs-b.at >= 1000 {
			delete(a.buckets, k)
		}
	}
	a.sweepAt = 2 * len(a.buckets)
}

// addrKey is the key peer is limited by: its IPv4 address, or the /64 of
// its IPv6 one, which a single host or customer is commonly given whole.
// false: peer is no IP address (nothing to limit by).
func addrKey(peer net.Addr) (netip.Addr, bool) {
	tcp, ok := peer.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip := tcp.AddrPort().Addr().Unmap()
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	if ip.Is6() {
		p, err := ip.Prefix(64)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = p.Addr()
	}
	return ip, true
}
