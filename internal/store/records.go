package store

// Helpers every backend shares, so that they validate, name and page records
// alike (the storetest suite holds them to it).

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// idBytes is the size of record ids and ETags: 128 bits.
const idBytes = 16

// idTimeBytes of an id are its time: Unix milliseconds, big-endian (48
// bits, enough until the year 10889).
const idTimeBytes = 6

// NewID returns a record id: 128 bits from crypto/rand as 32 lowercase hex
// digits. Task ids are these: unguessable, and telling nothing of when or
// in which order tasks were made.
func NewID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

// NewOrderedID returns a record id of the same form as NewID's, whose
// first 48 bits are the current Unix time in milliseconds and the other 80
// from crypto/rand (as a UUIDv7 is laid out). Ids made in a later
// millisecond sort after earlier ones, so a new record's entry in an index
// on its id lands next to the previous record's: the SQLite store then
// rewrites the same few index pages from commit to commit, where random
// ids dirtied a page anywhere in the index each time (make bench-load:
// docs/performance.md). For records whose time is no secret (notifications
// and audit entries carry their timestamp); 80 random bits still make an id
// impossible to guess.
func NewOrderedID() string {
	return hex.EncodeToString(timeOrdered(time.Now()))
}

// timeOrdered is idBytes bytes: the Unix milliseconds of t, then random.
func timeOrdered(t time.Time) []byte {
	b := make([]byte, idBytes)
	ms := uint64(t.UnixMilli())
	for i := range idTimeBytes {
		b[i] = byte(ms >> (8 * (idTimeBytes - 1 - i)))
	}
	_, _ = rand.Read(b[idTimeBytes:]) // crypto/rand.Read never fails (it crashes the program instead)
	return b
}

