package hub

import (
	"fmt"
	"testing"
)

// A subSet finds every channel added, in any order, and none removed.
func TestSubSet(t *testing.T) {
	var set subSet
	order := []int{5, 1, 9, 3, 7, 0, 8, 2, 6, 4}
	for _, n := range order {
		set.add(&subscription{channel: fmt.Sprint("c", n)})
	}
	for _, n := range order {
		if sub := set.get(fmt.Sprint("c", n)); sub == nil || sub.channel != fmt.Sprint("c", n) {
			t.Fatalf("get(c%d) = %v after adding it", n, sub)
		}
	}
	if set.get("c10") != nil || set.get("") != nil {
		t.Fatal("get of a channel never added found one")
	}
	for _, n := range order[:5] {
		set.remove(fmt.Sprint("c", n))
		set.remove(fmt.Sprint("c", n)) // twice: nothing more goes
	}
	if len(set) != 5 {
		t.Fatalf("%d left after removing 5 of 10", len(set))
	}
	for i, n := range order {
		if found := set.get(fmt.Sprint("c", n)) != nil; found != (i >= 5) {
			t.Errorf("c%d found %v after removing the first five", n, found)
		}
	}
}
