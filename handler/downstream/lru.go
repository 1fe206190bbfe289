package downstream

import (
	"container/list"
	"strings"
	"sync"
	"time"
)

// lru is a bounded least-recently-used map whose entries also expire. It is
// safe for concurrent use.
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front is most recent
	items map[string]*list.Element
}

type lruEntry[V any] struct {
	key     string
	value   V
	expires time.Time // zero: never
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

// get returns the value unless it is absent or expired at now.
func (c *lru[V]) get(key string, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[V])
	if !e.expires.IsZero() && !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.value, true
}

// put stores value until expires (zero: until evicted), evicting the least
// recently used entries beyond the bound. It returns what it evicted.
func (c *lru[V]) put(key string, value V, expires time.Time) []V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*lruEntry[V])
		e.value, e.expires = value, expires
		c.ll.MoveToFront(el)
		return nil
	}
	c.items[key] = c.ll.PushFront(&lruEntry[V]{key: key, value: value, expires: expires})
	var evicted []V
	for c.ll.Len() > c.max {
		el := c.ll.Back()
		c.ll.Remove(el)
		e := el.Value.(*lruEntry[V])
		delete(c.items, e.key)
		evicted = append(evicted, e.value)
	}
	return evicted
}

func (c *lru[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// clear empties the cache.
func (c *lru[V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	c.items = map[string]*list.Element{}
}

// delete drops key, if present.
func (c *lru[V]) delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}

// deletePrefix drops every key that starts with prefix.
func (c *lru[V]) deletePrefix(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, el := range c.items {
		if strings.HasPrefix(key, prefix) {
			c.ll.Remove(el)
			delete(c.items, key)
		}
	}
}
