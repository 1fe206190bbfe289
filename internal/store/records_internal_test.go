package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestIsID: only what newID returns (2*idBytes lower-case hex digits) is an
// id; the Table store answers anything else ErrNotFound without a read.
func TestIsID(t *testing.T) {
	if id := newID(); !isID(id) {
		t.Errorf("isID(newID() = %q) = false", id)
	}
	ok := strings.Repeat("0123456789abcdef", 2*idBytes/16+1)[:2*idBytes]
	if !isID(ok) {
		t.Errorf("isID(%q) = false", ok)
	}
	for _, s := range []string{
		"", ok[1:], ok + "a",
		strings.Repeat("g", 2*idBytes), strings.Repeat("A", 2*idBytes), strings.Repeat("/", 2*idBytes),
		strings.Repeat(":", 2*idBytes), strings.Repeat("`", 2*idBytes),
		ok[:2*idBytes-1] + "G", "x" + ok[1:],
	} {
		if isID(s) {
			t.Errorf("isID(%q) = true", s)
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
		if got := truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
	long := strings.Repeat("x", maxErrorLength)
	if got := truncate(long, maxErrorLength); got != long {
		t.Errorf("a reason of maxErrorLength bytes was cut to %d", len(got))
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
		if _, err := normEvent(&ev, "tenant", "task"); err != nil {
			t.Errorf("fields of %d characters: %v", maxEventField, err)
		}
	}
	for _, ev := range []OutboxEvent{
		{EventID: at + "x", Action: "a", Actor: "b"},
		{EventID: "e", Action: at + "x", Actor: "b"},
		{EventID: "e", Action: "a", Actor: at + "x"},
		{EventID: "e\xff", Action: "a", Actor: "b"},
	} {
		if _, err := normEvent(&ev, "tenant", "task"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 200 characters") {
			t.Errorf("event %+v: %v, want ErrInvalid naming the bound", ev, err)
		}
	}
}

// TestEventCursorBound: an outbox cursor carries an event id of up to
// 4*maxEventField bytes (maxEventField runes of up to 4 bytes each).
func TestEventCursorBound(t *testing.T) {
	at := time.UnixMicro(1_700_000_000_000_000).UTC()
	longest := strings.Repeat("😀", maxEventField) // 4 bytes each
	c, ok, err := decodeEventCursor(encodeCursor(at, longest))
	if err != nil || !ok || c.id != longest || !c.at.Equal(at) {
		t.Errorf("a cursor of a %d-byte id: %+v %v %v", len(longest), c, ok, err)
	}
	for _, id := range []string{longest + "x", "", "bad\xff"} {
		if _, _, err := decodeEventCursor(encodeCursor(at, id)); !errors.Is(err, ErrInvalid) {
			t.Errorf("a cursor of id %q (%d bytes): %v, want ErrInvalid", id[:min(len(id), 8)], len(id), err)
		}
	}
}
