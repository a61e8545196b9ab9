package config

import (
	"flag"
	"fmt"
	"regexp"
	"strings"
)

// PasswordEnv is resonance chat's password when --password is not given,
// so that it need not appear in the process list.
const PasswordEnv = EnvPrefix + "PASSWORD"

// testEnvPrefix starts the variables of the tests (a Redis or NATS to test
// against), which a test run's servers inherit.
const testEnvPrefix = EnvPrefix + "TEST_"

// ownEnv are the RESONANCE_ variables the program reads itself besides
// those of flags (EnvName): UnknownEnv passes over them.
var ownEnv = map[string]bool{PasswordEnv: true}

// maxSuggestDistance is how many edits away from a flag's variable a name
// may be for UnknownEnv to suggest that flag.
const maxSuggestDistance = 2

// UnknownEnv returns a warning for each variable of environ ("NAME=value",
// as os.Environ) that starts with EnvPrefix yet sets no flag of fs: a
// misspelled name would otherwise be ignored without a word, where the
// file refuses an unknown key. The nearest flag is suggested when one is
// close. It does not refuse them: other tools may set variables of their
// own. Call it once fs defines every flag, FileFlag included (Load).
func UnknownEnv(fs *flag.FlagSet, environ []string) []string {
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || ownEnv[name] ||
			strings.HasPrefix(name, testEnvPrefix) || setsFlag(fs, name) {
			continue
		}
		w := name + " matches no flag"
		if f := nearestFlag(fs, name, EnvName); f != "" {
			w += fmt.Sprintf(" (did you mean %s, --%s?)", EnvName(f), f)
		}
		warnings = append(warnings, w+"; ignored")
	}
	return warnings
}

// setsFlag reports whether the variable name is that of a flag of fs.
func setsFlag(fs *flag.FlagSet, name string) bool {
	found := false
	fs.VisitAll(func(f *flag.Flag) { found = found || EnvName(f.Name) == name })
	return found
}

// nearestFlag returns the flag whose spelling as form (EnvName for a
// variable, the name itself for a file key or a command-line flag) is
// fewest edits from name, within maxSuggestDistance, or "".
func nearestFlag(fs *flag.FlagSet, name string, form func(string) string) string {
	best, bestDist := "", maxSuggestDistance+1
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(form(f.Name), name); d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	return best
}

// suggest returns " (did you mean <prefix><flag>?)" for the flag nearest
// to key as spelled in a file or on the command line, or "" when none is
// close.
func suggest(fs *flag.FlagSet, key, prefix string) string {
	f := nearestFlag(fs, key, func(n string) string { return n })
	if f == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, f)
}

// undefinedFlag is how package flag starts the error for a flag fs lacks,
// the flag following as "-name" or "--name" as it was given.
const undefinedFlag = "flag provided but not defined: "

// withSuggestion adds to a parse error for an undefined flag the nearest
// defined one: package flag names only what it did not find.
func withSuggestion(fs *flag.FlagSet, err error) error {
	given, ok := strings.CutPrefix(err.Error(), undefinedFlag)
	if !ok {
		return err
	}
	if s := suggest(fs, strings.TrimLeft(given, "-"), "--"); s != "" {
		return fmt.Errorf("%w%s", err, s)
	}
	return err
}

// editDistance is the Levenshtein distance between a and b, in bytes (the
// names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Origins says where each flag that the command line did not set got its
// value: its environment variable, or the file's path. A flag at its
// default is not in it.
type Origins map[string]string

// flagRE finds the flags an error names, as "--name".
var flagRE = regexp.MustCompile(`--([a-z0-9][a-z0-9-]*)`)

// Explain adds to err where the flags it names got their values, when not
// from the command line, where a user would look first: "... (--addr came
// from RESONANCE_ADDR)". err is wrapped, nil stays nil.
func (o Origins) Explain(err error) error {
	if err == nil {
		return nil
	}
	var notes []string
	seen := make(map[string]bool)
	for _, m := range flagRE.FindAllStringSubmatch(err.Error(), -1) {
		name := m[1]
		if from, ok := o[name]; ok && !seen[name] {
			seen[name] = true
			notes = append(notes, fmt.Sprintf("--%s came from %s", name, from))
		}
	}
	if len(notes) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(notes, "; "))
}

// dropCommandLine removes from o the flags args sets, which override the
// file and the environment.
func (o Origins) dropCommandLine(args []string) {
	for name := range o {
		if onCommandLine(args, name) {
			delete(o, name)
		}
	}
}

// onCommandLine reports whether args give flag name, with or without a
// value (a bool flag), before "--".
func onCommandLine(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		trimmed := strings.TrimLeft(a, "-")
		if dashes := len(a) - len(trimmed); dashes == 0 || dashes > 2 {
			continue
		}
		if trimmed == name || strings.HasPrefix(trimmed, name+"=") {
			return true
		}
	}
	return false
}
