package logic

import (
	"path/filepath"
	"testing"
)

// TestRelaySubject_MalformedPayload: an outbox row whose payload does not
// decode (a row written by hand, a damaged store) goes to partition 0, where
// task dead-letters it, rather than stopping the relay.
func TestRelaySubject_MalformedPayload(t *testing.T) {
	e := newEnv(t, Config{DBDriver: DriverSQLite, DBDSN: filepath.Join(t.TempDir(), "l.db")})
	for _, payload := range [][]byte{{0xee, 0x30, 0x30, 0x30}, {0x0c, 0x00, 0x01}, nil} {
		var got string
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("relaySubject(%x) panicked: %v", payload, r)
				}
			}()
			got = e.svc.relaySubject(payload)
		}()
		if want := e.names.PartitionSubject(0); got != want {
			t.Errorf("relaySubject(%x) = %q, want %q", payload, got, want)
		}
	}
}
