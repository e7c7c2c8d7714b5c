package hub

import (
	"slices"
	"strings"
)

// subSet is a session's subscriptions, sorted by channel. Most sessions
// hold one or a few: a sorted slice costs a pointer each, where a map
// costs some 250 bytes from its first entry. Lookups are binary searches;
// an insert or a removal moves at most MaxSubscriptions pointers. Owned by
// the session's worker, like the subscriptions in it.
type subSet []*subscription

// find returns where channel is or would be, and whether it is there.
func (set subSet) find(channel string) (int, bool) {
	return slices.BinarySearchFunc(set, channel, func(sub *subscription, channel string) int {
		return strings.Compare(sub.channel, channel)
	})
}

// get returns the subscription to channel, or nil.
func (set subSet) get(channel string) *subscription {
	if i, ok := set.find(channel); ok {
		return set[i]
	}
	return nil
}

// add inserts sub, whose channel must not be in set yet.
func (set *subSet) add(sub *subscription) {
	i, _ := set.find(sub.channel)
	*set = slices.Insert(*set, i, sub)
}

// remove deletes the subscription to channel, if any.
func (set *subSet) remove(channel string) {
	if i, ok := set.find(channel); ok {
		*set = slices.Delete(*set, i, i+1)
	}
}
