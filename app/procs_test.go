package app

import "testing"

func TestConfig_Procs(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		cpus int
		want int
	}{
		{"all: CPUs, a loop per CPU, blocking threads", Config{Role: RoleAll}, 2,
			2 + 2 + blockingThreads},
		{"gateway with its loops set", func() Config {
			c := Config{Role: RoleGateway}
			c.Gateway.NumEventLoop = 3
			return c
		}(), 2, 2 + 3 + blockingThreads},
		{"logic has no event loops", Config{Role: RoleLogic}, 4, 4 + blockingThreads},
		{"task has no event loops", Config{Role: RoleTask}, 1, 1 + blockingThreads},
		{"--max-procs wins", Config{Role: RoleAll, MaxProcs: 3}, 2, 3},
	}
	for _, tc := range cases {
		if got := tc.cfg.Procs(tc.cpus); got != tc.want {
			t.Errorf("%s: Procs(%d) = %d, want %d", tc.name, tc.cpus, got, tc.want)
		}
	}
}