// NewUUIDv7 returns a UUID version 7 (RFC 9562): the Unix milliseconds of
// now, then 74 random bits, in the canonical form. Later UUIDs sort after
// earlier ones, as NewOrderedID's ids do, and for the same reason.
func NewUUIDv7() string {
	b := timeOrdered(time.Now())
	b[6] = (b[6] & 0x0f) | 0x70 // version 7
	b[8] = (b[8] & 0x3f) | 0x80 // variant 10
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// NewETag returns a fresh strong HTTP entity tag: a quoted random value.
func NewETag() string {
	return `"` + NewID() + `"`
}

// IsID reports whether s has the form NewID returns.
func IsID(s string) bool {
	if len(s) != 2*idBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// timePrecision is the resolution of stored times. Every time the store
// returns is in UTC and truncated to it, so a read returns exactly what the
// write returned.
const timePrecision = time.Microsecond

// Now returns the current time as the store keeps it.
func Now() time.Time { return NormTime(time.Now()) }

// NormTime returns t as the store keeps it: UTC, truncated to timePrecision,
// without a monotonic clock reading.
func NormTime(t time.Time) time.Time { return t.UTC().Truncate(timePrecision) }

// NormTimeOrNow is NormTime(t), or Now() if t is the zero time. A time
// outside the years 1970 to 9999 is invalid (field names it in the message).
func NormTimeOrNow(field string, t time.Time) (time.Time, error) {
	if t.IsZero() {
		return Now(), nil
	}
	t = NormTime(t)
	if y := t.Year(); y < 1970 || y > 9999 {
		return time.Time{}, Invalidf("%s %s is outside the years 1970 to 9999", field, t.Format(time.RFC3339))
	}
	return t, nil
}

// Invalidf returns an error wrapping ErrInvalid.
func Invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// RequireID checks that a required identifier (tenant id, user oid, event
// id) is not empty or blank.
func RequireID(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return Invalidf("%s is required", name)
	}
	return nil
}

// normTitle returns the title as stored: without leading and trailing white
// space, 1 to MaxTitleLength characters (runes) of valid UTF-8.
func normTitle(title string) (string, error) {
	t := strings.TrimSpace(title)
	if !utf8.ValidString(t) {
		return "", Invalidf("title is not valid UTF-8")
	}
	switch n := utf8.RuneCountInString(t); {
	case n == 0:
		return "", Invalidf("title is required (and must not be blank)")
	case n > MaxTitleLength:
		return "", Invalidf("title is %d characters long, at most %d are allowed", n, MaxTitleLength)
	}
	return t, nil
}

// checkDescription checks that a description is valid UTF-8 of at most
// MaxDescriptionLength characters (runes). It may be empty.
func checkDescription(d string) error {
	if !utf8.ValidString(d) {
		return Invalidf("description is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(d); n > MaxDescriptionLength {
		return Invalidf("description is %d characters long, at most %d are allowed", n, MaxDescriptionLength)
	}
	return nil
}

// NormTask validates a task to be created and returns it with the fields
// the store sets (ID, ETag, times) filled in.
func NormTask(t Task) (Task, error) {
	if err := RequireID("tenant id", t.TenantID); err != nil {
		return Task{}, err
	}
	title, err := normTitle(t.Title)
	if err != nil {
		return Task{}, err
	}
	if err := checkDescription(t.Description); err != nil {
		return Task{}, err
	}
	t.Title = title
	t.ID = NewID()
	t.ETag = NewETag()
	t.CreatedAt = Now()
	t.UpdatedAt = t.CreatedAt
	return t, nil
}

// NormPatch validates a patch and returns it with the title normalised.
func NormPatch(p TaskPatch) (TaskPatch, error) {
	if p.Title != nil {
		title, err := normTitle(*p.Title)
		if err != nil {
			return TaskPatch{}, err
		}
		p.Title = &title
	}
	return p, nil
}

// PageSize returns the page size a listing asked for with limit: 0 means
// DefaultPageSize, more than MaxPageSize means MaxPageSize, less than 0 is
// invalid.
func PageSize(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, Invalidf("page size %d is negative", limit)
	case limit == 0:
		return DefaultPageSize, nil
	case limit > MaxPageSize:
		return MaxPageSize, nil
	}
	return limit, nil
}

// Cursor is the position after which a listing continues: the sort key
// (time, id) of the last record of the previous page. Listings are ordered
// by time descending, then id descending.
type Cursor struct {
	At time.Time
	ID string
}

// cursorVersion prefixes the encoded cursor so its format can change.
const cursorVersion = "1"

// EncodeCursor returns the opaque cursor continuing after (at, id).
func EncodeCursor(at time.Time, id string) string {
	raw := cursorVersion + "." + strconv.FormatInt(at.UnixMicro(), 10) + "." + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor parses a cursor EncodeCursor returned; "" is the first page
// (ok false). Anything else is invalid.
func DecodeCursor(s string) (c Cursor, ok bool, err error) {
	return decodeCursorWith(s, IsID)
}

// DecodeEventCursor reads a cursor of an outbox listing, whose ids are the
// caller's event ids (dots and all); an id is only ever a bound.
func DecodeEventCursor(s string) (c Cursor, ok bool, err error) {
	return decodeCursorWith(s, func(id string) bool {
		return id != "" && len(id) <= 4*maxEventField && utf8.ValidString(id)
	})
}

func decodeCursorWith(s string, validID func(string) bool) (c Cursor, ok bool, err error) {
	if s == "" {
		return Cursor{}, false, nil
	}
	bad := Invalidf("malformed page cursor")
	raw, derr := base64.RawURLEncoding.DecodeString(s)
	if derr != nil {
		return Cursor{}, false, bad
	}
	parts := strings.SplitN(string(raw), ".", 3)
	if len(parts) != 3 || parts[0] != cursorVersion || !validID(parts[2]) {
		return Cursor{}, false, bad
	}
	us, perr := strconv.ParseInt(parts[1], 10, 64)
	if perr != nil {
		return Cursor{}, false, bad
	}
	return Cursor{At: time.UnixMicro(us).UTC(), ID: parts[2]}, true, nil
}

// MaxErrorLength bounds an outbox event's recorded failure (bytes).
const MaxErrorLength = 1000

// maxEventField bounds an outbox event's fields (runes).
const maxEventField = 200

func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// NormEvent checks an outbox event written with a change to the tenant's
// task id and fills what the store owns: tenant, resource, creation time,
// state (pending, due at once) and attempts. nil means no event.
func NormEvent(ev *OutboxEvent, tenantID, taskID string) (*OutboxEvent, error) {
	if ev == nil {
		return nil, nil
	}
	e := *ev
	for name, v := range map[string]string{"event id": e.EventID, "action": e.Action, "actor": e.Actor} {
		if err := RequireID(name, v); err != nil {
			return nil, err
		}
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxEventField {
			return nil, Invalidf("%s must be valid UTF-8 of at most %d characters", name, maxEventField)
		}
	}
	if e.TenantID != "" && e.TenantID != tenantID {
		return nil, Invalidf("the event's tenant is not the task's")
	}
	if err := checkTraceContext(e.Traceparent, e.Tracestate); err != nil {
		return nil, err
	}
	e.TenantID, e.ResourceID = tenantID, taskID
	e.CreatedAt = Now()
	// Due at once unless the writer says when: a writer that delivers the
	// event itself makes it due after its own attempt, so a sweep does not
	// race it.
	if e.NextAttempt.IsZero() {
		e.NextAttempt = e.CreatedAt
	}
	e.NextAttempt = NormTime(e.NextAttempt)
	e.State, e.Attempts, e.LastError = OutboxPending, 0, ""
	return &e, nil
}

// Stored sets the caller's event ev to e, the event as a write stored it
// (NormEvent's answer): backends call it once the write succeeded, so the
// caller holds what was stored and never patches its own copy.
func Stored(ev, e *OutboxEvent) {
	if ev != nil && e != nil {
		*ev = *e
	}
}

// checkTraceContext bounds an event's trace context: valid UTF-8 within
// MaxTraceparentLength and MaxTracestateLength bytes. Its form is not
// checked: a reader parses it and ignores what it cannot use.
func checkTraceContext(traceparent, tracestate string) error {
	if len(traceparent) > MaxTraceparentLength || !utf8.ValidString(traceparent) {
		return Invalidf("the event's traceparent must be valid UTF-8 of at most %d bytes", MaxTraceparentLength)
	}
	if len(tracestate) > MaxTracestateLength || !utf8.ValidString(tracestate) {
		return Invalidf("the event's tracestate must be valid UTF-8 of at most %d bytes", MaxTracestateLength)
	}
	return nil
}

func ValidState(state string) error {
	switch state {
	case OutboxPending, OutboxDead:
		return nil
	}
	return Invalidf("outbox state %q is not pending or dead", state)
}
