package logic

import "testing"

func TestClientHost_KeysIPv6ByPrefix(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"203.0.113.7:5555", "203.0.113.7"},
		{"[::ffff:203.0.113.7]:5555", "203.0.113.7"}, // v4-mapped is the v4 client
		{"[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:443", "2001:db8:1:2::/64"}, // same /64, same budget
		{"[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"},
		{"gw-test", "gw-test"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := clientHost(tt.remote); got != tt.want {
			t.Errorf("clientHost(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
