package table

import (
	"strings"
	"testing"
)

// TestTableAccountName: a storage account name is 3 to 24 lower-case
// letters and digits.
func TestTableAccountName(t *testing.T) {
	for _, name := range []string{"abc", "a0z9", strings.Repeat("a", 24), "0123456789"} {
		if !validAccountName(name) {
			t.Errorf("validAccountName(%q) = false", name)
		}
	}
	for _, name := range []string{"", "ab", strings.Repeat("a", 25), "Abc", "ab-c", "ab_c", "abc.", "ab`", "ab{", "ab/", "ab:", "abé"} {
		if validAccountName(name) {
			t.Errorf("validAccountName(%q) = true", name)
		}
	}
}
