package task

import (
	"fmt"
	"net/url"
	"time"
)

// Defaults of NotifyConfig; a zero field takes its default.
const (
	DefaultNotifyTimeout     = 5 * time.Second
	DefaultNotifyAttempts    = 4
	DefaultNotifyRetryBase   = 500 * time.Millisecond
	DefaultNotifyRetryMax    = 8 * time.Second
	DefaultNotifyWindow      = 2 * time.Second
	DefaultNotifyConcurrency = 16
	DefaultNotifyDedupeTTL   = 24 * time.Hour
)

// NotifyConfig configures offline push notifications (offline.go): one
// signed HTTP POST per offline device with a push token, to WebhookURL.
// The zero value, without a WebhookURL, switches them off.
type NotifyConfig struct {
	// WebhookURL receives the notifications (http or https). Empty: off;
	// there is no default.
	WebhookURL string
	// Secret is the HMAC-SHA256 key of the signature header; required with
	// a WebhookURL.
	Secret string
	// Timeout bounds one webhook call, connecting included. Default 5s.
	Timeout time.Duration
	// Attempts is how many times one notification is tried before it is
	// recorded as failed. Default 4.
	Attempts int
	// RetryBase is the wait before the first retry; each retry waits twice
	// the one before, up to RetryMax, less a random part of up to half
	// (jitter). Defaults 500ms and 8s.
	RetryBase, RetryMax time.Duration
	// Window is how long the first message to a device waits for others
	// before they go out as one notification with their count. Default 2s;
	// negative sends each message alone.
	Window time.Duration
	// NoPreview leaves the message text out of the notifications, so it
	// never reaches the push provider. Default false: a preview is sent.
	NoPreview bool
	// Concurrency bounds the webhook calls in flight. Default 16.
	Concurrency int
	// DedupeTTL is how long the marker that a device was notified of a
	// message is kept; it must outlast redelivery (the stream keeps events
	// 24h). Default 24h.
	DedupeTTL time.Duration
}

// Enabled reports whether notifications are switched on.
func (c *NotifyConfig) Enabled() bool { return c.WebhookURL != "" }

func (c *NotifyConfig) applyDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultNotifyTimeout
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultNotifyAttempts
	}
	if c.RetryBase == 0 {
		c.RetryBase = DefaultNotifyRetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultNotifyRetryMax
	}
	if c.Window == 0 {
		c.Window = DefaultNotifyWindow
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultNotifyConcurrency
	}
	if c.DedupeTTL == 0 {
		c.DedupeTTL = DefaultNotifyDedupeTTL
	}
}

func (c *NotifyConfig) validate() error {
	if !c.Enabled() {
		if c.Secret != "" {
			return fmt.Errorf("%w: notify Secret is set without a WebhookURL", ErrBadConfig)
		}
		return nil
	}
	u, err := url.Parse(c.WebhookURL)
	switch {
	case err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%w: notify WebhookURL %q is not an http(s) URL",
			ErrBadConfig, c.WebhookURL)
	case c.Secret == "":
		return fmt.Errorf("%w: notify Secret is required with a WebhookURL", ErrBadConfig)
	case c.Timeout < 0 || c.RetryBase < 0 || c.RetryMax < c.RetryBase:
		return fmt.Errorf("%w: notify Timeout %v, RetryBase %v, RetryMax %v",
			ErrBadConfig, c.Timeout, c.RetryBase, c.RetryMax)
	case c.Attempts < 1 || c.Concurrency < 1:
		return fmt.Errorf("%w: notify Attempts %d, Concurrency %d < 1",
			ErrBadConfig, c.Attempts, c.Concurrency)
	case c.DedupeTTL < time.Minute:
		return fmt.Errorf("%w: notify DedupeTTL %v < 1m", ErrBadConfig, c.DedupeTTL)
	}
	return nil
}

// webhookHost returns the scheme and host of WebhookURL, for the start log:
// its user info, path (a /hooks/<token> style) and query may hold
// credentials. Call it on a validated, enabled config.
func (c *NotifyConfig) webhookHost() string {
	u, err := url.Parse(c.WebhookURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// ackWait is the notification consumer's ack wait: an event is acked once
// every device it reaches was notified, which takes the coalescing window
// and every attempt with its backoff, plus a margin.
func (c *NotifyConfig) ackWait(floor time.Duration) time.Duration {
	worst := max(c.Window, 0) + time.Duration(c.Attempts)*(c.Timeout+c.RetryMax) + 5*time.Second
	return max(floor, worst)
}
