// Package storetest is the contract every store.Store backend meets: a test
// suite a backend's tests run against it,
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/handoff-dev/handoff/internal/store"
)

// Run runs the contract suite. open returns the store a subtest uses; it
// is called once per subtest, possibly from parallel subtests, and is
// responsible for closing the store (t.Cleanup). It may hand out one shared
// store: every subtest works in tenants of its own (random ids), and the one
// that lists every tenant's audit entries looks only for its own entries.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Tasks/CreateGetRoundTrip", testTaskRoundTrip},
		{"Tasks/StoreSetsIDETagAndTimes", testTaskStoreSetsFields},
		{"Tasks/TenantIsolation", testTaskTenantIsolation},
		{"Tasks/UnknownID", testTaskUnknownID},
		{"Tasks/IDsUnguessable", testTaskIDsUnguessable},
		{"Tasks/ETagChangesOnEveryUpdate", testTaskETagChanges},
		{"Tasks/UpdatePatchesOnlyGivenFields", testTaskPatchFields},
		{"Tasks/IfMatchMismatch", testTaskIfMatchMismatch},
		{"Tasks/Delete", testTaskDelete},
		{"Tasks/Validation", testTaskValidation},
		{"Tasks/Paging", testTaskPaging},
		{"Tasks/PagingLimits", testTaskPagingLimits},
		{"Tasks/PagingStableUnderWrites", testTaskPagingStable},
		{"Tasks/BadCursor", testTaskBadCursor},
		{"Tasks/ConcurrentUpdatesWithETags", testTaskConcurrentUpdates},
		{"Tasks/ConcurrentUnconditionalUpdates", testTaskConcurrentUnconditional},
		{"Notifications/PerTenantAndUser", testNotificationsPerUser},
		{"Notifications/Paging", testNotificationsPaging},
		{"Notifications/Validation", testNotificationsValidation},
		{"Notifications/TimestampBounds", testNotificationsTimestampBounds},
		{"Audit/Idempotent", testAuditIdempotent},
		{"Audit/ConcurrentSameEventID", testAuditConcurrent},
		{"Audit/EventIDOfAnotherTenant", testAuditOtherTenantEventID},
		{"Audit/ListPerTenantAndAll", testAuditList},
		{"Audit/Validation", testAuditValidation},
		{"Outbox/WrittenWithTheChange", testOutboxWritten},
		{"Outbox/AllOrNothing", testOutboxAtomic},
		{"Outbox/AllOrNothingInsideTheTransaction", testOutboxAtomicInTx},
		{"Outbox/RefusedTaskWriteLeavesNoEvent", testOutboxRefusedTaskWrite},
		{"Outbox/DueByNextAttempt", testOutboxDueOrder},
		{"Outbox/FailuresAndDeadLetters", testOutboxFailures},
		{"Outbox/Validation", testOutboxValidation},
		{"Outbox/Paging", testOutboxPaging},
	}
	tests = append(tests, idempotencyTests...)
	tests = append(tests, telemetryTests...)
	tests = append(tests, replayTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// Helpers.

func ctx(t *testing.T) context.Context { return t.Context() }

// randomID returns a random tenant id, user oid or event id.
func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func newTask(tenant, title string) store.Task {
	return store.Task{TenantID: tenant, Title: title, CreatedBy: "oid-" + tenant, CreatedByName: "Ada"}
}

func mustCreate(t *testing.T, s store.Store, task store.Task) store.Task {
	t.Helper()
	got, err := s.CreateTask(ctx(t), task, nil)
	if err != nil {
		t.Fatalf("CreateTask(%+v): %v", task, err)
	}
	return got
}

func mustGet(t *testing.T, s store.Store, tenant, id string) store.Task {
	t.Helper()
	got, err := s.GetTask(ctx(t), tenant, id)
	if err != nil {
		t.Fatalf("GetTask(%s, %s): %v", tenant, id, err)
	}
	return got
}

func ptr[T any](v T) *T { return &v }

// diffTask reports how got differs from want, "" if in no field.
func diffTask(got, want store.Task) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %#v, want %#v", field, g, w)) }
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.TenantID != want.TenantID {
		add("TenantID", got.TenantID, want.TenantID)
	}
	if got.Title != want.Title {
		add("Title", got.Title, want.Title)
	}
	if got.Description != want.Description {
		add("Description", got.Description, want.Description)
	}
	if got.Completed != want.Completed {
		add("Completed", got.Completed, want.Completed)
	}
	if got.CreatedBy != want.CreatedBy {
		add("CreatedBy", got.CreatedBy, want.CreatedBy)
	}
	if got.CreatedByName != want.CreatedByName {
		add("CreatedByName", got.CreatedByName, want.CreatedByName)
	}
	if !sameTime(got.CreatedAt, want.CreatedAt) {
		add("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	if !sameTime(got.UpdatedAt, want.UpdatedAt) {
		add("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	}
	if got.ETag != want.ETag {
		add("ETag", got.ETag, want.ETag)
	}
	return strings.Join(d, "; ")
}

// sameTime reports whether a and b are the same instant in the same
// location (UTC, for times the store returns).
func sameTime(a, b time.Time) bool { return a.Equal(b) && a.Location() == b.Location() }

// sameNotification compares notifications, times with sameTime (== on
// time.Time also compares its representation).
func sameNotification(a, b store.Notification) bool {
	ta, tb := a.Timestamp, b.Timestamp
	a.Timestamp, b.Timestamp = time.Time{}, time.Time{}
	return a == b && sameTime(ta, tb)
}

// sameAudit compares audit entries, times with sameTime.
func sameAudit(a, b store.AuditEntry) bool {
	ta, tb := a.Timestamp, b.Timestamp
	a.Timestamp, b.Timestamp = time.Time{}, time.Time{}
	return a == b && sameTime(ta, tb)
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// checkID checks that id looks random: at least 32 hex digits (128 bits).
func checkID(t *testing.T, what, id string) {
	t.Helper()
	if len(id) < 32 || !isHex(id) {
		t.Errorf("%s %q: want at least 32 hex digits (128 random bits)", what, id)
	}
}

// checkETag checks that etag is a strong HTTP entity tag: "opaque".
func checkETag(t *testing.T, etag string) {
	t.Helper()
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' || strings.Count(etag, `"`) != 2 {
		t.Errorf("ETag %q: want a strong entity tag, a quoted value", etag)
	}
}

// checkStoredTime checks that a time the store set is UTC and current.
func checkStoredTime(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s %v: want UTC", what, got)
	}
	if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
		t.Errorf("%s %v: want between %v and %v", what, got, before, after)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// allTasks pages through the tenant's tasks with page size limit.
func allTasks(t *testing.T, s store.Store, tenant string, limit int) (items []store.Task, pages []int) {
	t.Helper()
	cursor := ""
	for {
		p, err := s.ListTasks(ctx(t), tenant, limit, cursor)
		if err != nil {
			t.Fatalf("ListTasks(%s, %d, %q): %v", tenant, limit, cursor, err)
		}
		if p.Items == nil {
			t.Fatalf("ListTasks: Items is nil, want a non-nil (possibly empty) slice")
		}
		items = append(items, p.Items...)
		pages = append(pages, len(p.Items))
		if p.Next == "" {
			return items, pages
		}
		if len(pages) > 1000 {
			t.Fatal("ListTasks: more than 1000 pages")
		}
		cursor = p.Next
	}
}

func ids(tasks []store.Task) []string {
	out := make([]string, len(tasks))
	for i, task := range tasks {
		out[i] = task.ID
	}
	return out
}

// checkNewestFirst checks that times never increase along a listing.
func checkNewestFirst(t *testing.T, what string, times []time.Time) {
	t.Helper()
	for i := 1; i < len(times); i++ {
		if times[i].After(times[i-1]) {
			t.Fatalf("%s: item %d (%v) is newer than item %d (%v), want newest first", what, i, times[i], i-1, times[i-1])
		}
	}
}

// Tasks.

func testTaskRoundTrip(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	in := store.Task{
		TenantID:      tenant,
		Title:         "Ship the release ✓ — 日本語",
		Description:   "Line one\nLine two, with \"quotes\", <html> & émoji 🚀",
		Completed:     true,
		CreatedBy:     "00000000-0000-0000-0000-000000000001",
		CreatedByName: "Zoë O'Brien",
	}
	before := time.Now()
	created := mustCreate(t, s, in)
	after := time.Now()

	want := in
	want.ID, want.ETag, want.CreatedAt, want.UpdatedAt = created.ID, created.ETag, created.CreatedAt, created.UpdatedAt
	if d := diffTask(created, want); d != "" {
		t.Errorf("CreateTask returned %s", d)
	}
	checkID(t, "ID", created.ID)
	checkETag(t, created.ETag)
	checkStoredTime(t, "CreatedAt", created.CreatedAt, before, after)
	if !created.UpdatedAt.Equal(created.CreatedAt) {
		t.Errorf("UpdatedAt %v, want CreatedAt %v on create", created.UpdatedAt, created.CreatedAt)
	}

	got := mustGet(t, s, tenant, created.ID)
	if d := diffTask(got, created); d != "" {
		t.Errorf("GetTask after CreateTask: %s", d)
	}
	// Exactly: no precision is lost between create and read.
	if got.CreatedAt.UnixNano() != created.CreatedAt.UnixNano() {
		t.Errorf("CreatedAt read back %d ns, created %d ns", got.CreatedAt.UnixNano(), created.CreatedAt.UnixNano())
	}

	page, err := s.ListTasks(ctx(t), tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Next != "" {
		t.Fatalf("ListTasks: %d items, Next %q; want 1 item, no next page", len(page.Items), page.Next)
	}
	if d := diffTask(page.Items[0], created); d != "" {
		t.Errorf("ListTasks item: %s", d)
	}

	// The title is stored without surrounding white space.
	trimmed := mustCreate(t, s, newTask(tenant, "  \t padded title \n "))
	if trimmed.Title != "padded title" {
		t.Errorf("title %q, want %q", trimmed.Title, "padded title")
	}
	if got := mustGet(t, s, tenant, trimmed.ID); got.Title != "padded title" {
		t.Errorf("stored title %q, want %q", got.Title, "padded title")
	}
	// An empty description and completed false round-trip too.
	plain := mustCreate(t, s, newTask(tenant, "plain"))
	if got := mustGet(t, s, tenant, plain.ID); got.Description != "" || got.Completed {
		t.Errorf("plain task read back as %+v", got)
	}
}

func testTaskStoreSetsFields(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	in := newTask(tenant, "caller-set fields are ignored")
	in.ID = "chosen-by-caller"
	in.ETag = `"chosen-by-caller"`
	in.CreatedAt = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	in.UpdatedAt = in.CreatedAt
	before := time.Now()
	got := mustCreate(t, s, in)
	after := time.Now()
	if got.ID == in.ID || got.ETag == in.ETag {
		t.Errorf("CreateTask kept the caller's ID %q / ETag %q", got.ID, got.ETag)
	}
	checkStoredTime(t, "CreatedAt", got.CreatedAt, before, after)
	checkStoredTime(t, "UpdatedAt", got.UpdatedAt, before, after)
	if _, err := s.GetTask(ctx(t), tenant, in.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTask(caller's id): %v, want ErrNotFound", err)
	}
}

func testTaskTenantIsolation(t *testing.T, s store.Store) {
	a, b := randomID("tenant-a"), randomID("tenant-b")
	taskA := mustCreate(t, s, newTask(a, "A's task"))
	taskB := mustCreate(t, s, newTask(b, "B's task"))

	_, err := s.GetTask(ctx(t), b, taskA.ID)
	wantErr(t, "GetTask(B, A's id)", err, store.ErrNotFound)
	_, err = s.UpdateTask(ctx(t), b, taskA.ID, "", store.TaskPatch{Title: ptr("hijacked")}, nil)
	wantErr(t, "UpdateTask(B, A's id, no If-Match)", err, store.ErrNotFound)
	_, err = s.UpdateTask(ctx(t), b, taskA.ID, taskA.ETag, store.TaskPatch{Completed: ptr(true)}, nil)
	wantErr(t, "UpdateTask(B, A's id, A's ETag)", err, store.ErrNotFound)
	err = s.DeleteTask(ctx(t), b, taskA.ID, "", nil)
	wantErr(t, "DeleteTask(B, A's id, no If-Match)", err, store.ErrNotFound)
	err = s.DeleteTask(ctx(t), b, taskA.ID, taskA.ETag, nil)
	wantErr(t, "DeleteTask(B, A's id, A's ETag)", err, store.ErrNotFound)

	if d := diffTask(mustGet(t, s, a, taskA.ID), taskA); d != "" {
		t.Errorf("A's task changed by B's requests: %s", d)
	}
	for _, c := range []struct {
		tenant string
		want   store.Task
	}{{a, taskA}, {b, taskB}} {
		items, _ := allTasks(t, s, c.tenant, 0)
		if len(items) != 1 || items[0].ID != c.want.ID {
			t.Errorf("ListTasks(%s) = %v, want only %s", c.tenant, ids(items), c.want.ID)
		}
	}
	items, _ := allTasks(t, s, randomID("tenant-c"), 0)
	if len(items) != 0 {
		t.Errorf("ListTasks(new tenant) = %v, want none", ids(items))
	}
	// No tenant is no tenant, not every tenant.
	_, err = s.ListTasks(ctx(t), "", 0, "")
	wantErr(t, `ListTasks("")`, err, store.ErrInvalid)
	_, err = s.GetTask(ctx(t), "", taskA.ID)
	wantErr(t, `GetTask("", A's id)`, err, store.ErrNotFound)
}

func testTaskUnknownID(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	mustCreate(t, s, newTask(tenant, "exists"))
	for _, id := range []string{randomID("x")[2:] + "0000000000000000", "", "../etc", "' OR 1=1 --"} {
		_, err := s.GetTask(ctx(t), tenant, id)
		wantErr(t, fmt.Sprintf("GetTask(%q)", id), err, store.ErrNotFound)
		_, err = s.UpdateTask(ctx(t), tenant, id, "", store.TaskPatch{Completed: ptr(true)}, nil)
		wantErr(t, fmt.Sprintf("UpdateTask(%q)", id), err, store.ErrNotFound)
		_, err = s.UpdateTask(ctx(t), tenant, id, `"some-etag"`, store.TaskPatch{Completed: ptr(true)}, nil)
		wantErr(t, fmt.Sprintf("UpdateTask(%q, If-Match)", id), err, store.ErrNotFound)
		err = s.DeleteTask(ctx(t), tenant, id, "", nil)
		wantErr(t, fmt.Sprintf("DeleteTask(%q)", id), err, store.ErrNotFound)
		err = s.DeleteTask(ctx(t), tenant, id, `"some-etag"`, nil)
		wantErr(t, fmt.Sprintf("DeleteTask(%q, If-Match)", id), err, store.ErrNotFound)
	}
}

func testTaskIDsUnguessable(t *testing.T, s store.Store) {
	const n, workers = 1000, 8
	tenant := randomID("tenant")
	var (
		mu      sync.Mutex
		created []store.Task
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				task, err := s.CreateTask(ctx(t), newTask(tenant, "task "+strconv.Itoa(i)), nil)
				if err != nil {
					t.Errorf("CreateTask %d: %v", i, err)
					return
				}
				mu.Lock()
				created = append(created, task)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seenID, seenETag := map[string]bool{}, map[string]bool{}
	for _, task := range created {
		checkID(t, "ID", task.ID)
		if seenID[task.ID] {
			t.Fatalf("ID %s given twice", task.ID)
		}
		if seenETag[task.ETag] {
			t.Fatalf("ETag %s given twice", task.ETag)
		}
		seenID[task.ID], seenETag[task.ETag] = true, true
	}
	// Random, not a counter or a clock: every hex digit position takes
	// many values across the ids (a time or sequence prefix would not).
	slices.SortFunc(created, func(x, y store.Task) int { return x.CreatedAt.Compare(y.CreatedAt) })
	width := len(created[0].ID)
	for pos := range width {
		values := map[byte]bool{}
		for _, task := range created {
			if len(task.ID) == width {
				values[task.ID[pos]|0x20] = true
			}
		}
		if len(values) < 12 {
			t.Errorf("ID hex digit %d takes only %d values across %d ids; want random ids", pos, len(values), n)
		}
	}
	increasing := 0
	for i := 1; i < len(created); i++ {
		if created[i].ID > created[i-1].ID {
			increasing++
		}
	}
	if increasing < n/4 || increasing > 3*n/4 {
		t.Errorf("%d of %d ids in creation order are greater than the one before; want about half (random)", increasing, n-1)
	}
	items, _ := allTasks(t, s, tenant, store.MaxPageSize)
	if len(items) != n {
		t.Errorf("ListTasks: %d tasks, want %d", len(items), n)
	}
}

func testTaskETagChanges(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	task := mustCreate(t, s, newTask(tenant, "v0"))
	seen := map[string]bool{task.ETag: true}
	prev := task
	patches := []store.TaskPatch{
		{Title: ptr("v1")},
		{Completed: ptr(true)},
		{Completed: ptr(true)}, // same value: still a write, still a new ETag
		{Title: ptr("v1")},
		{},
		{Title: ptr("v2"), Completed: ptr(false)},
	}
	for i, p := range patches {
		ifMatch := prev.ETag
		if i%2 == 1 {
			ifMatch = "" // unconditional writes change the ETag too
		}
		before := time.Now()
		got, err := s.UpdateTask(ctx(t), tenant, task.ID, ifMatch, p, nil)
		after := time.Now()
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		checkETag(t, got.ETag)
		if seen[got.ETag] {
			t.Fatalf("update %d: ETag %s was given before", i, got.ETag)
		}
		seen[got.ETag] = true
		if !got.CreatedAt.Equal(task.CreatedAt) {
			t.Errorf("update %d: CreatedAt %v, want %v", i, got.CreatedAt, task.CreatedAt)
		}
		if got.UpdatedAt.Before(prev.UpdatedAt) {
			t.Errorf("update %d: UpdatedAt %v went back from %v", i, got.UpdatedAt, prev.UpdatedAt)
		}
		checkStoredTime(t, "UpdatedAt", got.UpdatedAt, before, after)
		if d := diffTask(mustGet(t, s, tenant, task.ID), got); d != "" {
			t.Errorf("update %d: GetTask differs from what UpdateTask returned: %s", i, d)
		}
		prev = got
	}
	if prev.Title != "v2" || prev.Completed {
		t.Errorf("final task %+v, want title v2, not completed", prev)
	}
}

func testTaskPatchFields(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	in := newTask(tenant, "title")
	in.Description = "description"
	task := mustCreate(t, s, in)

	got, err := s.UpdateTask(ctx(t), tenant, task.ID, task.ETag, store.TaskPatch{Completed: ptr(true)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := task
	want.Completed, want.ETag, want.UpdatedAt = true, got.ETag, got.UpdatedAt
	if d := diffTask(got, want); d != "" {
		t.Errorf("after patching Completed: %s", d)
	}
	got, err = s.UpdateTask(ctx(t), tenant, task.ID, got.ETag, store.TaskPatch{Title: ptr("  new title  ")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want.Title, want.ETag, want.UpdatedAt = "new title", got.ETag, got.UpdatedAt
	if d := diffTask(got, want); d != "" {
		t.Errorf("after patching Title: %s", d)
	}
	// The patched title is validated like a new one; nothing changes.
	for _, bad := range []string{"", "   ", strings.Repeat("x", store.MaxTitleLength+1)} {
		_, err := s.UpdateTask(ctx(t), tenant, task.ID, "", store.TaskPatch{Title: ptr(bad), Completed: ptr(false)}, nil)
		wantErr(t, fmt.Sprintf("UpdateTask(title %d chars)", len(bad)), err, store.ErrInvalid)
	}
	if d := diffTask(mustGet(t, s, tenant, task.ID), want); d != "" {
		t.Errorf("after refused updates: %s", d)
	}
}

func testTaskIfMatchMismatch(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	task := mustCreate(t, s, newTask(tenant, "original"))
	current, err := s.UpdateTask(ctx(t), tenant, task.ID, task.ETag, store.TaskPatch{Title: ptr("second")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stale := task.ETag
	for _, ifMatch := range []string{stale, `"not-an-etag"`, strings.Trim(current.ETag, `"`), "W/" + current.ETag, "*"} {
		_, err := s.UpdateTask(ctx(t), tenant, task.ID, ifMatch, store.TaskPatch{Title: ptr("lost update"), Completed: ptr(true)}, nil)
		wantErr(t, fmt.Sprintf("UpdateTask(If-Match %s)", ifMatch), err, store.ErrPreconditionFailed)
	}
	if d := diffTask(mustGet(t, s, tenant, task.ID), current); d != "" {
		t.Errorf("task changed by refused updates: %s", d)
	}
	if _, err := s.UpdateTask(ctx(t), tenant, task.ID, current.ETag, store.TaskPatch{Completed: ptr(true)}, nil); err != nil {
		t.Errorf("UpdateTask(current ETag): %v", err)
	}
}

func testTaskDelete(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	task := mustCreate(t, s, newTask(tenant, "to delete"))
	current, err := s.UpdateTask(ctx(t), tenant, task.ID, "", store.TaskPatch{Completed: ptr(true)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.DeleteTask(ctx(t), tenant, task.ID, task.ETag, nil)
	wantErr(t, "DeleteTask(stale ETag)", err, store.ErrPreconditionFailed)
	if d := diffTask(mustGet(t, s, tenant, task.ID), current); d != "" {
		t.Errorf("task changed by refused delete: %s", d)
	}
	if err := s.DeleteTask(ctx(t), tenant, task.ID, current.ETag, nil); err != nil {
		t.Fatalf("DeleteTask(current ETag): %v", err)
	}
	_, err = s.GetTask(ctx(t), tenant, task.ID)
	wantErr(t, "GetTask after delete", err, store.ErrNotFound)
	_, err = s.UpdateTask(ctx(t), tenant, task.ID, current.ETag, store.TaskPatch{Completed: ptr(false)}, nil)
	wantErr(t, "UpdateTask after delete", err, store.ErrNotFound)
	err = s.DeleteTask(ctx(t), tenant, task.ID, current.ETag, nil)
	wantErr(t, "DeleteTask twice", err, store.ErrNotFound)
	if items, _ := allTasks(t, s, tenant, 0); len(items) != 0 {
		t.Errorf("ListTasks after delete: %v", ids(items))
	}

	// Without If-Match, delete is unconditional.
	other := mustCreate(t, s, newTask(tenant, "unconditional"))
	if _, err := s.UpdateTask(ctx(t), tenant, other.ID, "", store.TaskPatch{Title: ptr("changed")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTask(ctx(t), tenant, other.ID, "", nil); err != nil {
		t.Fatalf("DeleteTask(no If-Match): %v", err)
	}
	_, err = s.GetTask(ctx(t), tenant, other.ID)
	wantErr(t, "GetTask after unconditional delete", err, store.ErrNotFound)
}

func testTaskValidation(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	refused := []struct {
		name string
		task store.Task
	}{
		{"empty title", newTask(tenant, "")},
		{"blank title", newTask(tenant, "   ")},
		{"white-space title", newTask(tenant, " \t\n\r ")},
		{"201-character title", newTask(tenant, strings.Repeat("a", store.MaxTitleLength+1))},
		{"201-rune multi-byte title", newTask(tenant, strings.Repeat("世", store.MaxTitleLength+1))},
		{"201 runes of emoji", newTask(tenant, strings.Repeat("🚀", store.MaxTitleLength+1))},
		{"title not UTF-8", newTask(tenant, "bad \xff\xfe title")},
		{"2001-character description", store.Task{TenantID: tenant, Title: "t", Description: strings.Repeat("d", store.MaxDescriptionLength+1)}},
		{"2001-rune multi-byte description", store.Task{TenantID: tenant, Title: "t", Description: strings.Repeat("é", store.MaxDescriptionLength+1)}},
		{"description not UTF-8", store.Task{TenantID: tenant, Title: "t", Description: "\xc3\x28"}},
		{"no tenant", newTask("", "title")},
		{"blank tenant", newTask("  ", "title")},
	}
	for _, c := range refused {
		_, err := s.CreateTask(ctx(t), c.task, nil)
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateTask(%s): error %v, want ErrInvalid", c.name, err)
		} else if err.Error() == store.ErrInvalid.Error() {
			t.Errorf("CreateTask(%s): error %q says nothing about what is wrong", c.name, err)
		}
	}
	if items, _ := allTasks(t, s, tenant, 0); len(items) != 0 {
		t.Errorf("refused tasks were stored: %v", ids(items))
	}

	accepted := []struct {
		name        string
		title, desc string
	}{
		{"1-character title", "x", ""},
		{"200-character title", strings.Repeat("a", store.MaxTitleLength), ""},
		{"200-rune multi-byte title (600 bytes)", strings.Repeat("世", store.MaxTitleLength), ""},
		{"200 runes of emoji (800 bytes)", strings.Repeat("🚀", store.MaxTitleLength), ""},
		{"200 characters inside white space", "  " + strings.Repeat("b", store.MaxTitleLength) + "  ", ""},
		{"2000-character description", "t", strings.Repeat("d", store.MaxDescriptionLength)},
		{"2000-rune multi-byte description", "t", strings.Repeat("é", store.MaxDescriptionLength)},
	}
	for _, c := range accepted {
		task := newTask(tenant, c.title)
		task.Description = c.desc
		got, err := s.CreateTask(ctx(t), task, nil)
		if err != nil {
			t.Errorf("CreateTask(%s): %v", c.name, err)
			continue
		}
		read := mustGet(t, s, tenant, got.ID)
		if read.Title != strings.TrimSpace(c.title) || read.Description != c.desc {
			t.Errorf("CreateTask(%s): read back title %d runes, description %d runes",
				c.name, utf8.RuneCountInString(read.Title), utf8.RuneCountInString(read.Description))
		}
	}
}

func testTaskPaging(t *testing.T, s store.Store) {
	const n, limit = 120, 50
	tenant := randomID("tenant")
	other := randomID("tenant")
	created := make([]store.Task, n)
	for i := range n {
		created[i] = mustCreate(t, s, newTask(tenant, "task "+strconv.Itoa(i)))
		if i%10 == 0 {
			mustCreate(t, s, newTask(other, "noise")) // another tenant's, interleaved
		}
	}
	items, pages := allTasks(t, s, tenant, limit)
	if !slices.Equal(pages, []int{50, 50, 20}) {
		t.Errorf("page sizes %v, want [50 50 20]", pages)
	}
	seen := map[string]bool{}
	for _, task := range items {
		if seen[task.ID] {
			t.Fatalf("task %s listed twice", task.ID)
		}
		seen[task.ID] = true
	}
	for _, task := range created {
		if !seen[task.ID] {
			t.Fatalf("task %s (%s) missing from the listing", task.ID, task.Title)
		}
	}
	if len(items) != n {
		t.Fatalf("listed %d tasks, want %d", len(items), n)
	}
	times := make([]time.Time, len(items))
	for i, task := range items {
		times[i] = task.CreatedAt
	}
	checkNewestFirst(t, "ListTasks", times)
	// Items are returned whole.
	byID := map[string]store.Task{}
	for _, task := range created {
		byID[task.ID] = task
	}
	for _, task := range items {
		if d := diffTask(task, byID[task.ID]); d != "" {
			t.Fatalf("listed task %s: %s", task.ID, d)
		}
	}
	// The newest and oldest land first and last.
	if items[0].ID != created[n-1].ID && !items[0].CreatedAt.Equal(created[n-1].CreatedAt) {
		t.Errorf("first listed %s, want the newest %s", items[0].Title, created[n-1].Title)
	}
	if items[n-1].ID != created[0].ID && !items[n-1].CreatedAt.Equal(created[0].CreatedAt) {
		t.Errorf("last listed %s, want the oldest %s", items[n-1].Title, created[0].Title)
	}
}

func testTaskPagingLimits(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	empty, err := s.ListTasks(ctx(t), tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if empty.Items == nil || len(empty.Items) != 0 || empty.Next != "" {
		t.Errorf("empty listing: %+v, want non-nil empty Items and no Next", empty)
	}
	n := store.MaxPageSize + 5
	for i := range n {
		mustCreate(t, s, newTask(tenant, "task "+strconv.Itoa(i)))
	}
	for _, c := range []struct{ limit, want int }{
		{0, store.DefaultPageSize},
		{1, 1},
		{store.MaxPageSize, store.MaxPageSize},
		{store.MaxPageSize + 1, store.MaxPageSize},
		{1 << 30, store.MaxPageSize},
	} {
		p, err := s.ListTasks(ctx(t), tenant, c.limit, "")
		if err != nil {
			t.Fatalf("ListTasks(limit %d): %v", c.limit, err)
		}
		if len(p.Items) != c.want || p.Next == "" {
			t.Errorf("ListTasks(limit %d): %d items, Next %q; want %d and a next page", c.limit, len(p.Items), p.Next, c.want)
		}
	}
	_, err = s.ListTasks(ctx(t), tenant, -1, "")
	wantErr(t, "ListTasks(limit -1)", err, store.ErrInvalid)

	// A page that ends exactly at the last task is the last page.
	if _, pages := allTasks(t, s, tenant, n); !slices.Equal(pages, []int{store.MaxPageSize, 5}) {
		t.Errorf("pages %v, want [%d 5]", pages, store.MaxPageSize)
	}
	small := randomID("tenant")
	for range 3 {
		mustCreate(t, s, newTask(small, "t"))
	}
	if p, err := s.ListTasks(ctx(t), small, 3, ""); err != nil || len(p.Items) != 3 || p.Next != "" {
		t.Errorf("ListTasks(3 tasks, limit 3): %d items, Next %q, error %v; want 3 and no next page", len(p.Items), p.Next, err)
	}
}

func testTaskPagingStable(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	var created []store.Task
	for i := range 30 {
		created = append(created, mustCreate(t, s, newTask(tenant, "old "+strconv.Itoa(i))))
	}
	first, err := s.ListTasks(ctx(t), tenant, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	// Writes between pages: newer tasks and a deletion of a listed task do
	// not shift the rest of the listing.
	for i := range 5 {
		mustCreate(t, s, newTask(tenant, "new "+strconv.Itoa(i)))
	}
	if err := s.DeleteTask(ctx(t), tenant, first.Items[9].ID, "", nil); err != nil {
		t.Fatal(err)
	}
	listed := slices.Clone(first.Items)
	cursor := first.Next
	for cursor != "" {
		p, err := s.ListTasks(ctx(t), tenant, 10, cursor)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, p.Items...)
		cursor = p.Next
	}
	seen := map[string]int{}
	for _, task := range listed {
		seen[task.ID]++
		if strings.HasPrefix(task.Title, "new ") {
			t.Errorf("task %q created after the first page appeared on a later page", task.Title)
		}
	}
	for _, task := range created {
		if seen[task.ID] != 1 {
			t.Errorf("task %q listed %d times, want once", task.Title, seen[task.ID])
		}
	}
}

func testTaskBadCursor(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	for range 3 {
		mustCreate(t, s, newTask(tenant, "t"))
	}
	p, err := s.ListTasks(ctx(t), tenant, 1, "")
	if err != nil || p.Next == "" {
		t.Fatalf("ListTasks(limit 1): Next %q, error %v", p.Next, err)
	}
	for _, c := range []string{
		"!!!",
		"not a cursor",
		p.Next[:len(p.Next)/2],
		p.Next + "x",
		"x" + p.Next,
		base64.RawURLEncoding.EncodeToString([]byte("garbage")),
		base64.RawURLEncoding.EncodeToString([]byte("' OR 1=1 --")),
		base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe, 0xfd}),
	} {
		_, err := s.ListTasks(ctx(t), tenant, 1, c)
		wantErr(t, fmt.Sprintf("ListTasks(cursor %q)", c), err, store.ErrInvalid)
	}
	if _, err := s.ListTasks(ctx(t), tenant, 1, p.Next); err != nil {
		t.Errorf("ListTasks(the cursor it gave): %v", err)
	}
}

func testTaskConcurrentUpdates(t *testing.T, s store.Store) {
	const workers, attempts = 8, 15
	tenant := randomID("tenant")
	task := mustCreate(t, s, newTask(tenant, "0"))

	// Each worker reads the task, increments the counter in its title and
	// writes it back with If-Match. A lost update would leave the counter
	// below the number of successful writes.
	type write struct{ from, to string } // ETag before and after
	var (
		mu        sync.Mutex
		succeeded []write
		refused   int
		wg        sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range attempts {
				cur, err := s.GetTask(ctx(t), tenant, task.ID)
				if err != nil {
					t.Errorf("GetTask: %v", err)
					return
				}
				n, err := strconv.Atoi(cur.Title)
				if err != nil {
					t.Errorf("title %q: %v", cur.Title, err)
					return
				}
				got, err := s.UpdateTask(ctx(t), tenant, task.ID, cur.ETag, store.TaskPatch{Title: ptr(strconv.Itoa(n + 1))}, nil)
				mu.Lock()
				switch {
				case err == nil:
					succeeded = append(succeeded, write{cur.ETag, got.ETag})
				case errors.Is(err, store.ErrPreconditionFailed):
					refused++
				default:
					t.Errorf("UpdateTask: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(succeeded)+refused != workers*attempts {
		t.Fatalf("%d succeeded + %d refused, want %d attempts", len(succeeded), refused, workers*attempts)
	}
	if len(succeeded) == 0 {
		t.Fatal("no update succeeded")
	}
	final := mustGet(t, s, tenant, task.ID)
	if final.Title != strconv.Itoa(len(succeeded)) {
		t.Errorf("counter %s after %d successful updates: updates were lost", final.Title, len(succeeded))
	}
	// The successful writes form one chain of ETags from the created task
	// to the final one: each was based on exactly the previous write.
	next := map[string]string{}
	for _, w := range succeeded {
		if _, dup := next[w.from]; dup {
			t.Fatalf("two updates succeeded with If-Match %s", w.from)
		}
		next[w.from] = w.to
	}
	etag, changes := task.ETag, 0
	for {
		to, ok := next[etag]
		if !ok {
			break
		}
		etag, changes = to, changes+1
	}
	if changes != len(succeeded) || etag != final.ETag {
		t.Errorf("ETag chain: %d changes ending at %s; want %d successful updates ending at the final ETag %s",
			changes, etag, len(succeeded), final.ETag)
	}
}

// testTaskConcurrentUnconditional has writers without If-Match race on one
// task: each write must succeed and answer the task as it wrote it (a
// backend that retries after losing a race must not answer an empty task).
func testTaskConcurrentUnconditional(t *testing.T, s store.Store) {
	const workers, writes = 4, 5
	tenant := randomID("tenant")
	task := mustCreate(t, s, newTask(tenant, "start"))
	var (
		mu      sync.Mutex
		written = map[string]bool{}
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range writes {
				title := fmt.Sprintf("w%d-%d", w, i)
				got, err := s.UpdateTask(ctx(t), tenant, task.ID, "", store.TaskPatch{Title: ptr(title)}, nil)
				if err != nil {
					t.Errorf("UpdateTask %s: %v", title, err)
					return
				}
				if got.ID != task.ID || got.TenantID != tenant || got.Title != title {
					t.Errorf("UpdateTask %s answered %+v, want the task as written", title, got)
				}
				checkETag(t, got.ETag)
				mu.Lock()
				written[title] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if final := mustGet(t, s, tenant, task.ID); !written[final.Title] {
		t.Errorf("final title %q is none of the written ones", final.Title)
	}
}

// Notifications.

func newNotification(tenant, user, title string) store.Notification {
	return store.Notification{
		Event: "task.completed", TaskTitle: title, To: "Ada Lovelace", Email: "ada@example.com",
		UserOID: user, TenantID: tenant, CallerApp: "app-" + tenant,
	}
}

func allNotifications(t *testing.T, s store.Store, tenant, user string, limit int) (items []store.Notification, pages []int) {
	t.Helper()
	cursor := ""
	for {
		p, err := s.ListNotifications(ctx(t), tenant, user, limit, cursor)
		if err != nil {
			t.Fatalf("ListNotifications(%s, %s, %d, %q): %v", tenant, user, limit, cursor, err)
		}
		if p.Items == nil {
			t.Fatal("ListNotifications: Items is nil, want a non-nil (possibly empty) slice")
		}
		items = append(items, p.Items...)
		pages = append(pages, len(p.Items))
		if p.Next == "" {
			return items, pages
		}
		if len(pages) > 1000 {
			t.Fatal("ListNotifications: more than 1000 pages")
		}
		cursor = p.Next
	}
}

func testNotificationsPerUser(t *testing.T, s store.Store) {
	a, b := randomID("tenant-a"), randomID("tenant-b")
	u1, u2, u3 := randomID("user"), randomID("user"), randomID("user")
	add := func(n store.Notification) store.Notification {
		t.Helper()
		before := time.Now()
		got, err := s.AddNotification(ctx(t), n)
		after := time.Now()
		if err != nil {
			t.Fatalf("AddNotification: %v", err)
		}
		checkID(t, "notification ID", got.ID)
		if n.Timestamp.IsZero() {
			checkStoredTime(t, "Timestamp", got.Timestamp, before, after)
		}
		want := n
		want.ID, want.Timestamp = got.ID, got.Timestamp
		if !sameNotification(got, want) {
			t.Errorf("AddNotification returned %+v, want %+v", got, want)
		}
		return got
	}
	var a1 []store.Notification
	for i := range 3 {
		a1 = append(a1, add(newNotification(a, u1, "task "+strconv.Itoa(i))))
	}
	a2 := add(newNotification(a, u2, "for u2"))
	b1 := add(newNotification(b, u1, "same user, other tenant"))

	// A timestamp the caller gives is kept (in UTC, at the store's precision).
	given := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))
	n := newNotification(a, u3, "timestamped")
	n.ID = "caller-chosen"
	n.Timestamp = given
	dated, err := s.AddNotification(ctx(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if dated.ID == "caller-chosen" {
		t.Error("AddNotification kept the caller's ID")
	}
	if dated.Timestamp.Location() != time.UTC || dated.Timestamp.Sub(given).Abs() >= time.Millisecond {
		t.Errorf("Timestamp %v, want %v in UTC, to the millisecond at least", dated.Timestamp, given)
	}

	check := func(tenant, user string, want ...store.Notification) {
		t.Helper()
		got, _ := allNotifications(t, s, tenant, user, 0)
		slices.Reverse(want) // newest first
		if !slices.EqualFunc(got, want, sameNotification) {
			t.Errorf("ListNotifications(%s, %s) =\n%+v\nwant\n%+v", tenant, user, got, want)
		}
	}
	check(a, u1, a1...)
	check(a, u2, a2)
	check(b, u1, b1)
	check(b, u2)
	check(a, u3, dated)
	check(randomID("tenant"), u1)
}

func testNotificationsPaging(t *testing.T, s store.Store) {
	tenant, user := randomID("tenant"), randomID("user")
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	seen := map[string]bool{}
	for i := range 7 {
		n := newNotification(tenant, user, "n"+strconv.Itoa(i))
		n.Timestamp = base.Add(time.Duration(i) * time.Minute)
		got, err := s.AddNotification(ctx(t), n)
		if err != nil {
			t.Fatal(err)
		}
		seen[got.ID] = false
	}
	items, pages := allNotifications(t, s, tenant, user, 3)
	if !slices.Equal(pages, []int{3, 3, 1}) {
		t.Errorf("pages %v, want [3 3 1]", pages)
	}
	for i, n := range items {
		if want := "n" + strconv.Itoa(6-i); n.TaskTitle != want {
			t.Errorf("item %d is %s, want %s (newest first)", i, n.TaskTitle, want)
		}
		if listed, ok := seen[n.ID]; !ok || listed {
			t.Errorf("item %d (%s): unknown or listed twice", i, n.ID)
		}
		seen[n.ID] = true
	}
	_, err := s.ListNotifications(ctx(t), tenant, user, 3, "bogus")
	wantErr(t, "ListNotifications(bad cursor)", err, store.ErrInvalid)
}

func testNotificationsValidation(t *testing.T, s store.Store) {
	tenant, user := randomID("tenant"), randomID("user")
	for _, c := range []struct {
		name string
		n    store.Notification
	}{
		{"no tenant", newNotification("", user, "t")},
		{"no user", newNotification(tenant, "", "t")},
		{"timestamp before 1970", func() store.Notification {
			n := newNotification(tenant, user, "t")
			n.Timestamp = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)
			return n
		}()},
		{"timestamp after 9999", func() store.Notification {
			n := newNotification(tenant, user, "t")
			n.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			return n
		}()},
	} {
		_, err := s.AddNotification(ctx(t), c.n)
		wantErr(t, "AddNotification("+c.name+")", err, store.ErrInvalid)
	}
	if items, _ := allNotifications(t, s, tenant, user, 0); len(items) != 0 {
		t.Errorf("refused notifications were stored: %+v", items)
	}
	_, err := s.ListNotifications(ctx(t), "", user, 0, "")
	wantErr(t, "ListNotifications(no tenant)", err, store.ErrInvalid)
	_, err = s.ListNotifications(ctx(t), tenant, "", 0, "")
	wantErr(t, "ListNotifications(no user)", err, store.ErrInvalid)
}

// testNotificationsTimestampBounds: the first and the last instants of the
// years 1970 to 9999 are kept, to the microsecond.
func testNotificationsTimestampBounds(t *testing.T, s store.Store) {
	tenant, user := randomID("tenant"), randomID("user")
	// Two at the epoch, so that paging one by one continues from a
	// cursor at the epoch itself.
	for _, ts := range []time.Time{
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	} {
		n := newNotification(tenant, user, "bound")
		n.Timestamp = ts
		got, err := s.AddNotification(ctx(t), n)
		if err != nil {
			t.Fatalf("AddNotification(timestamp %s): %v", ts.Format(time.RFC3339Nano), err)
		}
		if !sameTime(got.Timestamp, ts) {
			t.Errorf("timestamp %s stored as %s", ts.Format(time.RFC3339Nano), got.Timestamp.Format(time.RFC3339Nano))
		}
	}
	if items, _ := allNotifications(t, s, tenant, user, 1); len(items) != 3 {
		t.Errorf("notifications at the bounds, paged one by one = %+v, want 3", items)
	}
}

// Audit log.

func newAudit(tenant, eventID, action string) store.AuditEntry {
	return store.AuditEntry{
		EventID: eventID, Action: action, ResourceID: randomID("task"),
		Actor: "oid-actor", TenantID: tenant, CallerApp: "app-task-api",
	}
}

func allAudit(t *testing.T, s store.Store, tenant string, limit int) (items []store.AuditEntry, pages []int) {
	t.Helper()
	cursor := ""
	for {
		p, err := s.ListAudit(ctx(t), tenant, limit, cursor)
		if err != nil {
			t.Fatalf("ListAudit(%q, %d, %q): %v", tenant, limit, cursor, err)
		}
		if p.Items == nil {
			t.Fatal("ListAudit: Items is nil, want a non-nil (possibly empty) slice")
		}
		items = append(items, p.Items...)
		pages = append(pages, len(p.Items))
		if p.Next == "" {
			return items, pages
		}
		if len(pages) > 100000 {
			t.Fatal("ListAudit: more than 100000 pages")
		}
		cursor = p.Next
	}
}

func testAuditIdempotent(t *testing.T, s store.Store) {
	tenant, event := randomID("tenant"), randomID("event")
	in := newAudit(tenant, event, "task.created")
	before := time.Now()
	first, created, err := s.AppendAudit(ctx(t), in)
	after := time.Now()
	if err != nil || !created {
		t.Fatalf("AppendAudit: created %v, error %v; want created", created, err)
	}
	checkID(t, "audit ID", first.ID)
	checkStoredTime(t, "Timestamp", first.Timestamp, before, after)
	want := in
	want.ID, want.Timestamp = first.ID, first.Timestamp
	if !sameAudit(first, want) {
		t.Errorf("AppendAudit returned %+v, want %+v", first, want)
	}

	// The same event again, even with other fields: the stored entry.
	again := newAudit(tenant, event, "task.deleted")
	again.Timestamp = time.Now().Add(time.Hour)
	second, created, err := s.AppendAudit(ctx(t), again)
	if err != nil || created {
		t.Fatalf("AppendAudit(same event id): created %v, error %v; want not created", created, err)
	}
	if !sameAudit(second, first) {
		t.Errorf("AppendAudit(same event id) returned %+v, want the stored %+v", second, first)
	}
	items, _ := allAudit(t, s, tenant, 0)
	if len(items) != 1 || !sameAudit(items[0], first) {
		t.Errorf("ListAudit = %+v, want only %+v", items, first)
	}

	// A timestamp the caller gives is kept (in UTC, at the store's precision).
	given := time.Date(2023, 1, 2, 3, 4, 5, 678901234, time.FixedZone("EST", -5*3600))
	e := newAudit(tenant, randomID("event"), "task.updated")
	e.Timestamp = given
	dated, created, err := s.AppendAudit(ctx(t), e)
	if err != nil || !created {
		t.Fatalf("AppendAudit(timestamped): created %v, error %v", created, err)
	}
	if dated.Timestamp.Location() != time.UTC || dated.Timestamp.Sub(given).Abs() >= time.Millisecond {
		t.Errorf("Timestamp %v, want %v in UTC, to the millisecond at least", dated.Timestamp, given)
	}
	items, _ = allAudit(t, s, tenant, 0)
	if len(items) != 2 || !sameAudit(items[0], first) || !sameAudit(items[1], dated) {
		t.Errorf("ListAudit = %+v, want %+v then %+v", items, first, dated)
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	const workers = 32
	tenant, event := randomID("tenant"), randomID("event")
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]store.AuditEntry, workers)
		created = make([]bool, workers)
	)
	for i := range workers {
		wg.Go(func() {
			<-start
			e, c, err := s.AppendAudit(ctx(t), newAudit(tenant, event, "attempt "+strconv.Itoa(i)))
			if err != nil {
				t.Errorf("AppendAudit %d: %v", i, err)
			}
			results[i], created[i] = e, c
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	winners := 0
	for i := range workers {
		if created[i] {
			winners++
		}
		if !sameAudit(results[i], results[0]) {
			t.Errorf("append %d returned %+v, append 0 %+v; want the same entry", i, results[i], results[0])
		}
	}
	if winners != 1 {
		t.Errorf("%d appends created the entry, want exactly 1", winners)
	}
	items, _ := allAudit(t, s, tenant, 0)
	if len(items) != 1 || !sameAudit(items[0], results[0]) {
		t.Errorf("ListAudit = %+v, want only %+v", items, results[0])
	}
}

func testAuditOtherTenantEventID(t *testing.T, s store.Store) {
	a, b, event := randomID("tenant-a"), randomID("tenant-b"), randomID("event")
	entryA, _, err := s.AppendAudit(ctx(t), newAudit(a, event, "task.created"))
	if err != nil {
		t.Fatal(err)
	}
	// Another tenant reusing the event id gets neither a new entry nor A's.
	got, created, err := s.AppendAudit(ctx(t), newAudit(b, event, "task.created"))
	if !errors.Is(err, store.ErrInvalid) || created || got.ID != "" {
		t.Errorf("AppendAudit(B, A's event id) = %+v, %v, %v; want ErrInvalid and nothing", got, created, err)
	}
	if items, _ := allAudit(t, s, b, 0); len(items) != 0 {
		t.Errorf("ListAudit(B) = %+v, want none", items)
	}
	if items, _ := allAudit(t, s, a, 0); len(items) != 1 || !sameAudit(items[0], entryA) {
		t.Errorf("ListAudit(A) = %+v, want only %+v", items, entryA)
	}
}

func testAuditList(t *testing.T, s store.Store) {
	a, b := randomID("tenant-a"), randomID("tenant-b")
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var all, inA, inB []store.AuditEntry
	for i := range 9 {
		tenant := a
		if i%3 == 2 {
			tenant = b
		}
		e := newAudit(tenant, randomID("event"), "action "+strconv.Itoa(i))
		e.Timestamp = base.Add(time.Duration(i) * time.Second)
		got, created, err := s.AppendAudit(ctx(t), e)
		if err != nil || !created {
			t.Fatalf("AppendAudit %d: created %v, error %v", i, created, err)
		}
		all = append(all, got)
		if tenant == a {
			inA = append(inA, got)
		} else {
			inB = append(inB, got)
		}
	}
	for _, x := range [][]store.AuditEntry{all, inA, inB} {
		slices.Reverse(x) // newest first
	}

	gotA, pagesA := allAudit(t, s, a, 4)
	if !slices.EqualFunc(gotA, inA, sameAudit) || !slices.Equal(pagesA, []int{4, 2}) {
		t.Errorf("ListAudit(A) = %d entries in pages %v, want A's 6 newest first in pages [4 2]:\n%+v", len(gotA), pagesA, gotA)
	}
	if gotB, _ := allAudit(t, s, b, 0); !slices.EqualFunc(gotB, inB, sameAudit) {
		t.Errorf("ListAudit(B) = %+v, want %+v", gotB, inB)
	}
	// Every tenant's: both tenants' entries, newest first. (Other
	// subtests may share the store, so look only at this one's entries.)
	every, _ := allAudit(t, s, "", 7)
	var mine []store.AuditEntry
	times := make([]time.Time, len(every))
	for i, e := range every {
		times[i] = e.Timestamp
		if e.TenantID == a || e.TenantID == b {
			mine = append(mine, e)
		}
	}
	checkNewestFirst(t, `ListAudit("")`, times)
	if !slices.EqualFunc(mine, all, sameAudit) {
		t.Errorf(`ListAudit("") holds %+v of this test's entries, want %+v`, mine, all)
	}
	_, err := s.ListAudit(ctx(t), a, 0, "%%%")
	wantErr(t, "ListAudit(bad cursor)", err, store.ErrInvalid)
	_, err = s.ListAudit(ctx(t), "", -5, "")
	wantErr(t, "ListAudit(limit -5)", err, store.ErrInvalid)
}

func testAuditValidation(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	for _, c := range []struct {
		name string
		e    store.AuditEntry
	}{
		{"no event id", newAudit(tenant, "", "a")},
		{"blank event id", newAudit(tenant, "  ", "a")},
		{"no tenant", newAudit("", randomID("event"), "a")},
		{"timestamp after 9999", func() store.AuditEntry {
			e := newAudit(tenant, randomID("event"), "a")
			e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			return e
		}()},
	} {
		_, created, err := s.AppendAudit(ctx(t), c.e)
		if !errors.Is(err, store.ErrInvalid) || created {
			t.Errorf("AppendAudit(%s): created %v, error %v; want ErrInvalid", c.name, created, err)
		}
	}
	if items, _ := allAudit(t, s, tenant, 0); len(items) != 0 {
		t.Errorf("refused entries were stored: %+v", items)
	}
}

// Outbox.

func newEvent(action string) *store.OutboxEvent {
	return &store.OutboxEvent{EventID: randomID("ev"), Action: action, Actor: "oid-actor"}
}

// due lists the tenant's events among those due at now (DueEvents spans
// every tenant, and other subtests share the store).
func due(t *testing.T, s store.Store, tenant string, now time.Time) []store.OutboxEvent {
	t.Helper()
	evs, err := s.DueEvents(ctx(t), now, store.MaxPageSize)
	if err != nil {
		t.Fatalf("DueEvents: %v", err)
	}
	var mine []store.OutboxEvent
	for _, e := range evs {
		if e.TenantID == tenant {
			mine = append(mine, e)
		}
	}
	return mine
}

func outbox(t *testing.T, s store.Store, tenant, state string) []store.OutboxEvent {
	t.Helper()
	page, err := s.ListOutbox(ctx(t), tenant, state, 0, "")
	if err != nil {
		t.Fatalf("ListOutbox(%s): %v", state, err)
	}
	return page.Items
}

func testOutboxWritten(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	created := newEvent("task.created")
	task, err := s.CreateTask(ctx(t), newTask(tenant, "audited"), created)
	if err != nil {
		t.Fatal(err)
	}
	pending := outbox(t, s, tenant, store.OutboxPending)
	if len(pending) != 1 {
		t.Fatalf("pending after create: %+v", pending)
	}
	e := pending[0]
	if e.EventID != created.EventID || e.ResourceID != task.ID || e.TenantID != tenant || e.Action != "task.created" ||
		e.Actor != "oid-actor" || e.State != store.OutboxPending || e.Attempts != 0 || e.CreatedAt.IsZero() {
		t.Errorf("event = %+v", e)
	}
	// The write returns what it stored: the caller's event is the stored one.
	if !sameEvent(*created, e) {
		t.Errorf("the caller's event after create = %+v, stored %+v", *created, e)
	}
	if got := due(t, s, tenant, time.Now().Add(time.Second)); len(got) != 1 {
		t.Errorf("due after create: %+v", got)
	}
	updatedEv, deletedEv := newEvent("task.updated"), newEvent("task.deleted")
	updated, err := s.UpdateTask(ctx(t), tenant, task.ID, task.ETag, store.TaskPatch{Completed: ptr(true)}, updatedEv)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTask(ctx(t), tenant, task.ID, updated.ETag, deletedEv); err != nil {
		t.Fatal(err)
	}
	pending = outbox(t, s, tenant, store.OutboxPending)
	if len(pending) != 3 {
		t.Fatalf("pending after create, update, delete: %d", len(pending))
	}
	for _, e := range pending {
		for _, mine := range []*store.OutboxEvent{updatedEv, deletedEv} {
			if mine.EventID == e.EventID && !sameEvent(*mine, e) {
				t.Errorf("the caller's event after %s = %+v, stored %+v", e.Action, *mine, e)
			}
		}
		if e.ResourceID != task.ID {
			t.Errorf("event %s for resource %s, want %s", e.Action, e.ResourceID, task.ID)
		}
		if err := s.MarkDelivered(ctx(t), tenant, e.EventID); err != nil {
			t.Fatal(err)
		}
	}
	if got := outbox(t, s, tenant, store.OutboxPending); len(got) != 0 {
		t.Errorf("pending after delivery: %+v", got)
	}
	if got := due(t, s, tenant, time.Now().Add(time.Hour)); len(got) != 0 {
		t.Errorf("due after delivery: %+v", got)
	}
	if err := s.MarkDelivered(ctx(t), tenant, created.EventID); err != nil {
		t.Errorf("delivering twice: %v", err)
	}
}

// sameEvent compares an event a write handed back with the stored one.
func sameEvent(a, b store.OutboxEvent) bool {
	return a.EventID == b.EventID && a.TenantID == b.TenantID && a.ResourceID == b.ResourceID && a.Action == b.Action &&
		a.Actor == b.Actor && a.State == b.State && a.Attempts == b.Attempts && a.CreatedAt.Equal(b.CreatedAt) &&
		a.NextAttempt.Equal(b.NextAttempt)
}

func testOutboxAtomic(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	_, err := s.CreateTask(ctx(t), newTask(tenant, "no event id"), &store.OutboxEvent{Action: "task.created", Actor: "a"})
	wantErr(t, "CreateTask(event without id)", err, store.ErrInvalid)
	if tasks, _ := allTasks(t, s, tenant, 0); len(tasks) != 0 {
		t.Errorf("a refused event left a task: %+v", tasks)
	}
	_, err = s.CreateTask(ctx(t), newTask(tenant, ""), newEvent("task.created"))
	wantErr(t, "CreateTask(invalid task)", err, store.ErrInvalid)

	task := mustCreate(t, s, newTask(tenant, "t"))
	_, err = s.UpdateTask(ctx(t), tenant, task.ID, `"stale"`, store.TaskPatch{Completed: ptr(true)}, newEvent("task.updated"))
	wantErr(t, "UpdateTask(stale ETag)", err, store.ErrPreconditionFailed)
	err = s.DeleteTask(ctx(t), tenant, task.ID, `"stale"`, newEvent("task.deleted"))
	wantErr(t, "DeleteTask(stale ETag)", err, store.ErrPreconditionFailed)
	_, err = s.UpdateTask(ctx(t), tenant, randomID("missing"), "", store.TaskPatch{Completed: ptr(true)}, newEvent("task.updated"))
	wantErr(t, "UpdateTask(unknown)", err, store.ErrNotFound)
	if got := outbox(t, s, tenant, store.OutboxPending); len(got) != 0 {
		t.Errorf("refused writes left events: %+v", got)
	}
}

// testOutboxAtomicInTx: the event is refused after the task is written,
// inside the transaction (its id is one the outbox already holds), so the
// task write must be undone with it: no task row, no change, no event.
func testOutboxAtomicInTx(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	first := newEvent("task.created")
	task, err := s.CreateTask(ctx(t), newTask(tenant, "first"), first)
	if err != nil {
		t.Fatal(err)
	}
	dup := func(action string) *store.OutboxEvent {
		return &store.OutboxEvent{EventID: first.EventID, Action: action, Actor: "oid-other"}
	}
	if _, err := s.CreateTask(ctx(t), newTask(tenant, "second"), dup("task.created")); err == nil {
		t.Error("CreateTask with an event id already in the outbox succeeded")
	}
	if _, err := s.UpdateTask(ctx(t), tenant, task.ID, task.ETag, store.TaskPatch{Title: ptr("changed"), Completed: ptr(true)}, dup("task.updated")); err == nil {
		t.Error("UpdateTask with an event id already in the outbox succeeded")
	}
	if err := s.DeleteTask(ctx(t), tenant, task.ID, task.ETag, dup("task.deleted")); err == nil {
		t.Error("DeleteTask with an event id already in the outbox succeeded")
	}
	tasks, _ := allTasks(t, s, tenant, 0)
	if len(tasks) != 1 {
		t.Fatalf("tasks after refused writes = %+v, want only the first", tasks)
	}
	if d := diffTask(tasks[0], task); d != "" {
		t.Errorf("a refused update or delete changed the task: %s", d)
	}
	if d := diffTask(mustGet(t, s, tenant, task.ID), task); d != "" {
		t.Errorf("a refused update or delete changed the task: %s", d)
	}
	evs := outbox(t, s, tenant, store.OutboxPending)
	if len(evs) != 1 || evs[0].Action != "task.created" || evs[0].ResourceID != task.ID || evs[0].Actor != first.Actor {
		t.Errorf("outbox after refused writes = %+v, want only the first event", evs)
	}
}

// testOutboxRefusedTaskWrite: the reverse, a task write refused with a new
// event: the event is not written, so its id is still free afterwards.
func testOutboxRefusedTaskWrite(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	task := mustCreate(t, s, newTask(tenant, "t"))
	ev := newEvent("task.updated")
	_, err := s.UpdateTask(ctx(t), tenant, task.ID, `"stale"`, store.TaskPatch{Completed: ptr(true)}, ev)
	wantErr(t, "UpdateTask(stale ETag)", err, store.ErrPreconditionFailed)
	err = s.DeleteTask(ctx(t), tenant, task.ID, `"stale"`, ev)
	wantErr(t, "DeleteTask(stale ETag)", err, store.ErrPreconditionFailed)
	_, err = s.UpdateTask(ctx(t), tenant, randomID("missing"), "", store.TaskPatch{Completed: ptr(true)}, ev)
	wantErr(t, "UpdateTask(unknown)", err, store.ErrNotFound)
	err = s.DeleteTask(ctx(t), tenant, randomID("missing"), "", ev)
	wantErr(t, "DeleteTask(unknown)", err, store.ErrNotFound)
	for _, state := range []string{store.OutboxPending, store.OutboxDead} {
		if got := outbox(t, s, tenant, state); len(got) != 0 {
			t.Errorf("refused task writes left %s events: %+v", state, got)
		}
	}
	// The id was never taken: the same event goes with the write that lands.
	updated, err := s.UpdateTask(ctx(t), tenant, task.ID, task.ETag, store.TaskPatch{Completed: ptr(true)}, ev)
	if err != nil {
		t.Fatalf("UpdateTask with the refused writes' event id: %v", err)
	}
	evs := outbox(t, s, tenant, store.OutboxPending)
	if len(evs) != 1 || evs[0].EventID != ev.EventID || evs[0].ResourceID != updated.ID {
		t.Errorf("outbox = %+v, want the one event", evs)
	}
}

// testOutboxDueOrder: due events come by NextAttempt, not by creation: an
// event retried later comes after one created after it.
func testOutboxDueOrder(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	// Ids that sort against creation order, so neither order stands in for the other.
	first, second := newEvent("task.created"), newEvent("task.created")
	first.EventID, second.EventID = randomID("ev-b"), randomID("ev-a")
	mustCreateWith := func(ev *store.OutboxEvent) {
		if _, err := s.CreateTask(ctx(t), newTask(tenant, "t"), ev); err != nil {
			t.Fatal(err)
		}
	}
	mustCreateWith(first)
	mustCreateWith(second)
	later := time.Now().Add(time.Minute)
	if err := s.MarkFailed(ctx(t), tenant, first.EventID, "retry later", later, false); err != nil {
		t.Fatal(err)
	}
	got := due(t, s, tenant, later.Add(time.Second))
	if len(got) != 2 || got[0].EventID != second.EventID || got[1].EventID != first.EventID {
		t.Errorf("due events = %+v, want the second (due now) before the first (retried in a minute)", got)
	}
	listed := outbox(t, s, tenant, store.OutboxPending)
	if len(listed) != 2 || listed[0].EventID != second.EventID || listed[1].EventID != first.EventID {
		t.Errorf("ListOutbox = %+v, want the newest (second) first", listed)
	}
	// A page that holds exactly what is left says there is no next page.
	page, err := s.ListOutbox(ctx(t), tenant, store.OutboxPending, 2, "")
	if err != nil || len(page.Items) != 2 || page.Next != "" {
		t.Errorf("ListOutbox(limit 2) of 2 events = %d items, next %q, %v; want 2 and no next page", len(page.Items), page.Next, err)
	}
}

func testOutboxFailures(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	ev := newEvent("task.created")
	if _, err := s.CreateTask(ctx(t), newTask(tenant, "t"), ev); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.MarkFailed(ctx(t), tenant, ev.EventID, "unavailable: audit down", now.Add(time.Hour), false); err != nil {
		t.Fatal(err)
	}
	if got := due(t, s, tenant, now.Add(time.Minute)); len(got) != 0 {
		t.Errorf("due before its next attempt: %+v", got)
	}
	later := due(t, s, tenant, now.Add(2*time.Hour))
	if len(later) != 1 || later[0].Attempts != 1 || later[0].LastError != "unavailable: audit down" || later[0].State != store.OutboxPending {
		t.Fatalf("after one failure: %+v", later)
	}
	if err := s.MarkFailed(ctx(t), tenant, ev.EventID, "rejected: 400", now, true); err != nil {
		t.Fatal(err)
	}
	dead := outbox(t, s, tenant, store.OutboxDead)
	if len(dead) != 1 || dead[0].Attempts != 2 || dead[0].State != store.OutboxDead {
		t.Fatalf("dead letters: %+v", dead)
	}
	if got := due(t, s, tenant, now.Add(24*time.Hour)); len(got) != 0 {
		t.Errorf("a dead letter is due: %+v", got)
	}
	if got := outbox(t, s, tenant, store.OutboxPending); len(got) != 0 {
		t.Errorf("a dead letter is pending: %+v", got)
	}
	// A dead letter is left alone by later failures.
	if err := s.MarkFailed(ctx(t), tenant, ev.EventID, "again", now, false); err != nil {
		t.Fatal(err)
	}
	if dead := outbox(t, s, tenant, store.OutboxDead); len(dead) != 1 || dead[0].Attempts != 2 {
		t.Errorf("dead letter after another failure: %+v", dead)
	}
	wantErr(t, "MarkFailed(unknown)", s.MarkFailed(ctx(t), tenant, randomID("ev"), "x", now, false), store.ErrNotFound)
	// Other tenants' outboxes are not this tenant's.
	if got := outbox(t, s, randomID("tenant"), store.OutboxDead); len(got) != 0 {
		t.Errorf("another tenant sees %+v", got)
	}
}

func testOutboxValidation(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	_, err := s.ListOutbox(ctx(t), tenant, "lost", 0, "")
	wantErr(t, "ListOutbox(bad state)", err, store.ErrInvalid)
	ev := newEvent("task.created")
	ev.TenantID = randomID("other")
	_, err = s.CreateTask(ctx(t), newTask(tenant, "t"), ev)
	wantErr(t, "CreateTask(event of another tenant)", err, store.ErrInvalid)
	_, err = s.ListOutbox(ctx(t), tenant, store.OutboxDead, 0, "not a cursor")
	wantErr(t, "ListOutbox(bad cursor)", err, store.ErrInvalid)
}

func testOutboxPaging(t *testing.T, s store.Store) {
	tenant := randomID("tenant")
	want := map[string]bool{}
	for i := range 5 {
		ev := newEvent("task.created")
		ev.EventID = fmt.Sprintf("%s.%d-uuid-like", randomID("ev"), i) // event ids are the caller's: dots and all
		if _, err := s.CreateTask(ctx(t), newTask(tenant, "t"), ev); err != nil {
			t.Fatal(err)
		}
		want[ev.EventID] = true
	}
	got := map[string]bool{}
	cursor, pages := "", 0
	for {
		page, err := s.ListOutbox(ctx(t), tenant, store.OutboxPending, 2, cursor)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		for _, e := range page.Items {
			if got[e.EventID] {
				t.Errorf("%s listed twice", e.EventID)
			}
			got[e.EventID] = true
		}
		if cursor = page.Next; cursor == "" || pages > 5 {
			break
		}
	}
	if pages != 3 || len(got) != len(want) {
		t.Errorf("%d pages, %d events; want 3 pages, %d events", pages, len(got), len(want))
	}
}
