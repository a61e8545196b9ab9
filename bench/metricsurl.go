package main

import (
	"flag"
	"fmt"
	"net"
)

// The ports a Resonance server takes when not told otherwise: the gateway's
// client port (--addr) and the HTTP port of /metrics (--http-listen).
const (
	serverDefaultClientPort = "7000"
	serverDefaultHTTPPort   = "9100"
)

// metricsURLUsage documents --metrics-url for the scenarios that read one
// gateway's /metrics.
const metricsURLUsage = "the same gateway's /metrics (its --http-listen); default " +
	"http://HOST:" + serverDefaultHTTPPort + "/metrics\nwhen --addr is HOST:" +
	serverDefaultClientPort + ", required with any other port"

// resolveMetricsURL fills *url, when --metrics-url was not given, from addr
// (see defaultMetricsURL). It fails when addr does not tell the page, rather
// than read another server's. optional says the scenario runs without the
// page when --metrics-url is given empty.
func resolveMetricsURL(fs *flag.FlagSet, addr string, url *string, optional bool) error {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "metrics-url" })
	if given {
		return nil
	}
	u, ok := defaultMetricsURL(addr)
	if !ok {
		skip := ""
		if optional {
			skip = ` (or --metrics-url "" to read none)`
		}
		return fmt.Errorf("--metrics-url is required with --addr %s: give the gateway's "+
			"/metrics, as http://HOST:PORT/metrics with the port of its --http-listen%s",
			addr, skip)
	}
	*url = u
	return nil
}

// defaultMetricsURL is the /metrics page of the gateway at addr when addr
// tells it: a gateway on the default client port is taken to serve /metrics
// on the default HTTP port of the same host (an unspecified host is this
// one). On any other port the HTTP port was chosen too, and cannot be
// guessed: ok is false.
func defaultMetricsURL(addr string) (url string, ok bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != serverDefaultClientPort {
		return "", false
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, serverDefaultHTTPPort) + "/metrics", true
}
