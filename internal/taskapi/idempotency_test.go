package taskapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/store"
)

const createBody = `{"title":"Pay the invoice","description":"before Friday"}`

// TestIdempotentCreate: the same Idempotency-Key and request from the same
// user within 24 h answers the original response (status, body, ETag) and
// creates nothing, notifies and audits nothing more.
func TestIdempotentCreate(t *testing.T) {
	h := newHarness(t, nil)
	const key = "8e03978e-40d5-43e8-bc93-6894a57f9324"
	first := h.do(t, "POST", "/api/tasks", h.alice, createBody, "Idempotency-Key", key)
	if first.status != http.StatusCreated || first.body["audit_status"] != AuditLogged || first.body["notification_status"] != NotificationSent {
		t.Fatalf("first create: %d %s", first.status, first.raw)
	}
	if first.header.Get(ReplayedHeader) != "" {
		t.Error("the first create is marked replayed")
	}
	// Again, with the JSON spelled otherwise (key order, spaces) and the
	// key quoted as an RFC 8941 string (the IETF draft's form).
	for _, again := range []struct{ body, key string }{
		{createBody, key},
		{`{ "description" : "before Friday", "title" : "Pay the invoice" }`, key},
		{createBody, `"` + key + `"`},
	} {
		r := h.do(t, "POST", "/api/tasks", h.alice, again.body, "Idempotency-Key", again.key)
		if r.status != first.status || !bytes.Equal(r.raw, first.raw) || r.header.Get("ETag") != first.header.Get("ETag") ||
			r.header.Get("Location") != first.header.Get("Location") || r.header.Get(ReplayedHeader) != "true" {
			t.Errorf("replay: %d %s %v; want %d %s %v", r.status, r.raw, r.header, first.status, first.raw, first.header)
		}
	}
	if n := len(h.tasks(t)); n != 1 {
		t.Errorf("%d tasks after a create and three replays, want 1", n)
	}
	if n := h.auditCount(t); n != 1 {
		t.Errorf("%d audit entries, want 1 (a replay runs no side effect)", n)
	}
	if n := h.notificationCount(t, entra.AliceOID); n != 1 {
		t.Errorf("%d notifications, want 1 (a replay runs no side effect)", n)
	}

	// The same key with another request is refused.
	other := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"Pay the invoice","description":"before Monday"}`, "Idempotency-Key", key)
	if other.status != http.StatusUnprocessableEntity || other.header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(str(other.body["detail"]), "Idempotency-Key") {
		t.Errorf("same key, another body: %d %s", other.status, other.raw)
	}
	// Keys are the user's: bob's same key is his own.
	bobs := h.do(t, "POST", "/api/tasks", h.bob, createBody, "Idempotency-Key", key)
	if bobs.status != http.StatusCreated || bobs.body["id"] == first.body["id"] || bobs.header.Get(ReplayedHeader) != "" {
		t.Errorf("bob's create with alice's key: %d %s", bobs.status, bobs.raw)
	}
	// Without a key, every create creates.
	for range 2 {
		if r := h.do(t, "POST", "/api/tasks", h.alice, createBody); r.status != http.StatusCreated {
			t.Fatalf("create without a key: %d %s", r.status, r.raw)
		}
	}
	if n := len(h.tasks(t)); n != 4 {
		t.Errorf("%d tasks, want 4", n)
	}
}

func str(v any) string { s, _ := v.(string); return s }

// TestIdempotencyKeyLimits: a key is 1 to 128 letters, digits and
// - _ . : ~ + / =, sent once; anything else is 400 and creates nothing.
func TestIdempotencyKeyLimits(t *testing.T) {
	h := newHarness(t, nil)
	for _, key := range []string{strings.Repeat("k", store.MaxIdempotencyKeyLength), "a", "Az09-_.:~+/="} {
		if r := h.do(t, "POST", "/api/tasks", h.alice, createBody, "Idempotency-Key", key); r.status != http.StatusCreated {
			t.Errorf("key %q: %d %s", key, r.status, r.raw)
		}
	}
	for _, headers := range [][]string{
		{"Idempotency-Key", ""},
		{"Idempotency-Key", `""`},
		{"Idempotency-Key", strings.Repeat("k", store.MaxIdempotencyKeyLength+1)},
		{"Idempotency-Key", "a b"},
		{"Idempotency-Key", "clé"},
		{"Idempotency-Key", "a;b"},
		{"Idempotency-Key", `"a\"b"`},
		{"Idempotency-Key", "one", "Idempotency-Key", "two"},
	} {
		r := h.do(t, "POST", "/api/tasks", h.alice, createBody, headers...)
		if r.status != http.StatusBadRequest || !strings.Contains(str(r.body["detail"]), "Idempotency-Key") {
			t.Errorf("%q: %d %s", headers, r.status, r.raw)
		}
	}
	if n := len(h.tasks(t)); n != 3 {
		t.Errorf("%d tasks, want the 3 with valid keys", n)
	}
}

// TestIdempotencyInFlightAndCrash: a key whose create has not recorded
// its answer is in flight (409, Retry-After) for DownstreamTimeout + 10 s;
// after that its create is taken as crashed, and the task as created is
// answered (and recorded, so every later replay is the same).
func TestIdempotencyInFlightAndCrash(t *testing.T) {
	h := newHarness(t, nil)
	const key = "crashed-create"
	req := createRequest{Title: "Pay the invoice", Description: "before Friday"}
	// The create's transaction committed; its process died before answering.
	task, prior, err := h.st.CreateTaskOnce(t.Context(), store.Task{TenantID: entra.HomeTenantID, Title: req.Title,
		Description: req.Description, CreatedBy: entra.AliceOID, CreatedByName: "Alice Admin"},
		&store.OutboxEvent{EventID: newEventID(), Action: "task.created", Actor: entra.AliceOID},
		store.Idempotency{Key: key, UserID: entra.AliceOID, RequestHash: requestHash(req), Now: h.clock.Now()})
	if err != nil || prior != nil {
		t.Fatal(err, prior)
	}
	r := h.do(t, "POST", "/api/tasks", h.alice, createBody, "Idempotency-Key", key)
	if r.status != http.StatusConflict || r.header.Get("Retry-After") == "" {
		t.Fatalf("retry while in flight: %d %s", r.status, r.raw)
	}
	h.clock.Advance(DefaultDownstreamTimeout + idempotencyInFlightMargin + time.Second)
	r = h.do(t, "POST", "/api/tasks", h.alice, createBody, "Idempotency-Key", key)
	if r.status != http.StatusCreated || r.body["id"] != task.ID || r.header.Get("ETag") != task.ETag ||
		r.body["audit_status"] != nil || r.header.Get(ReplayedHeader) != "true" {
		t.Fatalf("retry after the create crashed: %d %s %v", r.status, r.raw, r.header)
	}
	again := h.do(t, "POST", "/api/tasks", h.alice, createBody, "Idempotency-Key", key)
	if again.status != r.status || !bytes.Equal(again.raw, r.raw) {
		t.Errorf("later replay: %d %s, want %d %s", again.status, again.raw, r.status, r.raw)
	}
	if n := len(h.tasks(t)); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
}

// TestIdempotencyRetention: after 24 h a key is free again (a new task);
// the sweep purges expired keys.
func TestIdempotencyRetention(t *testing.T) {
	h := newHarness(t, nil)
	const key = "daily-report"
	first := h.do(t, "POST", "/api/tasks", h.alice, createBody, "Idempotency-Key", key)
	h.clock.Advance(store.IdempotencyRetention - time.Minute)
	if r := h.do(t, "POST", "/api/tasks", h.alice, createBody, "Idempotency-Key", key); r.body["id"] != first.body["id"] {
		t.Fatalf("within 24 h: %d %s, want the replay of %v", r.status, r.raw, first.body["id"])
	}
	h.clock.Advance(2 * time.Minute)
	second := h.do(t, "POST", "/api/tasks", h.alice, createBody, "Idempotency-Key", key)
	if second.status != http.StatusCreated || second.body["id"] == first.body["id"] || second.header.Get(ReplayedHeader) != "" {
		t.Fatalf("after 24 h: %d %s, want a new task", second.status, second.raw)
	}
	// Another key, expired: the sweep purges it, and leaves the live one.
	h.do(t, "POST", "/api/tasks", h.alice, createBody, "Idempotency-Key", "old-key")
	h.clock.Advance(store.IdempotencyRetention + time.Minute)
	res, err := h.app.Sweep(t.Context())
	if err != nil || res.Purged != 2 {
		t.Fatalf("sweep: %+v, %v; want 2 keys purged (the second daily-report's and old-key)", res, err)
	}
}
