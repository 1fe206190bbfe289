package taskapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/handoff-dev/handoff/handler/problem"
	"github.com/handoff-dev/handoff/internal/store"
)

// IdempotencyKeyHeader is the header a create's client sends so that
// repeating the create (after a timeout or a 502) creates nothing new.
const IdempotencyKeyHeader = "Idempotency-Key"

// ReplayedHeader marks an answer replayed from an idempotency record.
const ReplayedHeader = "Idempotent-Replayed"

// idempotencyInFlightMargin: a key whose create has not recorded its
// answer is taken as in flight (409) for DownstreamTimeout plus this; after
// that, its create is taken as having ended (a crash) and the task as
// created is answered.
const idempotencyInFlightMargin = 10 * time.Second

// idempotencyKey reads the Idempotency-Key header: "" when absent. The
// key is a bare token or an RFC 8941 string ("…", as the IETF draft
// writes it). On a malformed key it has answered 400.
func idempotencyKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	vals := r.Header.Values(IdempotencyKeyHeader)
	if len(vals) == 0 {
		return "", true
	}
	key := strings.TrimSpace(vals[0])
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		key = key[1 : len(key)-1]
	}
	if len(vals) > 1 || !store.ValidIdempotencyKey(key) {
		problem.Error(w, http.StatusBadRequest, fmt.Sprintf("send one %s of 1 to %d characters: letters, digits and - _ . : ~ + / =",
			IdempotencyKeyHeader, store.MaxIdempotencyKeyLength))
		return "", false
	}
	return key, true
}

// requestHash fingerprints a create: the same title and description are
// the same request, however the JSON was spelled.
func requestHash(req createRequest) string {
	b, _ := json.Marshal([2]string{req.Title, req.Description})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// encodeResponse is the body WriteJSON would send for v.
func encodeResponse(v any) []byte {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	return buf.Bytes()
}

// writeCreated answers a create (or its replay) with body.
func writeCreated(w http.ResponseWriter, status int, t store.Task, body []byte) {
	w.Header().Set("ETag", t.ETag)
	w.Header().Set("Location", "/api/tasks/"+t.ID)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// replay answers a create whose key is held by rec.
func (a *App) replay(w http.ResponseWriter, r *http.Request, rec *store.IdempotencyRecord, hash string) {
	switch {
	case rec.RequestHash != hash:
		problem.Error(w, http.StatusUnprocessableEntity, "this "+IdempotencyKeyHeader+" was used for another request: send a new key for a new task")
		return
	case rec.Status == 0 && a.now().Sub(rec.CreatedAt) < a.cfg.DownstreamTimeout+idempotencyInFlightMargin:
		w.Header().Set("Retry-After", "1")
		problem.Error(w, http.StatusConflict, "a request with this "+IdempotencyKeyHeader+" is still being processed; retry in a moment")
		return
	case rec.Status == 0:
		// Its create ended before recording an answer: the task as created.
		// How its side effects went is unknown (its audit event is in the
		// outbox unless delivered); this answer is recorded for later replays.
		body := encodeResponse(taskResponse{Task: rec.Task})
		a.recordResponse(r.Context(), rec.TenantID, rec.UserID, rec.Key, rec.Task.ID, http.StatusCreated, body)
		rec.Status, rec.Body = http.StatusCreated, body
	}
	w.Header().Set(ReplayedHeader, "true")
	writeCreated(w, rec.Status, rec.Task, rec.Body)
}

// recordResponse records a create's answer for its key's replays; a
// failure leaves replays to answer the task as created.
func (a *App) recordResponse(reqCtx context.Context, tenantID, userID, key, taskID string, status int, body []byte) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), 2*time.Second)
	defer cancel()
	if err := a.store.RecordIdempotentResponse(ctx, tenantID, userID, key, taskID, status, body); err != nil {
		a.log.WarnContext(ctx, "task: the answer of a create with an idempotency key was not recorded", "tenant", tenantID, "task_id", taskID, "error", err.Error())
	}
}
