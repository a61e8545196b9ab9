package logic

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argonParams are the argon2id cost parameters. They are encoded into every
// hash, so raising them later still verifies old hashes.
type argonParams struct {
	memoryKiB uint32
	time      uint32
	threads   uint8
	saltLen   int
	keyLen    uint32
}

// defaultArgon is modest on purpose (19 MiB, 2 passes): a login storm of
// HashConcurrency hashes then costs HashConcurrency*19 MiB at most.
// Config.HashMemoryKiB and HashTime replace its memory and passes.
var defaultArgon = argonParams{memoryKiB: DefaultHashMemoryKiB, time: DefaultHashTime,
	threads: 1, saltLen: 16, keyLen: 32}

var b64 = base64.RawStdEncoding

// hasher hashes and verifies passwords with at most cap(sem) running at once,
// because each hash holds memoryKiB of memory and a core for its duration.
type hasher struct {
	params argonParams
	sem    chan struct{}
	// dummy is a valid hash of no real password: verifying an unknown user
	// against it costs the same as a wrong password for a real one.
	dummy string
}

func newHasher(p argonParams, concurrency int) (*hasher, error) {
	h := &hasher{params: p, sem: make(chan struct{}, concurrency)}
	dummy, err := h.encode([]byte("resonance-unknown-user"))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// acquire waits for a hashing slot until ctx ends.
func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: password hashing queue: %w", ErrBusy, ctx.Err())
	}
}

func (h *hasher) release() { <-h.sem }

// hash returns the encoded argon2id hash of password with a random salt.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.encode([]byte(password))
}

func (h *hasher) encode(password []byte) (string, error) {
	p := h.params
	salt := make([]byte, p.saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("logic: password salt: %w", err)
	}
	key := argon2.IDKey(password, salt, p.time, p.memoryKiB, p.threads, p.keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.memoryKiB, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verify reports whether password matches encoded. An empty encoded (unknown
// user) is checked against the dummy hash and always fails, at the same cost.
func (h *hasher) verify(ctx context.Context, password, encoded string) (bool, error) {
	known := encoded != ""
	if !known {
		encoded = h.dummy
	}
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), salt, p.time, p.memoryKiB, p.threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && known, nil
}

// decodeHash parses "$argon2id$v=19$m=..,t=..,p=..$salt$key".
func decodeHash(encoded string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errBadHash
	}
	_, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memoryKiB, &p.time, &p.threads)
	if err != nil || p.memoryKiB == 0 || p.time == 0 || p.threads == 0 {
		return p, nil, nil, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, errBadHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) == 0 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
