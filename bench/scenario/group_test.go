package scenario

import (
	"errors"
	"testing"
)

func TestSeqSet_AddsOnceAndGrows(t *testing.T) {
	var s seqSet
	for _, seq := range []int64{1, 63, 64, 500} {
		if !s.add(seq) {
			t.Fatalf("add(%d) of a new seq reported a copy", seq)
		}
		if s.add(seq) {
			t.Fatalf("second add(%d) reported a new seq", seq)
		}
	}
	for _, tc := range []struct {
		seq  int64
		want bool
	}{{seq: 1, want: true}, {seq: 2, want: false}, {seq: 64, want: true},
		{seq: 500, want: true}, {seq: 501, want: false}, {seq: 100000, want: false}} {
		if got := s.has(tc.seq); got != tc.want {
			t.Errorf("has(%d) = %v, want %v", tc.seq, got, tc.want)
		}
	}
}

func TestGroupConfig_Defaults(t *testing.T) {
	tests := []struct {
		name       string
		cfg        GroupConfig
		wantOnline int
		wantErr    bool
	}{
		{name: "defaults", cfg: GroupConfig{Addr: "a"}, wantOnline: 100},
		{name: "never fewer than 2 online", cfg: GroupConfig{Addr: "a", Size: 10, Online: 0.01},
			wantOnline: 2},
		{name: "all online", cfg: GroupConfig{Addr: "a", Size: 7, Online: 1}, wantOnline: 7},
		{name: "no address", cfg: GroupConfig{}, wantErr: true},
		{name: "share over 1", cfg: GroupConfig{Addr: "a", Online: 1.5}, wantErr: true},
		{name: "one member", cfg: GroupConfig{Addr: "a", Size: 1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.cfg.withDefaults()
			if tt.wantErr {
				if !errors.Is(err, ErrBadConfig) {
					t.Fatalf("err %v, want ErrBadConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.onlinePerGroup(); got != tt.wantOnline {
				t.Fatalf("online per group %d, want %d", got, tt.wantOnline)
			}
		})
	}
}
