// Package web holds the JSON request and response helpers the apps share.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/handoff-dev/handoff/handler/problem"
	"github.com/handoff-dev/handoff/internal/store"
)

// DecodeJSON reads exactly one JSON object into v, strictly: valid UTF-8
// (no lone surrogate escapes either), no duplicate or case-variant keys,
// keys exactly v's JSON field names, no trailing data, and a body within
// the server's limit. On failure it has answered 400 (or 413) with a
// problem saying what is wrong in public terms (never a Go type).
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := readBody(r.Body)
	if err == nil && len(bytes.TrimSpace(body)) == 0 {
		err = io.EOF
	}
	if err == nil {
		err = checkStrict(body, v)
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
		if err == nil && dec.Decode(&struct{}{}) != io.EOF {
			err = errTrailing
		}
	}
	if err == nil {
		return true
	}
	status, detail := decodeProblem(err)
	problem.Error(w, status, detail)
	return false
}

// decodeProblem is the status and public text of a decoding error.
func decodeProblem(err error) (int, string) {
	var tooBig *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var strict *errStrict
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &strict):
		return http.StatusBadRequest, strict.msg
	case errors.Is(err, errTrailing):
		return http.StatusBadRequest, "unexpected data after the JSON object"
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, "the request body is empty; send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, "malformed JSON: the body ends before the object does"
	case errors.As(err, &syn):
		return http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return http.StatusBadRequest, "the request body must be a JSON object"
	case errors.As(err, &typ):
		name := jsonTypeName(typ.Type)
		if strings.ContainsRune("aeiou", rune(name[0])) {
			return http.StatusBadRequest, fmt.Sprintf("field %q must be an %s", typ.Field, name)
		}
		return http.StatusBadRequest, fmt.Sprintf("field %q must be a %s", typ.Field, name)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return http.StatusBadRequest, "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return http.StatusBadRequest, "the request body is not a JSON object this endpoint accepts"
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// StoreError answers a store failure: 404, 412, 400, 503 or 500, each
// with a fixed public text (the store's own messages name its internals).
func StoreError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		problem.Error(w, http.StatusNotFound, "not found")
	case errors.Is(err, store.ErrPreconditionFailed):
		problem.Error(w, http.StatusPreconditionFailed, "the resource changed since you read it (If-Match does not match its ETag); read it again")
	case errors.Is(err, store.ErrInvalid):
		problem.Error(w, http.StatusBadRequest, "the request was refused as invalid: check its fields and its page cursor")
	case errors.Is(err, store.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		problem.Error(w, http.StatusServiceUnavailable, "storage is temporarily unavailable; nothing was written")
	default:
		problem.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// CallerGone reports whether a request failed with err after its caller
// hung up (the request's context canceled: the server's own deadlines end
// with DeadlineExceeded instead). A store then fails with whatever its
// driver makes of the cancellation ("interrupted", context.Canceled).
func CallerGone(r *http.Request, err error) bool {
	return err != nil && errors.Is(r.Context().Err(), context.Canceled)
}

// LogFailure logs a request's failure at Error, or at Info when the caller
// hung up (nothing to answer, nothing broken).
func LogFailure(log *slog.Logger, r *http.Request, msg string, err error, attrs ...any) {
	if CallerGone(r, err) {
		log.InfoContext(r.Context(), msg+": the caller hung up", append(attrs, "method", r.Method, "path", r.URL.Path, "error", err.Error())...)
		return
	}
	log.ErrorContext(r.Context(), msg, append(attrs, "error", err.Error())...)
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
