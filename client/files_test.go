package client_test

import (
	"testing"

	"github.com/resonance-im/resonance/client"
)

// MimeOf gives what the server takes: a bare media type, without the
// charset Go's table adds to text types.
func TestMimeOf(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{name: "notes.txt", want: "text/plain"},
		{name: "cat.PNG", want: "image/png"},
		{name: "report.pdf", want: "application/pdf"},
		{name: "blob", want: "application/octet-stream"},
		{name: "x.unknownext", want: "application/octet-stream"},
	} {
		if got := client.MimeOf(tc.name); got != tc.want {
			t.Errorf("MimeOf(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
