package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits of idempotency keys (see IdempotentTasks).
const (
	// IdempotencyRetention is how long a key is kept: a create repeated
	// with the same key within it is answered from the record; after it,
	// the key is free again (the record is ignored, and purged).
	IdempotencyRetention = 24 * time.Hour
	// MaxIdempotencyKeyLength bounds a key (bytes; see ValidIdempotencyKey).
	MaxIdempotencyKeyLength = 128
	// MaxIdempotentResponse bounds a recorded response body (bytes): far
	// above the largest task response, below Table Storage's 64 KiB per
	// property.
	MaxIdempotentResponse = 30000
	// maxRequestHash bounds the caller's request fingerprint (bytes).
	maxRequestHash = 128
)

// ValidIdempotencyKey reports whether key is one the store keeps: 1 to
// MaxIdempotencyKeyLength characters, each an ASCII letter or digit or one
// of - _ . : ~ + / = (UUIDs, ULIDs, base64 and base64url values fit).
func ValidIdempotencyKey(key string) bool {
	if len(key) < 1 || len(key) > MaxIdempotencyKeyLength {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '~', c == '+', c == '/', c == '=':
		default:
			return false
		}
	}
	return true
}

// Idempotency is a create's idempotency key: the client's key, kept per
// tenant (the task's) and user.
type Idempotency struct {
	Key    string // the client's key (see ValidIdempotencyKey)
	UserID string // the user's object id
	// RequestHash is the request's fingerprint, kept for the caller to
	// compare when the key comes again (the store does not).
	RequestHash string
	// Now is the request's time (zero: the store's clock): a record that
	// expired by then is ignored and replaced.
	Now time.Time
}

// IdempotencyRecord is what a key holds.
type IdempotencyRecord struct {
	TenantID, UserID, Key, RequestHash string
	// Task is the task the key created, as it was created (its ETag then).
	Task      Task
	CreatedAt time.Time
	ExpiresAt time.Time
	// Status and Body are the response the creator recorded
	// (RecordIdempotentResponse); Status is 0 until then.
	Status int
	Body   []byte
}

// IdempotentTasks creates tasks at most once per idempotency key.
type IdempotentTasks interface {
	// CreateTaskOnce is CreateTask with an idempotency key, whose record
	// is written in the same transaction as the task and its event. If
	// the tenant's user holds the key already (a record not expired at
	// idem.Now), nothing is written and that record is returned as prior.
	// An expired record is replaced.
	CreateTaskOnce(ctx context.Context, t Task, ev *OutboxEvent, idem Idempotency) (created Task, prior *IdempotencyRecord, err error)
	// RecordIdempotentResponse stores the response of the create that
	// wrote the key, once (a record with a response keeps it). It is
	// ErrNotFound when the key holds no record of taskID.
	RecordIdempotentResponse(ctx context.Context, tenantID, userID, key, taskID string, status int, body []byte) error
	// PurgeIdempotencyKeys deletes up to limit records expired at now,
	// across tenants, and says how many it deleted.
	PurgeIdempotencyKeys(ctx context.Context, now time.Time, limit int) (int, error)
}

// NormIdempotency checks idem and returns it with Now set, and the
// record a create with it writes for task t.
func NormIdempotency(idem Idempotency, t Task) (IdempotencyRecord, error) {
	if !ValidIdempotencyKey(idem.Key) {
		return IdempotencyRecord{}, Invalidf("idempotency key must be 1 to %d letters, digits or - _ . : ~ + / =", MaxIdempotencyKeyLength)
	}
	if err := RequireID("user id", idem.UserID); err != nil {
		return IdempotencyRecord{}, err
	}
	if !utf8.ValidString(idem.UserID) || len(idem.UserID) > maxEventField {
		return IdempotencyRecord{}, Invalidf("user id must be valid UTF-8 of at most %d bytes", maxEventField)
	}
	if idem.RequestHash == "" || len(idem.RequestHash) > maxRequestHash || !utf8.ValidString(idem.RequestHash) {
		return IdempotencyRecord{}, Invalidf("request hash must be 1 to %d bytes of UTF-8", maxRequestHash)
	}
	at, err := NormTimeOrNow("idempotency time", idem.Now)
	if err != nil {
		return IdempotencyRecord{}, err
	}
	return IdempotencyRecord{
		TenantID: t.TenantID, UserID: idem.UserID, Key: idem.Key, RequestHash: idem.RequestHash,
		Task: t, CreatedAt: at, ExpiresAt: at.Add(IdempotencyRetention),
	}, nil
}

// CheckResponse checks a response to record.
func CheckResponse(status int, body []byte) error {
	if status < 100 || status > 599 {
		return Invalidf("response status %d is not an HTTP status", status)
	}
	if len(body) > MaxIdempotentResponse {
		return Invalidf("response body is %d bytes, at most %d are kept", len(body), MaxIdempotentResponse)
	}
	if !utf8.Valid(body) {
		return Invalidf("response body is not valid UTF-8")
	}
	return nil
}

// storedTask is a Task as a record keeps it (its ETag included).
type storedTask struct {
	Task
	ETag string `json:"etag"`
}

func EncodeTask(t Task) (string, error) {
	b, err := json.Marshal(storedTask{Task: t, ETag: t.ETag})
	if err != nil {
		return "", fmt.Errorf("store: encode task: %w", err)
	}
	return string(b), nil
}

func DecodeTask(s string) (Task, error) {
	var st storedTask
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return Task{}, fmt.Errorf("%w: decode the task of an idempotency record: %w", ErrUnavailable, err)
	}
	st.Task.ETag = st.ETag
	st.Task.CreatedAt, st.Task.UpdatedAt = NormTime(st.Task.CreatedAt), NormTime(st.Task.UpdatedAt)
	return st.Task, nil
}
