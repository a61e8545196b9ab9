package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"
)

// parseArgs parses args into fs and then checks its numbers (checkNumbers),
// printing what it refuses to fs's output. done says the command ends here,
// with exit status code: 0 after -h, 2 on bad usage.
func parseArgs(fs *flag.FlagSet, args []string, zeroOK ...string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if err := checkNumbers(fs, zeroOK...); err != nil {
		fmt.Fprintf(fs.Output(), "bench: %s: %v\n", fs.Name(), err)
		return 2, true
	}
	return 0, false
}

// checkNumbers refuses the first numeric flag of fs (int, duration or
// float) that is negative, or zero unless zeroOK names it: only flags whose
// help gives 0 a meaning of its own may take it. The scenarios' configs
// take a zero field for its default and used to take a negative one so too,
// so a 0 given on the command line ran silently with the default
// (smoke --messages 0 sent 50 messages a user).
func checkNumbers(fs *flag.FlagSet, zeroOK ...string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		switch sign, ok := signOf(f.Value); {
		case !ok:
		case sign < 0:
			err = fmt.Errorf("--%s must not be negative, got %s", f.Name, f.Value)
		case sign == 0 && !slices.Contains(zeroOK, f.Name):
			err = fmt.Errorf("--%s must be above 0, got %s", f.Name, f.Value)
		}
	})
	return err
}

// signOf is -1, 0 or +1 for a numeric flag value; ok is false for others.
func signOf(v flag.Value) (sign int, ok bool) {
	g, ok := v.(flag.Getter)
	if !ok {
		return 0, false
	}
	switch n := g.Get().(type) {
	case int:
		return cmp.Compare(n, 0), true
	case time.Duration:
		return cmp.Compare(n, 0), true
	case float64:
		return cmp.Compare(n, 0), true
	}
	return 0, false
}
