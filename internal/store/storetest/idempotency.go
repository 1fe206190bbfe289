package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/internal/store"
)

// idempotencyTests hold the backends to the contract of IdempotentTasks.
var idempotencyTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Idempotency/OnceThenReplay", testIdemOnce},
	{"Idempotency/ScopedByTenantAndUser", testIdemScope},
	{"Idempotency/Concurrent", testIdemConcurrent},
	{"Idempotency/ExpiryAndPurge", testIdemExpiry},
	{"Idempotency/Validation", testIdemValidation},
	{"Idempotency/AllOrNothing", testIdemAtomic},
	{"Outbox/CountDue", testOutboxCountDue},
}

func idem(user, key string) store.Idempotency {
	return store.Idempotency{Key: key, UserID: user, RequestHash: hashOf(key)}
}

func hashOf(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// createOnce creates with key and fails the test unless it was created.
func createOnce(t *testing.T, s store.Store, task store.Task, i store.Idempotency) store.Task {
	t.Helper()
	ev := newEvent("task.created")
	got, prior, err := s.CreateTaskOnce(ctx(t), task, ev, i)
	if err != nil || prior != nil {
		t.Fatalf("CreateTaskOnce(%q): prior %+v, error %v; want created", i.Key, prior, err)
	}
	// The write returns what it stored: the caller's event names the task.
	if ev.ResourceID != got.ID || ev.TenantID != got.TenantID || ev.State != store.OutboxPending || ev.CreatedAt.IsZero() {
		t.Errorf("the caller's event after CreateTaskOnce = %+v, want it as stored for task %s", *ev, got.ID)
	}
	return got
}

// heldBy creates with key and fails the test unless the key was held by want.
func heldBy(t *testing.T, s store.Store, task store.Task, i store.Idempotency, want store.Task) *store.IdempotencyRecord {
	t.Helper()
	got, prior, err := s.CreateTaskOnce(ctx(t), task, newEvent("task.created"), i)
	if err != nil || prior == nil {
		t.Fatalf("CreateTaskOnce(%q) again: created %+v, error %v; want the held record", i.Key, got, err)
	}
	if got.ID != "" {
		t.Errorf("CreateTaskOnce(held key) returned a task %+v", got)
	}
	if d := diffTask(prior.Task, want); d != "" {
		t.Errorf("held record's task: %s", d)
	}
	return prior
}

func testIdemOnce(t *testing.T, s store.Store) {
	tenant, user, key := randomID("tenant"), randomID("user"), randomID("key")
	before := time.Now()
	first := createOnce(t, s, newTask(tenant, "once"), idem(user, key))
	checkID(t, "ID", first.ID)
	if d := diffTask(mustGet(t, s, tenant, first.ID), first); d != "" {
		t.Errorf("GetTask after CreateTaskOnce: %s", d)
	}
	// Again, even with another task: nothing is written, the record is returned.
	prior := heldBy(t, s, newTask(tenant, "twice"), idem(user, key), first)
	if prior.TenantID != tenant || prior.UserID != user || prior.Key != key || prior.RequestHash != hashOf(key) ||
		prior.Status != 0 || prior.Body != nil {
		t.Errorf("record = %+v", prior)
	}
	checkStoredTime(t, "record CreatedAt", prior.CreatedAt, before, time.Now())
	if got := prior.ExpiresAt.Sub(prior.CreatedAt); got != store.IdempotencyRetention {
		t.Errorf("record kept for %v, want %v", got, store.IdempotencyRetention)
	}
	if tasks, _ := allTasks(t, s, tenant, 0); len(tasks) != 1 {
		t.Errorf("%d tasks after two creates with one key, want 1", len(tasks))
	}
	if evs := outbox(t, s, tenant, store.OutboxPending); len(evs) != 1 || evs[0].ResourceID != first.ID {
		t.Errorf("outbox after two creates with one key: %+v, want one event of %s", evs, first.ID)
	}

	// The response is recorded once; the record returns it.
	body := []byte(`{"id":"` + first.ID + `","note":"é"}`)
	if err := s.RecordIdempotentResponse(ctx(t), tenant, user, key, first.ID, 201, body); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordIdempotentResponse(ctx(t), tenant, user, key, first.ID, 500, []byte("later")); err != nil {
		t.Errorf("recording a second response: %v, want nil (the first is kept)", err)
	}
	prior = heldBy(t, s, newTask(tenant, "thrice"), idem(user, key), first)
	if prior.Status != 201 || !bytes.Equal(prior.Body, body) {
		t.Errorf("recorded response %d %q, want 201 %q", prior.Status, prior.Body, body)
	}
	// The task changing does not change the record's task (as created).
	if _, err := s.UpdateTask(ctx(t), tenant, first.ID, "", store.TaskPatch{Completed: ptr(true)}, nil); err != nil {
		t.Fatal(err)
	}
	heldBy(t, s, newTask(tenant, "again"), idem(user, key), first)
	wantErr(t, "RecordIdempotentResponse(another task)",
		s.RecordIdempotentResponse(ctx(t), tenant, user, key, randomID("x"), 201, body), store.ErrNotFound)
	wantErr(t, "RecordIdempotentResponse(unknown key)",
		s.RecordIdempotentResponse(ctx(t), tenant, user, randomID("key"), first.ID, 201, body), store.ErrNotFound)
}

func testIdemScope(t *testing.T, s store.Store) {
	a, b, alice, bob, key := randomID("tenant-a"), randomID("tenant-b"), randomID("alice"), randomID("bob"), randomID("key")
	ta := createOnce(t, s, newTask(a, "alice's"), idem(alice, key))
	tb := createOnce(t, s, newTask(a, "bob's"), idem(bob, key))          // another user, same key
	tc := createOnce(t, s, newTask(b, "other tenant"), idem(alice, key)) // another tenant, same user and key
	if ta.ID == tb.ID || ta.ID == tc.ID {
		t.Fatal("one task for keys of different scopes")
	}
	heldBy(t, s, newTask(a, "x"), idem(alice, key), ta)
	heldBy(t, s, newTask(a, "x"), idem(bob, key), tb)
	heldBy(t, s, newTask(b, "x"), idem(alice, key), tc)
	// Another tenant's user cannot record the response of this one's key.
	wantErr(t, "RecordIdempotentResponse(other tenant)",
		s.RecordIdempotentResponse(ctx(t), b, alice, key, ta.ID, 201, []byte("{}")), store.ErrNotFound)
	// Keys are case-sensitive: another case is another key.
	upper := strings.ToUpper(key)
	createOnce(t, s, newTask(a, "upper"), idem(alice, upper))
}

func testIdemConcurrent(t *testing.T, s store.Store) {
	const workers = 16
	tenant, user, key := randomID("tenant"), randomID("user"), randomID("key")
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		created = make([]store.Task, workers)
		priors  = make([]*store.IdempotencyRecord, workers)
	)
	for i := range workers {
		wg.Go(func() {
			<-start
			task, prior, err := s.CreateTaskOnce(ctx(t), newTask(tenant, "racer"), newEvent("task.created"), idem(user, key))
			if err != nil {
				t.Errorf("CreateTaskOnce %d: %v", i, err)
			}
			created[i], priors[i] = task, prior
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	var winner string
	for i := range workers {
		if priors[i] == nil {
			if winner != "" {
				t.Fatalf("two creates with one key both wrote: %s and %s", winner, created[i].ID)
			}
			winner = created[i].ID
		}
	}
	if winner == "" {
		t.Fatal("no create wrote")
	}
	for i, p := range priors {
		if p != nil && p.Task.ID != winner {
			t.Errorf("create %d got the record of %s, want %s", i, p.Task.ID, winner)
		}
	}
	if tasks, _ := allTasks(t, s, tenant, 0); len(tasks) != 1 {
		t.Errorf("%d tasks, want 1", len(tasks))
	}
	if evs := outbox(t, s, tenant, store.OutboxPending); len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
}

// testIdemExpiry: a record expires IdempotencyRetention after its
// request; an expired record is ignored (the key creates again) and
// purged. This is the only subtest that purges.
func testIdemExpiry(t *testing.T, s store.Store) {
	tenant, user, key := randomID("tenant"), randomID("user"), randomID("key")
	now := time.Now()
	old := idem(user, key)
	old.Now = now.Add(-store.IdempotencyRetention - time.Hour)
	first := createOnce(t, s, newTask(tenant, "a day ago"), old)
	// Within the retention of its request, it is held…
	within := idem(user, key)
	within.Now = old.Now.Add(store.IdempotencyRetention - time.Minute)
	heldBy(t, s, newTask(tenant, "x"), within, first)
	// …after it, the key is free again: a new task, and the record is replaced.
	second := createOnce(t, s, newTask(tenant, "today"), idem(user, key))
	if second.ID == first.ID {
		t.Fatal("an expired key answered its old task")
	}
	heldBy(t, s, newTask(tenant, "x"), idem(user, key), second)

	// Purging deletes expired records only, at most limit of them.
	var expired []string
	for range 3 {
		k := randomID("old")
		i := idem(user, k)
		i.Now = old.Now
		createOnce(t, s, newTask(tenant, "old"), i)
		expired = append(expired, k)
	}
	n, err := s.PurgeIdempotencyKeys(ctx(t), now, 2)
	if err != nil || n != 2 {
		t.Fatalf("PurgeIdempotencyKeys(limit 2) = %d, %v; want 2", n, err)
	}
	if n, err = s.PurgeIdempotencyKeys(ctx(t), now, 1000); err != nil || n < 1 {
		t.Fatalf("PurgeIdempotencyKeys(limit 1000) = %d, %v; want at least 1", n, err)
	}
	// Gone: at a time when they had not expired, the keys create again.
	for _, k := range expired {
		i := idem(user, k)
		i.Now = within.Now
		createOnce(t, s, newTask(tenant, "purged key"), i)
	}
	heldBy(t, s, newTask(tenant, "x"), idem(user, key), second) // the live record stays
	_, err = s.PurgeIdempotencyKeys(ctx(t), now, 0)
	wantErr(t, "PurgeIdempotencyKeys(limit 0)", err, store.ErrInvalid)
}

func testIdemValidation(t *testing.T, s store.Store) {
	tenant, user := randomID("tenant"), randomID("user")
	longest := strings.Repeat("k", store.MaxIdempotencyKeyLength)
	for _, key := range []string{longest, "a", "Az09-_.:~+/=", "8e03978e-40d5-43e8-bc93-6894a57f9324"} {
		createOnce(t, s, newTask(tenant, "valid key"), idem(user, key))
	}
	for _, c := range []struct {
		name string
		i    store.Idempotency
	}{
		{"empty key", idem(user, "")},
		{"key too long", idem(user, longest+"k")},
		{"space in key", idem(user, "a b")},
		{"quote in key", idem(user, `"abc"`)},
		{"non-ASCII key", idem(user, "clé")},
		{"control in key", idem(user, "a\x00b")},
		{"no user", idem("", "k1")},
		{"blank user", idem(" ", "k2")},
		{"no request hash", store.Idempotency{Key: "k3", UserID: user}},
		{"hash too long", store.Idempotency{Key: "k4", UserID: user, RequestHash: strings.Repeat("h", 129)}},
	} {
		_, prior, err := s.CreateTaskOnce(ctx(t), newTask(tenant, c.name), newEvent("task.created"), c.i)
		if !errors.Is(err, store.ErrInvalid) || prior != nil {
			t.Errorf("CreateTaskOnce(%s): prior %+v, error %v; want ErrInvalid", c.name, prior, err)
		}
	}
	if tasks, _ := allTasks(t, s, tenant, 0); len(tasks) != 4 {
		t.Errorf("%d tasks, want only the 4 with valid keys", len(tasks))
	}
	task := createOnce(t, s, newTask(tenant, "t"), idem(user, "resp"))
	for _, c := range []struct {
		name   string
		status int
		body   []byte
	}{
		{"status 0", 0, []byte("{}")},
		{"status 600", 600, []byte("{}")},
		{"body too large", 201, bytes.Repeat([]byte("x"), store.MaxIdempotentResponse+1)},
		{"body not UTF-8", 201, []byte{0xff, 0xfe}},
	} {
		wantErr(t, "RecordIdempotentResponse("+c.name+")",
			s.RecordIdempotentResponse(ctx(t), tenant, user, "resp", task.ID, c.status, c.body), store.ErrInvalid)
	}
	largest := bytes.Repeat([]byte("x"), store.MaxIdempotentResponse)
	if err := s.RecordIdempotentResponse(ctx(t), tenant, user, "resp", task.ID, 201, largest); err != nil {
		t.Fatalf("RecordIdempotentResponse(largest body): %v", err)
	}
	if p := heldBy(t, s, newTask(tenant, "x"), idem(user, "resp"), task); !bytes.Equal(p.Body, largest) {
		t.Errorf("largest body read back as %d bytes", len(p.Body))
	}
}

// testIdemAtomic: a create refused as a whole leaves the key free.
func testIdemAtomic(t *testing.T, s store.Store) {
	tenant, user, key := randomID("tenant"), randomID("user"), randomID("key")
	_, _, err := s.CreateTaskOnce(ctx(t), newTask(tenant, "bad event"), &store.OutboxEvent{Action: "task.created", Actor: "a"}, idem(user, key))
	wantErr(t, "CreateTaskOnce(event without id)", err, store.ErrInvalid)
	_, _, err = s.CreateTaskOnce(ctx(t), newTask(tenant, "  "), newEvent("task.created"), idem(user, key))
	wantErr(t, "CreateTaskOnce(blank title)", err, store.ErrInvalid)
	if tasks, _ := allTasks(t, s, tenant, 0); len(tasks) != 0 {
		t.Errorf("refused creates left tasks: %+v", tasks)
	}
	createOnce(t, s, newTask(tenant, "now valid"), idem(user, key))
}

// testOutboxCountDue: CountDue counts the pending events due at a time.
// This subtest's events are due in 1971, long before any other subtest's,
// so counting at 1972 counts only them even in a shared store.
func testOutboxCountDue(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	then := time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC)
	count := func(at time.Time) int {
		t.Helper()
		n, err := s.CountDue(ctx(t), at)
		if err != nil {
			t.Fatalf("CountDue: %v", err)
		}
		return n
	}
	evs := make([]*store.OutboxEvent, 3)
	for i := range evs {
		evs[i] = newEvent("task.created")
		evs[i].NextAttempt = then.Add(time.Duration(i) * time.Hour)
		if _, err := s.CreateTask(ctx(t), newTask(tenant, "due"), evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	year := then.AddDate(1, 0, 0)
	if n := count(year); n != 3 {
		t.Fatalf("CountDue = %d with 3 events due, want 3", n)
	}
	if n := count(then.Add(90 * time.Minute)); n != 2 {
		t.Errorf("CountDue(between the second and the third) = %d, want 2", n)
	}
	if err := s.MarkDelivered(ctx(t), tenant, evs[0].EventID); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(ctx(t), tenant, evs[1].EventID, "rejected", then, true); err != nil {
		t.Fatal(err)
	}
	// Neither a delivered event nor a dead letter is due.
	if n := count(year); n != 1 {
		t.Errorf("CountDue after one delivery and one dead letter = %d, want 1", n)
	}
	if n := count(time.Unix(0, 0)); n != 0 {
		t.Errorf("CountDue(1970) = %d, want 0", n)
	}
}
