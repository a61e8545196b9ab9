package tokengen

import (
	"encoding/base64"
	"encoding/binary"
	"testing"
)

// token returns an access token of payload with a made-up signature: the
// reader never checks it.
func token(payload []byte) string {
	return base64.RawURLEncoding.EncodeToString(payload) + ".c2ln"
}

func TestGeneration(t *testing.T) {
	good := make([]byte, HeaderLen, HeaderLen+5)
	good[0] = Version
	binary.BigEndian.PutUint64(good[GenerationOffset:], 42)
	good = append(good, "phone"...)
	oldVersion := append([]byte{1}, good[1:]...)
	cases := []struct {
		name  string
		token string
		want  int64
	}{
		{"access token", token(good), 42},
		{"no device", token(good[:HeaderLen]), 42},
		{"short", token(good[:HeaderLen-1]), 0},
		{"other version", token(oldVersion), 0},
		{"no signature", base64.RawURLEncoding.EncodeToString(good), 0},
		{"not base64", "!!!.c2ln", 0},
		{"refresh token", "rt1.abc.def", 0},
		{"empty", "", 0},
	}
	for _, c := range cases {
		if got := Generation(c.token); got != c.want {
			t.Errorf("%s: Generation = %d, want %d", c.name, got, c.want)
		}
	}
}
