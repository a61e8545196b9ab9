package gateway

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"

	proxyproto "github.com/pires/go-proxyproto"
)

// Clients behind a load balancer reach the gateway from the balancer's
// address, so logic's limits per client address (password logins,
// registrations) would count all of them as one client. A balancer listed
// in Config.TrustedProxies names the client instead, in one of two ways:
//
//   - a PROXY protocol header (HAProxy's, version 1 or 2), before anything
//     else on the connection: HAProxy's send-proxy, nginx's stream
//     proxy_protocol, AWS NLB, Envoy. It serves TCP and WebSocket alike,
//     and TLS terminated at the balancer.
//   - for WebSocket through an HTTP proxy, X-Forwarded-For in the upgrade
//     request: the rightmost address in it that is not itself a trusted
//     proxy.
//
// Either is taken from a listed peer only. From any other, a PROXY header is
// a malformed frame (its first bytes are no frame's) and X-Forwarded-For is
// ignored, so a client cannot choose the address it is limited as. A listed
// peer may send neither (a health check, or a proxy that does not say): the
// peer's own address is used then.
//
// The address is kept per event loop, for the connections of listed peers
// only (loopState.proxied), so that conn stays as small without the option.

const (
	// proxyV1Max is the longest version 1 header, CRLF included (the
	// specification's bound).
	proxyV1Max = 107
	// proxyV2Max bounds a version 2 header: 16 bytes and the addresses and
	// TLVs after them. Balancers send a few hundred bytes at most (AWS's
	// endpoint id, TLS details); a longer one is refused rather than held.
	proxyV2Max = 4096
)

var (
	proxyV1Sig = []byte("PROXY ")
	proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// proxyHeaderLen returns the length of the PROXY protocol header at the
// front of buf: 0 when buf starts with anything else, -1 while buf is too
// short to tell or holds an incomplete header, and an error for a header
// over its bound.
func proxyHeaderLen(buf []byte) (int, error) {
	switch {
	case startsLike(buf, proxyV1Sig):
		if len(buf) < len(proxyV1Sig) {
			return -1, nil
		}
		end := bytes.Index(buf[:min(len(buf), proxyV1Max)], []byte("\r\n"))
		if end >= 0 {
			return end + 2, nil
		}
		if len(buf) >= proxyV1Max {
			return 0, fmt.Errorf("%w: PROXY header without CRLF in %d bytes",
				ErrProxyHeader, proxyV1Max)
		}
		return -1, nil
	case startsLike(buf, proxyV2Sig):
		if len(buf) < 16 {
			return -1, nil
		}
		n := 16 + int(binary.BigEndian.Uint16(buf[14:16]))
		if n > proxyV2Max {
			return 0, fmt.Errorf("%w: PROXY v2 header of %d bytes, over %d",
				ErrProxyHeader, n, proxyV2Max)
		}
		if len(buf) < n {
			return -1, nil
		}
		return n, nil
	}
	return 0, nil
}

// startsLike reports whether buf and sig agree on their common length: buf
// may be the start of sig, or start with it.
func startsLike(buf, sig []byte) bool {
	n := min(len(buf), len(sig))
	return bytes.Equal(buf[:n], sig[:n])
}

// parseProxyHeader returns the client address ("ip:port") a whole PROXY
// header names, or "" when it names none: a balancer's own check (LOCAL),
// UNKNOWN, or a transport other than TCP.
func parseProxyHeader(header []byte) (string, error) {
	h, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(header), len(header)))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrProxyHeader, err)
	}
	if h.Command != proxyproto.PROXY {
		return "", nil
	}
	src, _, ok := h.TCPAddrs()
	if !ok || src == nil {
		return "", nil
	}
	return src.String(), nil
}

// proxyHeader reads the PROXY header a trusted peer may send first. It
// moves c out of modeProxy once it can tell: to modeSniff after a whole
// header, whose n bytes are consumed, or when buf starts with anything else
// (n = 0). While the header is incomplete c stays in modeProxy.
func (g *Gateway) proxyHeader(c *conn, buf []byte) (int, error) {
	n, err := proxyHeaderLen(buf)
	if err != nil || n < 0 {
		return 0, err
	}
	c.mode = modeSniff
	if n == 0 {
		return 0, nil
	}
	addr, err := parseProxyHeader(buf[:n])
	if err != nil {
		return 0, err
	}
	if addr != "" {
		c.loop.nameClient(c, addr)
	}
	return n, nil
}

// trusted reports whether addr, a connection's peer, is one of
// Config.TrustedProxies.
func (g *Gateway) trusted(addr net.Addr) bool {
	if len(g.cfg.TrustedProxies) == 0 || addr == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	return g.trustedIP(ap.Addr())
}

func (g *Gateway) trustedIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedFor returns the client address the X-Forwarded-For headers of
// request (an HTTP request head) name: the rightmost entry that is not a
// trusted proxy, or "" when there is none or an entry before it is no
// address (a list a client wrote itself).
func (g *Gateway) forwardedFor(request []byte) string {
	var entries []string
	for line := range bytes.SplitSeq(request, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("X-Forwarded-For")) {
			entries = append(entries, strings.Split(string(value), ",")...)
		}
	}
	for i := len(entries) - 1; i >= 0; i-- {
		ip, ok := parseForwarded(strings.TrimSpace(entries[i]))
		if !ok {
			return ""
		}
		if !g.trustedIP(ip) {
			return ip.String()
		}
	}
	return ""
}

// parseForwarded parses one X-Forwarded-For entry: an IP, or an IP and port
// as some proxies write it.
func parseForwarded(s string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// nameClient records addr as the client address of c, which a trusted
// proxy named. It runs on c's loop.
func (ls *loopState) nameClient(c *conn, addr string) {
	if ls.proxied == nil {
		ls.proxied = make(map[*conn]string)
	}
	ls.proxied[c] = addr
}

// remoteOf returns the client address of c: the one a trusted proxy named,
// else the peer's. It runs on c's loop.
func (g *Gateway) remoteOf(c *conn) string {
	if addr := c.loop.proxied[c]; addr != "" {
		return addr
	}
	return c.gc.RemoteAddr().String()
}
