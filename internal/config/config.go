// Package config fills a flag.FlagSet from, in increasing precedence, the
// flags' defaults, an optional YAML file, RESONANCE_* environment variables and
// the command line. Every setting is a flag, so there is one list of names:
// flag "logic-addr" is environment RESONANCE_LOGIC_ADDR and file key
// "logic-addr".
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FileFlag is the flag (and RESONANCE_CONFIG the variable) naming the file.
const FileFlag = "config"

// EnvPrefix starts every environment variable the loader reads.
const EnvPrefix = "RESONANCE_"

// ErrUnknownKey means the file names a setting that is not a flag.
var ErrUnknownKey = errors.New("config: unknown setting")

// EnvName returns the environment variable that sets flag name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Load applies the file, the environment and args to fs. fs must already
// define every setting; Load defines FileFlag itself if fs lacks it.
func Load(fs *flag.FlagSet, args []string) error {
	_, err := LoadOrigins(fs, args)
	return err
}

// LoadOrigins is Load, and says where the flags not given in args got their
// values, so that a later check can name the variable or file of a value
// it refuses (Origins.Explain).
func LoadOrigins(fs *flag.FlagSet, args []string) (Origins, error) {
	origins := make(Origins)
	if fs.Lookup(FileFlag) == nil {
		fs.String(FileFlag, "", "optional YAML file of settings (flag names as keys)")
	}
	path := os.Getenv(EnvName(FileFlag))
	if p, ok := scanFlag(args, FileFlag); ok {
		path = p
	}
	if path != "" {
		if err := applyFile(fs, path, origins); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(fs, origins); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, withSuggestion(fs, err)
	}
	origins.dropCommandLine(args)
	return origins, nil
}

// applyFile sets flags from a flat YAML map of flag name to value.
func applyFile(fs *flag.FlagSet, path string, origins Origins) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	var kv map[string]yaml.Node
	if err := yaml.Unmarshal(raw, &kv); err != nil {
		return fmt.Errorf("config: parse %s: %w", path, err)
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		node := kv[k]
		if fs.Lookup(k) == nil || k == FileFlag {
			return fmt.Errorf("%w %q in %s%s", ErrUnknownKey, k, path, suggest(fs, k, ""))
		}
		if node.Kind != yaml.ScalarNode {
			return fmt.Errorf("config: %s: %q must be a single value", path, k)
		}
		if err := fs.Set(k, node.Value); err != nil {
			return fmt.Errorf("config: %s: invalid value %q for %s: %w%s", path, node.Value, k, err,
				unitHint(fs.Lookup(k), node.Value))
		}
		origins[k] = path
	}
	return nil
}

func applyEnv(fs *flag.FlagSet, origins Origins) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(EnvName(f.Name))
		if !ok || err != nil || f.Name == FileFlag {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("config: invalid value %q for %s: %w%s", v, EnvName(f.Name), e,
				unitHint(f, v))
			return
		}
		origins[f.Name] = EnvName(f.Name)
	})
	return err
}

// unitHint explains a bare number given to a duration flag: "30" is not a
// duration, "30s" is.
func unitHint(f *flag.Flag, v string) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	if _, ok := g.Get().(time.Duration); !ok {
		return ""
	}
	if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
		return ""
	}
	return fmt.Sprintf(" (a duration needs its unit, e.g. %ss)", strings.TrimSpace(v))
}

// scanFlag finds -name value, --name value, -name=value or --name=value in
// args before the flag set parses them, so the file is applied first.
func scanFlag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		trimmed := strings.TrimLeft(a, "-")
		if len(a)-len(trimmed) == 0 || len(a)-len(trimmed) > 2 {
			continue
		}
		if v, ok := strings.CutPrefix(trimmed, name+"="); ok {
			return v, true
		}
		if trimmed == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}
