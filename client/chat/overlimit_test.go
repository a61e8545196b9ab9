package chat

import "testing"

// A refusal whose two sizes round to the same text says them in bytes: a
// new-user trial read "b2040.bin (2.0 KiB) is over the server's limit of
// 2.0 KiB".
func TestOverLimit_SaysBytesWhenTheSizesRoundAlike(t *testing.T) {
	tests := []struct {
		size, limit int64
		want        string
	}{
		{2040, 2000, "b.bin (2040 bytes) is over the server's limit of 2000 bytes; not sent"},
		{3 << 20, 2 << 20, "b.bin (3.0 MiB) is over the server's limit of 2.0 MiB; not sent"},
	}
	for _, tt := range tests {
		if got := overLimit("b.bin", tt.size, tt.limit).Error(); got != tt.want {
			t.Errorf("overLimit(%d, %d) = %q, want %q", tt.size, tt.limit, got, tt.want)
		}
	}
}
