package logic

import "github.com/resonance-im/resonance/codec"

// replyBudget is the most body bytes a paged reply may take. Clients refuse
// frames over codec.DefaultMaxBody, in both directions, so a page of large
// messages is cut short (with has_more set) rather than sent as a frame
// nobody can read. The margin covers the reply's own fields and list header.
const replyBudget = codec.DefaultMaxBody - 1024

// fitFront returns how many items from the front of items fit in budget
// bytes, at least one so that a page always makes progress (one item is
// bounded by MaxContent, far below the budget).
func fitFront[T codec.Body](items []T, budget int) int {
	used := 0
	for i, it := range items {
		used += it.BLength()
		if used > budget && i > 0 {
			return i
		}
	}
	return len(items)
}

// fitBack is fitFront counted from the end: how many items at the back fit.
func fitBack[T codec.Body](items []T, budget int) int {
	used := 0
	for i := len(items) - 1; i >= 0; i-- {
		used += items[i].BLength()
		if used > budget && i < len(items)-1 {
			return len(items) - 1 - i
		}
	}
	return len(items)
}
