package gateway

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// dialFrom connects to the gateway from the loopback address local (any of
// 127.0.0.0/8 on Linux) and reports whether a HEARTBEAT is answered, rather
// than the connection refused with OVERLOADED.
func (h *harness) dialFrom(t *testing.T, local string) bool {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", h.gw.Addr().String())
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := &testClient{t: t, conn: conn}
	c.send(protocol.Op_HEARTBEAT, 1, nil)
	f := c.read()
	if f.Op == protocol.Op_CLOSE {
		var msg protocol.CloseMsg
		if err := codec.ReadBody(f.body, &msg); err != nil ||
			msg.Reason != protocol.CloseReason_OVERLOADED {
			t.Fatalf("from %s: close %+v (%v), want OVERLOADED", local, &msg, err)
		}
		return false
	}
	return true
}

// TestGateway_OneAddressCannotSpendTheAcceptRate floods the gateway with
// connections from one address until it refuses them, then connects from
// another: the flood spent only its address's share of the accept rate,
// so the other is admitted.
func TestGateway_OneAddressCannotSpendTheAcceptRate(t *testing.T) {
	h := startGateway(t, Config{AcceptRate: 10})
	refused := 0
	for i := 0; i < 40 && refused < 5; i++ {
		if !h.dialFrom(t, "127.0.0.1") {
			refused++
		}
	}
	if refused < 5 {
		t.Fatalf("40 quick connections from one address: %d refused, want 5", refused)
	}
	if !h.dialFrom(t, "127.0.0.2") {
		t.Fatal("another address is refused after one address's flood")
	}
}

// TestGateway_TrustedProxyIsNotLimitedPerAddress: a load balancer's
// connections all come from its address; only the gateway's rate limits
// them.
func TestGateway_TrustedProxyIsNotLimitedPerAddress(t *testing.T) {
	h := startGateway(t, Config{AcceptRate: 100,
		TrustedProxies: loopbackProxies})
	for i := range 20 {
		// A PROXY header first, as a balancer sends.
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", h.gw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		c := &testClient{t: t, conn: conn}
		c.writeRaw([]byte("PROXY TCP4 198.51.100.7 127.0.0.1 4000 7000\r\n"))
		c.send(protocol.Op_HEARTBEAT, 1, nil)
		if f := c.read(); f.Op != protocol.Op_HEARTBEAT_ACK {
			t.Fatalf("connection %d through the proxy answered %v", i, f.Op)
		}
	}
}

// TestAddrBuckets_TableStaysSmall: connections from ever new addresses, a
// few per millisecond, leave a table of about the last second's addresses,
// not of every address seen.
func TestAddrBuckets_TableStaysSmall(t *testing.T) {
	var a addrBuckets
	peak := 0
	for i := range 200_000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !a.take(ip, int64(i/4), 5) {
			t.Fatalf("first connection of %v refused", ip)
		}
		peak = max(peak, len(a.buckets))
	}
	// 4000 addresses a second; a sweep runs when the table doubles.
	if peak > 4*4000 {
		t.Fatalf("table peaked at %d entries for 4000 addresses a second", peak)
	}
}

func TestAddrKey_IPv6CountsBySlash64(t *testing.T) {
	key := func(s string) netip.Addr {
		k, ok := addrKey(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)))
		if !ok {
			t.Fatalf("no key for %s", s)
		}
		return k
	}
	if key("[2001:db8:1:2::5]:1") != key("[2001:db8:1:2:ffff::9]:2") {
		t.Fatal("two addresses of one /64 have different keys")
	}
	if key("[2001:db8:1:2::5]:1") == key("[2001:db8:1:3::5]:1") {
		t.Fatal("two /64s share a key")
	}
	if key("[::ffff:192.0.2.1]:1") != key("192.0.2.1:2") {
		t.Fatal("a v4-mapped address differs from its IPv4 one")
	}
	if _, ok := addrKey(&net.UnixAddr{Name: "x"}); ok {
		t.Fatal("a unix socket address has a key")
	}
}
