package taskapi

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/handoff-dev/handoff/handler/problem"
	"github.com/handoff-dev/handoff/internal/store"
)

// Text a title or description may not hold: what reads as something other
// than what it is (terminal escapes, line breaks in a one-line field, NUL)
// and the invisible Unicode controls that reorder text on screen
// ("invoice\u202Egnp.exe" shows as "invoiceexe.png"). Right-to-left
// scripts themselves are fine: only the invisible controls are refused.

// forbiddenRune names the kind of r if a field may not hold it; multiline
// fields (descriptions) may hold tab and line feed.
func forbiddenRune(r rune, multiline bool) string {
	switch {
	case multiline && (r == '\t' || r == '\n'):
		return ""
	case r < 0x20 || r == 0x7f:
		return "a control character (C0)"
	case r >= 0x80 && r <= 0x9f:
		return "a control character (C1)"
	case r >= 0x202a && r <= 0x202e: // LRE RLE PDF LRO RLO
		return "a Unicode bidirectional embedding or override"
	case r >= 0x2066 && r <= 0x2069: // LRI RLI FSI PDI
		return "a Unicode bidirectional isolate"
	case r == 0x200e || r == 0x200f || r == 0x061c: // LRM RLM ALM
		return "a Unicode bidirectional mark"
	}
	return ""
}

// textProblem is why field's value s is refused, "" if it is not.
func textProblem(field, s string, multiline bool) string {
	if !utf8.ValidString(s) {
		return field + " is not valid UTF-8"
	}
	pos := 0
	for _, r := range s {
		pos++
		if kind := forbiddenRune(r, multiline); kind != "" {
			return fmt.Sprintf("%s must not contain %s: U+%04X at character %d", field, kind, r, pos)
		}
	}
	return ""
}

// validTitle answers 400 naming the title unless it is 1 to 200
// characters (without surrounding spaces) of allowed text.
func validTitle(w http.ResponseWriter, title string) bool {
	if p := textProblem("title", title, false); p != "" {
		problem.Error(w, http.StatusBadRequest, p)
		return false
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(title)); n < 1 || n > store.MaxTitleLength {
		problem.Error(w, http.StatusBadRequest, fmt.Sprintf("title must be 1 to %d characters", store.MaxTitleLength))
		return false
	}
	return true
}

// validDescription answers 400 naming the description unless it is at most
// 2000 characters of allowed text (tab and line feed included).
func validDescription(w http.ResponseWriter, d string) bool {
	if p := textProblem("description", d, true); p != "" {
		problem.Error(w, http.StatusBadRequest, p)
		return false
	}
	if utf8.RuneCountInString(d) > store.MaxDescriptionLength {
		problem.Error(w, http.StatusBadRequest, fmt.Sprintf("description must be at most %d characters", store.MaxDescriptionLength))
		return false
	}
	return true
}
