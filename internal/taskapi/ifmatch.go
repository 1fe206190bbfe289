package taskapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/handoff-dev/handoff/internal/web"
)

// maxIfMatchTags bounds the entity tags an If-Match may list.
const maxIfMatchTags = 20

// precondition is an If-Match field (RFC 9110 §13.1.1): absent, "*", or a
// list of entity tags.
type precondition struct {
	present bool
	any     bool     // "*"
	tags    []string // as sent, weak ones (W/"…") included
}

var errBadIfMatch = errors.New(`If-Match must be "*" or a comma-separated list of entity tags ("…" or W/"…"), at most 20`)

// parseIfMatch reads every If-Match field line as one list.
func parseIfMatch(h http.Header) (precondition, error) {
	lines := h.Values("If-Match")
	if len(lines) == 0 {
		return precondition{}, nil
	}
	p := precondition{present: true}
	s := strings.Join(lines, ",")
	if strings.TrimSpace(s) == "*" {
		p.any = true
		return p, nil
	}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		tag, rest, ok := cutEntityTag(s)
		if !ok || len(p.tags) == maxIfMatchTags {
			return precondition{}, errBadIfMatch
		}
		p.tags = append(p.tags, tag)
		s = strings.TrimLeft(rest, " \t")
		if s != "" && s[0] != ',' {
			return precondition{}, errBadIfMatch
		}
	}
	if len(p.tags) == 0 {
		return precondition{}, errBadIfMatch
	}
	return p, nil
}

// cutEntityTag cuts the entity tag s begins with: [W/] DQUOTE *etagc DQUOTE,
// etagc being %x21 / %x23-7E / obs-text.
func cutEntityTag(s string) (tag, rest string, ok bool) {
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s) < start+2 || s[start] != '"' {
		return "", "", false
	}
	for i := start + 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i+1], s[i+1:], true
		case c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80:
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// strong lists the tags that can match: If-Match compares strongly, so a
// weak tag never does.
func (p precondition) strong() []string {
	var out []string
	for _, t := range p.tags {
		if !strings.HasPrefix(t, "W/") {
			out = append(out, t)
		}
	}
	return out
}

// storeIfMatch is the one ETag the store's conditional write checks for p:
// "" for none or "*" (any current task), the tag when one can match, the
// task's current ETag when the list holds it (the write still fails if
// the task changes meanwhile), else a tag that cannot match.
func (a *App) storeIfMatch(ctx context.Context, tenantID, id string, p precondition) (string, error) {
	strong := p.strong()
	switch {
	case !p.present || p.any:
		return "", nil
	case len(strong) == 0:
		return p.tags[0], nil // weak: never equal to a (strong) stored ETag
	case len(strong) == 1:
		return strong[0], nil
	}
	cur, err := a.store.GetTask(ctx, tenantID, id)
	if err != nil {
		return "", err
	}
	if slices.Contains(strong, cur.ETag) {
		return cur.ETag, nil
	}
	return strong[0], nil
}

// ifMatchOrAnswer resolves the request's If-Match, answering 400 for a
// malformed one (or a store error) itself.
func (a *App) ifMatchOrAnswer(w http.ResponseWriter, r *http.Request, tenantID, id string) (string, bool) {
	p, err := parseIfMatch(r.Header)
	if err != nil {
		web.BadRequest(w, err.Error())
		return "", false
	}
	m, err := a.storeIfMatch(r.Context(), tenantID, id, p)
	if err != nil {
		web.StoreError(w, err)
		return "", false
	}
	return m, true
}
