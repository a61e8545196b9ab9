package buildinfo

import "testing"

func TestInfo_String(t *testing.T) {
	tests := []struct {
		name string
		info Info
		want string
	}{
		{"nothing recorded", Info{}, "unknown"},
		{"a local build", Info{Version: "(devel)", Revision: "5014d19aabbccddeeff00112233",
			Time: "2026-12-06T14:58:25Z", Modified: true, Go: "go1.26.8"},
			"(devel) (5014d19aabbc+modified, 2026-12-06T14:58:25Z, go1.26.8)"},
		{"a tagged build", Info{Version: "v1.2.3", Revision: "abc", Go: "go1.26.8"},
			"v1.2.3 (abc, go1.26.8)"},
		{"no VCS", Info{Version: "(devel)", Go: "go1.26.8"}, "(devel) (go1.26.8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.info.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// The test binary records its Go version at least.
func TestRead_KnowsTheGoVersion(t *testing.T) {
	if got := Read(); got.Go == "" {
		t.Fatalf("Read() = %+v, want the Go version", got)
	}
}
