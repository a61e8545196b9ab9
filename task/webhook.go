package task

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Webhook request headers. The signature is "v1=" and the hex HMAC-SHA256,
// keyed with NotifyConfig.Secret, of the timestamp header's value, a dot and
// the body: a receiver recomputes it, compares in constant time and refuses
// timestamps far from its clock, so a captured call cannot be replayed
// later.
const (
	HeaderSignature = "X-Resonance-Signature"
	HeaderTimestamp = "X-Resonance-Timestamp" // Unix seconds
	HeaderID        = "X-Resonance-Id"        // Notification.ID again
	signatureScheme = "v1="
)

// Notification is the JSON body of one webhook call: what a push provider
// needs to wake one device.
type Notification struct {
	// ID is the same on every attempt and redelivery of this notification:
	// "<msg_id>-<user_id>-<device_id>" of its newest message. Receivers
	// deduplicate on it.
	ID       string `json:"id"`
	UserID   int64  `json:"user_id"`
	DeviceID string `json:"device_id"`
	Platform string `json:"platform"` // apns, fcm or other
	Token    string `json:"token"`
	AppID    string `json:"app_id,omitempty"`
	// ConvID, the sender, MsgID, Seq and SentAtMs describe the newest
	// message.
	ConvID   string `json:"conv_id"`
	SenderID int64  `json:"sender_id"`
	// SenderName is the sender's nickname, or username without one.
	SenderName string `json:"sender_name,omitempty"`
	MsgID      int64  `json:"msg_id"`
	Seq        int64  `json:"seq"`
	SentAtMs   int64  `json:"sent_at_ms"`
	// Preview is the start of the newest message's text, a file's name or
	// "Photo" for an image; absent when previews are off or the message is
	// binary.
	Preview string `json:"preview,omitempty"`
	// Count is how many messages this notification stands for (more than
	// one when a burst was coalesced).
	Count int `json:"count"`
	// Badge is the user's unread messages over all conversations.
	Badge int32 `json:"badge"`
	// Mentioned is true when a message this notification stands for
	// mentions the user (by name or @all); it is sent even when the user
	// muted the conversation. Absent otherwise.
	Mentioned bool `json:"mentioned,omitempty"`
}

// Sign returns the signature header value of body sent at timestamp (the
// header's Unix seconds) with secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return signatureScheme + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature is Sign(secret, timestamp, body); it
// compares in constant time. Receivers written in Go may use it.
func Verify(secret []byte, timestamp string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature))
}

// errPermanent marks a webhook answer that retrying cannot change (a 4xx
// other than 408 and 429).
var errPermanent = errors.New("permanent failure")

// webhook posts notifications, retrying with backoff. It is safe for
// concurrent use.
type webhook struct {
	cfg    NotifyConfig
	client *http.Client
	secret []byte
	now    func() time.Time
	// onRetry is called before each retry (a metric).
	onRetry func()
}

func newWebhook(cfg NotifyConfig, onRetry func()) *webhook {
	// A transport of its own: no proxy from the environment (the receiver
	// is the configured URL, nothing else), idle connections for every
	// call in flight, and closing them touches no one else's.
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		TLSHandshakeTimeout: cfg.Timeout,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     time.Minute,
		ForceAttemptHTTP2:   true,
	}
	return &webhook{
		cfg: cfg,
		client: &http.Client{
			Transport: transport,
			// The timeout covers connecting, the request and reading the answer.
			Timeout: cfg.Timeout,
			// A redirect is answered as a failure rather than followed: the
			// signed body goes to the configured URL only.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		secret:  []byte(cfg.Secret),
		now:     time.Now,
		onRetry: onRetry,
	}
}

// send posts n until the receiver answers 2xx, for up to cfg.Attempts tries,
// and returns how many it made with the last error. It stops early when
// ctx is done or the answer is permanent.
func (w *webhook) send(ctx context.Context, n *Notification) (int, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return 0, fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	var last error
	for attempt := 1; attempt <= w.cfg.Attempts; attempt++ {
		if attempt > 1 {
			w.onRetry()
			if err := sleepCtx(ctx, w.backoff(attempt-1)); err != nil {
				return attempt - 1, errors.Join(last, err)
			}
		}
		last = w.post(ctx, n.ID, body)
		if last == nil || errors.Is(last, errPermanent) || ctx.Err() != nil {
			return attempt, last
		}
	}
	return w.cfg.Attempts, last
}

// post makes one signed call.
func (w *webhook) post(ctx context.Context, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.WebhookURL,
		bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	req.Header.Set(HeaderID, id)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	// Drained (up to a bound) so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("webhook answered %d", code)
	default:
		return fmt.Errorf("%w: webhook answered %d", errPermanent, code)
	}
}

// backoff returns the wait before retry number retry (1 for the first):
// RetryBase doubled per retry, capped at RetryMax, less a random part of up
// to half, so that devices failing together do not retry together.
func (w *webhook) backoff(retry int) time.Duration {
	d := w.cfg.RetryBase
	for i := 1; i < retry && d < w.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.RetryMax)
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(rand.Int64N(half + 1))
	}
	return d
}

// close drops the idle connections to the receiver.
func (w *webhook) close() { w.client.CloseIdleConnections() }

// sleepCtx waits for d or until ctx is done, returning ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
