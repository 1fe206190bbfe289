package downstream

import (
	"strconv"
	"testing"
	"time"
)

func TestLRUBoundAndOrder(t *testing.T) {
	c := newLRU[int](3)
	now := time.Now()
	for i := range 3 {
		c.put(strconv.Itoa(i), i, time.Time{})
	}
	c.get("0", now) // 0 is now the most recent; 1 the least
	if ev := c.put("3", 3, time.Time{}); len(ev) != 1 || ev[0] != 1 {
		t.Fatalf("evicted %v, want [1]", ev)
	}
	if _, ok := c.get("1", now); ok {
		t.Error("evicted entry still present")
	}
	for _, k := range []string{"0", "2", "3"} {
		if _, ok := c.get(k, now); !ok {
			t.Errorf("%s missing", k)
		}
	}
	if c.len() != 3 {
		t.Errorf("len = %d, want 3", c.len())
	}
	c.put("2", 20, time.Time{}) // update in place, no eviction
	if v, _ := c.get("2", now); v != 20 || c.len() != 3 {
		t.Errorf("update: %d, len %d", v, c.len())
	}
}

func TestLRUExpiry(t *testing.T) {
	c := newLRU[string](10)
	now := time.Now()
	c.put("k", "v", now.Add(time.Minute))
	if _, ok := c.get("k", now.Add(59*time.Second)); !ok {
		t.Fatal("entry gone before it expired")
	}
	if _, ok := c.get("k", now.Add(time.Minute)); ok {
		t.Fatal("entry served at its expiry")
	}
	if c.len() != 0 {
		t.Errorf("expired entry kept: len %d", c.len())
	}
	c.put("a", "1", time.Time{})
	c.clear()
	if c.len() != 0 {
		t.Error("clear left entries")
	}
}
