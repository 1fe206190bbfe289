// Package problem writes RFC 9457 problem details (application/problem+json),
// the error body an API answers with.
package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem document. Extension members go in Extra
// and are written beside the standard ones.
type Details struct {
	Type     string         `json:"type,omitempty"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Extra    map[string]any `json:"-"`
}

// MarshalJSON flattens Extra beside the standard members; a standard member
// always wins over an extension of the same name.
func (d Details) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(d.Extra)+5)
	for k, v := range d.Extra {
		m[k] = v
	}
	type plain Details
	b, err := json.Marshal(plain(d))
	if err != nil {
		return nil, err
	}
	var std map[string]any
	if err := json.Unmarshal(b, &std); err != nil {
		return nil, err
	}
	for k, v := range std {
		m[k] = v
	}
	return json.Marshal(m)
}

// Write answers with the problem; Title defaults to the status text.
func Write(w http.ResponseWriter, d Details) {
	if d.Title == "" {
		d.Title = http.StatusText(d.Status)
	}
	if d.Type == "" {
		d.Type = "about:blank"
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(d)
}

// Error answers with a problem of the given status and detail.
func Error(w http.ResponseWriter, status int, detail string) {
	Write(w, Details{Status: status, Detail: detail})
}
