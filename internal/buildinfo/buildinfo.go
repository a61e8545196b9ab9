// Package buildinfo says which build of Resonance is running, from what the
// Go toolchain recorded in the binary: the module version, the VCS revision
// and time, whether the tree had uncommitted changes, and the Go version.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Info is what the binary records of its build; a field it does not know
// is empty.
type Info struct {
	Version  string // the module version: a tag, or "(devel)" for a local build
	Revision string // the VCS commit, in full
	Time     string // the commit's time, RFC 3339
	Modified bool   // built from a tree with uncommitted changes
	Go       string // the Go toolchain's version
}

// Read returns the build's Info.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{}
	}
	info := Info{Version: bi.Main.Version, Go: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the build in one line, for `resonance version` and the start
// log: "v1.2.3 (5014d19, 2026-12-06T14:58:25Z, go1.26.8)", the revision
// shortened to 12 characters and marked "+modified" when the tree was.
func (i Info) String() string {
	var parts []string
	if rev := i.Revision; rev != "" {
		rev = rev[:min(len(rev), 12)]
		if i.Modified {
			rev += "+modified"
		}
		parts = append(parts, rev)
	}
	if i.Time != "" {
		parts = append(parts, i.Time)
	}
	if i.Go != "" {
		parts = append(parts, i.Go)
	}
	v := i.Version
	if v == "" {
		v = "unknown"
	}
	if len(parts) == 0 {
		return v
	}
	return v + " (" + strings.Join(parts, ", ") + ")"
}
