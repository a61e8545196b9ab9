// Package run tracks the goroutines of a service so that shutdown can wait for
// every one of them.
package run

import (
	"sync"

	"github.com/rs/zerolog"
)

// Group starts goroutines and waits for them. The zero value is ready to use.
type Group struct {
	wg sync.WaitGroup
}

// Go runs fn in a new goroutine tracked by g. A panic in fn is logged with
// name and re-raised, so that a bug crashes loudly instead of hanging Wait.
func (g *Group) Go(log zerolog.Logger, name string, fn func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				log.Error().Str("goroutine", name).Interface("panic", r).Msg("goroutine panicked")
				panic(r)
			}
		}()
		fn()
	}()
}

// Wait blocks until every goroutine started by Go has returned.
func (g *Group) Wait() { g.wg.Wait() }
