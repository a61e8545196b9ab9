package mq

import (
	"strings"
	"testing"
)

func TestNames_EphemeralSubjectsOutsideStream(t *testing.T) {
	cases := []struct {
		name  string
		names Names
	}{
		{name: "default", names: NewNames("")},
		{name: "dotted prefix", names: NewNames("t.run1")},
		{name: "hand built", names: Names{Subject: "x", Consumer: "c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			streamPrefix := tc.names.Subject + "."
			for _, subj := range []string{tc.names.NotifySubject(), tc.names.PresenceSubject()} {
				if strings.HasPrefix(subj, streamPrefix) {
					t.Errorf("%s is captured by the stream's %s>", subj, streamPrefix)
				}
			}
			if tc.names.NotifySubject() == tc.names.PresenceSubject() {
				t.Error("notify and presence share a subject")
			}
		})
	}
}
