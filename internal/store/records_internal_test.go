package store

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestIsID: only what NewID returns (2*idBytes lower-case hex digits) is an
// id; the Table store answers anything else ErrNotFound without a read.
func TestIsID(t *testing.T) {
	if id := NewID(); !IsID(id) {
		t.Errorf("IsID(NewID() = %q) = false", id)
	}
	ok := strings.Repeat("0123456789abcdef", 2*idBytes/16+1)[:2*idBytes]
	if !IsID(ok) {
		t.Errorf("IsID(%q) = false", ok)
	}
	for _, s := range []string{
		"", ok[1:], ok + "a",
		strings.Repeat("g", 2*idBytes), strings.Repeat("A", 2*idBytes), strings.Repeat("/", 2*idBytes),
		strings.Repeat(":", 2*idBytes), strings.Repeat("`", 2*idBytes),
		ok[:2*idBytes-1] + "G", "x" + ok[1:],
	} {
		if IsID(s) {
			t.Errorf("IsID(%q) = true", s)
		}
	}
}

// TestTruncate: a string of n bytes is kept whole; a longer one is cut at
// n bytes, or before, at the start of the rune n falls inside.
func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abc", 4, "abc"},
		{"abcd", 3, "abc"},
		{"abé", 3, "ab"}, // é is 2 bytes: cutting at 3 would split it
		{"abé", 4, "abé"},
		{"ééé", 5, "éé"},
		{"abc", 0, ""},
	} {
		if got := Truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
	long := strings.Repeat("x", MaxErrorLength)
	if got := Truncate(long, MaxErrorLength); got != long {
		t.Errorf("a reason of MaxErrorLength bytes was cut to %d", len(got))
	}
}

// TestEventFieldBound: an event's fields may be maxEventField characters
// (runes, not bytes) long, not one more.
func TestEventFieldBound(t *testing.T) {
	at := strings.Repeat("é", maxEventField)
	for _, ev := range []OutboxEvent{
		{EventID: at, Action: "a", Actor: "b"},
		{EventID: "e", Action: at, Actor: "b"},
		{EventID: "e", Action: "a", Actor: at},
	} {
		if _, err := NormEvent(&ev, "tenant", "task"); err != nil {
			t.Errorf("fields of %d characters: %v", maxEventField, err)
		}
	}
	for _, ev := range []OutboxEvent{
		{EventID: at + "x", Action: "a", Actor: "b"},
		{EventID: "e", Action: at + "x", Actor: "b"},
		{EventID: "e", Action: "a", Actor: at + "x"},
		{EventID: "e\xff", Action: "a", Actor: "b"},
	} {
		if _, err := NormEvent(&ev, "tenant", "task"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 200 characters") {
			t.Errorf("event %+v: %v, want ErrInvalid naming the bound", ev, err)
		}
	}
}

// TestEventCursorBound: an outbox cursor carries an event id of up to
// 4*maxEventField bytes (maxEventField runes of up to 4 bytes each).
func TestEventCursorBound(t *testing.T) {
	at := time.UnixMicro(1_700_000_000_000_000).UTC()
	longest := strings.Repeat("😀", maxEventField) // 4 bytes each
	c, ok, err := DecodeEventCursor(EncodeCursor(at, longest))
	if err != nil || !ok || c.ID != longest || !c.At.Equal(at) {
		t.Errorf("a cursor of a %d-byte id: %+v %v %v", len(longest), c, ok, err)
	}
	for _, id := range []string{longest + "x", "", "bad\xff"} {
		if _, _, err := DecodeEventCursor(EncodeCursor(at, id)); !errors.Is(err, ErrInvalid) {
			t.Errorf("a cursor of id %q (%d bytes): %v, want ErrInvalid", id[:min(len(id), 8)], len(id), err)
		}
	}
}

// TestTimeOrderedIDs: an ordered id (NewOrderedID) starts with its time in Unix milliseconds, so
// ids of later milliseconds sort after earlier ones; the rest is random
// (no two of many ids alike, even within a millisecond); a UUIDv7 has the
// same order, its version and variant.
func TestTimeOrderedIDs(t *testing.T) {
	at := time.UnixMilli(1_764_547_200_123) // 2025-12-01T00:00:00.123Z
	a, b := timeOrdered(at), timeOrdered(at.Add(time.Millisecond))
	if got := fmt.Sprintf("%x", a[:idTimeBytes]); got != fmt.Sprintf("%012x", at.UnixMilli()) {
		t.Errorf("time part %s, want the Unix milliseconds %012x", got, at.UnixMilli())
	}
	if !(hex.EncodeToString(a) < hex.EncodeToString(b)) {
		t.Errorf("an id of a later millisecond sorts first: %x >= %x", a, b)
	}
	seen := map[string]bool{}
	for range 10_000 {
		id := hex.EncodeToString(timeOrdered(at))
		if seen[id] {
			t.Fatalf("id %s made twice in one millisecond", id)
		}
		seen[id] = true
	}
	if id := NewOrderedID(); !IsID(id) {
		t.Errorf("NewOrderedID() = %q, not an id", id)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	first := NewUUIDv7()
	time.Sleep(2 * time.Millisecond) // a later millisecond (order, not timing, is checked)
	second := NewUUIDv7()
	if !uuid.MatchString(first) || !uuid.MatchString(second) {
		t.Errorf("NewUUIDv7() = %q, %q: not UUIDv7s", first, second)
	}
	if !(first < second) {
		t.Errorf("a later UUIDv7 sorts first: %s >= %s", first, second)
	}
}
