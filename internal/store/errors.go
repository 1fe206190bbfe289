package store

import "errors"

// ErrInvalid is returned (wrapped, with a message naming the problem) when a
// record or a request to the store is malformed: a task title that is empty
// or too long, a missing tenant id or audit event id, a negative page size,
// a cursor the store did not issue. Callers answer it with 400.
var ErrInvalid = errors.New("store: invalid record")
