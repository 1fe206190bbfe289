package store

import (
	"strings"
	"testing"
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
