package task

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
)

// notifiedMarks remember which device was notified of which message, in a
// JetStream key-value bucket beside the events stream. The bucket lives
// wherever the stream does (embedded NATS on disk in the single-process
// mode, the NATS cluster otherwise), so the marks survive task restarts and
// are shared by every task instance, with no store of their own to run.
type notifiedMarks struct {
	kv jetstream.KeyValue
}

// notifiedBucket names the bucket of the events stream n.Stream.
func notifiedBucket(n mq.Names) string { return n.Stream + "_NOTIFIED" }

// openNotifiedMarks creates or updates the bucket; keys expire after ttl.
func openNotifiedMarks(ctx context.Context, js jetstream.JetStream, n mq.Names,
	ttl time.Duration) (*notifiedMarks, error) {
	kv, err := mq.RetryStore(ctx, func() (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      notifiedBucket(n),
			Description: "devices notified of a message (task offline notifications)",
			TTL:         ttl,
			Storage:     jetstream.FileStorage,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("task: notified bucket %s: %w", notifiedBucket(n), err)
	}
	return &notifiedMarks{kv: kv}, nil
}

// markKey is the key of (message, user, device). Device ids are any text,
// so they are base64url-encoded into the key's alphabet.
func markKey(msgID, user int64, device string) string {
	return "m" + strconv.FormatInt(msgID, 10) + ".u" + strconv.FormatInt(user, 10) +
		".d" + base64.RawURLEncoding.EncodeToString([]byte(device))
}

// claim records the mark of key and reports whether this call created it;
// false means some earlier call (another delivery, instance or life of
// task) already claimed the notification. Create is atomic in JetStream,
// so two racing instances cannot both win.
func (m *notifiedMarks) claim(ctx context.Context, key string) (bool, error) {
	_, err := m.kv.Create(ctx, key, nil)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", key, err)
	}
	return true, nil
}

// release removes a claim whose notification was not sent, so that a
// redelivery sends it.
func (m *notifiedMarks) release(ctx context.Context, key string) error {
	if err := m.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	return nil
}
