// Package web holds the JSON request and response helpers the apps share.
package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/handoff-dev/handoff/handler/problem"
	"github.com/handoff-dev/handoff/internal/store"
)

// DecodeJSON reads exactly one JSON object into v, refusing unknown fields,
// trailing data and bodies over the server's limit. On failure it has
// answered 400 (or 413) with a problem saying what is wrong.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		problem.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", tooBig.Limit))
	case errors.Is(err, io.EOF):
		problem.Error(w, http.StatusBadRequest, "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		problem.Error(w, http.StatusBadRequest, "malformed JSON: the body ends before the object does")
	case errors.As(err, &syn):
		problem.Error(w, http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.As(err, &typ):
		problem.Error(w, http.StatusBadRequest, fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type))
	default:
		// Unknown fields ("json: unknown field \"x\"") and the like.
		problem.Error(w, http.StatusBadRequest, err.Error())
	}
	return false
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// StoreError answers a store failure: 404, 412, 400, 503 or 500.
func StoreError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		problem.Error(w, http.StatusNotFound, "not found")
	case errors.Is(err, store.ErrPreconditionFailed):
		problem.Error(w, http.StatusPreconditionFailed, "the resource changed since you read it (If-Match does not match its ETag); read it again")
	case errors.Is(err, store.ErrInvalid):
		problem.Error(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		problem.Error(w, http.StatusServiceUnavailable, "storage is temporarily unavailable; nothing was written")
	default:
		problem.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// Page reads limit and cursor query parameters; on a bad limit it answers 400.
func Page(w http.ResponseWriter, r *http.Request) (limit int, cursor string, ok bool) {
	cursor = r.URL.Query().Get("cursor")
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxPageSize {
			problem.Error(w, http.StatusBadRequest, fmt.Sprintf("limit must be from 1 to %d", store.MaxPageSize))
			return 0, "", false
		}
		limit = n
	}
	return limit, cursor, true
}

// List is the JSON shape of a page.
type List[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// NewList makes the JSON page of items; Items is never null.
func NewList[T any](items []T, next string) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, Next: next}
}

// BadRequest answers 400 with detail.
func BadRequest(w http.ResponseWriter, detail string) {
	problem.Error(w, http.StatusBadRequest, detail)
}
