package table_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/azuritetest"
	"github.com/handoff-dev/handoff/internal/store/storetest"
	"github.com/handoff-dev/handoff/internal/store/table"
)

// tablePrefix returns a fresh table prefix, so that stores on one Azurite
// do not see each other's tables.
func tablePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func randomHex(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func openTable(t testing.TB, cfg table.Config) *table.Store {
	t.Helper()
	s, err := table.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// noRetries makes a failed request fail at once.
var noRetries = &policy.RetryOptions{MaxRetries: -1}

// TestTableAzurite runs the contract suite, and the Table store's own
// tests that need the service, on one Azurite.
func TestTableAzurite(t *testing.T) {
	t.Parallel()
	conn := azuritetest.Start(t)

	// A store (and tables) per subtest.
	t.Run("Contract", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) store.Store {
			return openTable(t, table.Config{ConnectionString: conn, TablePrefix: tablePrefix()})
		})
	})
	// One store for every subtest, as the apps' instances share an account.
	t.Run("SharedContract", func(t *testing.T) {
		t.Parallel()
		s := openTable(t, table.Config{ConnectionString: conn, TablePrefix: tablePrefix()})
		storetest.Run(t, func(*testing.T) store.Store { return s })
	})
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, conn string)
	}{
		{"ReopenExistingTables", testTableReopen},
		{"TwoStores", testTableTwoStores},
		{"AnyIDs", testTableAnyIDs},
		{"Rows", testTableRows},
		{"OutageWritesNothing", testTableOutageWritesNothing},
		{"LostAnswers", testTableLostAnswers},
		{"AuditCompletedByRetry", testTableAuditCompletedByRetry},
		{"RefusedRecords", testTableRefusedRecords},
		{"Closed", testTableClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, conn)
		})
	}
}

// rawTable is a table of the store read and written past it.
func rawTable(t testing.TB, conn, name string) *aztables.Client {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc.NewClient(name)
}

// rawRows returns the partition's entities by RowKey, without the
// service's properties.
func rawRows(t testing.TB, c *aztables.Client, pk string) map[string]map[string]any {
	t.Helper()
	filter := fmt.Sprintf("PartitionKey eq '%s'", pk)
	pager := c.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	rows := map[string]map[string]any{}
	for pager.More() {
		resp, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatalf("list %s: %v", pk, err)
		}
		for _, raw := range resp.Entities {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			rk := m["RowKey"].(string)
			for k := range m {
				if k == "RowKey" || k == "Timestamp" || strings.HasPrefix(k, "odata.") || strings.HasPrefix(k, "Timestamp@") {
					delete(m, k)
				}
			}
			rows[rk] = m
		}
	}
	return rows
}

// checkTaskRows checks that every task row of the tenant has its index row
// with the same properties, and no index row is without its task row. It
// returns the number of tasks.
func checkTaskRows(t testing.TB, conn, prefix, tenant string) int {
	t.Helper()
	rows := rawRows(t, rawTable(t, conn, prefix+"tasks"), table.Key(tenant))
	var tasks, index int
	for rk, row := range rows {
		switch {
		case strings.HasPrefix(rk, "t|"):
			tasks++
			at, _ := strconv.ParseInt(row["CreatedAt"].(string), 10, 64)
			id := row["ID"].(string)
			found := false
			for irk, irow := range rows {
				if strings.HasPrefix(irk, "i|") && strings.HasSuffix(irk, "|"+invertHex(id)) {
					found = true
					if fmt.Sprint(irow) != fmt.Sprint(row) {
						t.Errorf("task row %s: %v\nindex row %s: %v", rk, row, irk, irow)
					}
					if want := fmt.Sprintf("i|%019d|%s", int64(^uint64(0)>>1)-at, invertHex(id)); irk != want {
						t.Errorf("index row %s, want %s", irk, want)
					}
				}
			}
			if !found {
				t.Errorf("task row %s has no index row", rk)
			}
		case strings.HasPrefix(rk, "i|"):
			index++
		default:
			t.Errorf("unexpected row %s", rk)
		}
	}
	if tasks != index {
		t.Errorf("%d task rows, %d index rows", tasks, index)
	}
	return tasks
}

func invertHex(id string) string {
	const digits = "0123456789abcdef"
	b := []byte(id)
	for i, c := range b {
		b[i] = digits[15-strings.IndexByte(digits, c)]
	}
	return string(b)
}

func testTableReopen(t *testing.T, conn string) {
	prefix := tablePrefix()
	s := openTable(t, table.Config{ConnectionString: conn, TablePrefix: prefix})
	task, err := s.CreateTask(t.Context(), store.Task{TenantID: "t1", Title: "survives"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Opening again finds the tables (TableAlreadyExists) and the data.
	again := openTable(t, table.Config{ConnectionString: conn, TablePrefix: prefix})
	got, err := again.GetTask(t.Context(), "t1", task.ID)
	if err != nil || got != task {
		t.Errorf("GetTask after reopening: %+v, %v; want %+v", got, err, task)
	}
}

// testTableTwoStores writes through two stores at once, as two instances
// of an app would: audit idempotency and ETags hold across them.
func testTableTwoStores(t *testing.T, conn string) {
	ctx := t.Context()
	prefix := tablePrefix()
	stores := []*table.Store{
		openTable(t, table.Config{ConnectionString: conn, TablePrefix: prefix}),
		openTable(t, table.Config{ConnectionString: conn, TablePrefix: prefix}),
	}
	const events = 20
	tenant := randomHex("tenant-")
	task, err := stores[0].CreateTask(ctx, store.Task{TenantID: tenant, Title: "0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created = map[string]int{}
		entries = map[string]store.AuditEntry{}
		updates int
	)
	for i, s := range stores {
		for w := range 2 {
			wg.Go(func() {
				for j := range events {
					ev := fmt.Sprintf("ev-%d", j)
					e, c, err := s.AppendAudit(ctx, store.AuditEntry{EventID: tenant + "/" + ev, TenantID: tenant, Action: fmt.Sprintf("store %d worker %d", i, w)})
					if err != nil {
						t.Errorf("store %d AppendAudit: %v", i, err)
						return
					}
					// Unconditional updates from both stores: none is lost.
					if _, err := s.UpdateTask(ctx, tenant, task.ID, "", store.TaskPatch{Completed: new(j%2 == 0)}, nil); err != nil {
						t.Errorf("store %d UpdateTask: %v", i, err)
						return
					}
					mu.Lock()
					updates++
					if c {
						created[ev]++
					}
					if prev, ok := entries[ev]; ok && prev != e {
						t.Errorf("event %s: entries %+v and %+v", ev, prev, e)
					}
					entries[ev] = e
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for j := range events {
		if ev := fmt.Sprintf("ev-%d", j); created[ev] != 1 {
			t.Errorf("event %s created %d times, want once", ev, created[ev])
		}
	}
	for _, s := range stores {
		p, err := s.ListAudit(ctx, tenant, store.MaxPageSize, "")
		if err != nil || len(p.Items) != events {
			t.Errorf("ListAudit: %d entries, %v; want %d", len(p.Items), err, events)
		}
	}
	if n := checkTaskRows(t, conn, prefix, tenant); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
}

// testTableAnyIDs stores records whose tenant ids, user oids and event ids
// hold what keys may not: every one is accepted, kept apart from the
// others, and read back.
func testTableAnyIDs(t *testing.T, conn string) {
	ctx := t.Context()
	s := openTable(t, table.Config{ConnectionString: conn, TablePrefix: tablePrefix()})
	r := randomHex("")
	ids := []string{
		"a/b" + r, `a\b` + r, "a#b" + r, "a?b" + r, "it's" + r, "a|b" + r, "a_2fb" + r, "!all" + r, "~x" + r,
		"tab\tnew\nline" + r, "\x00nul\x7f\u0085" + r, "%2F" + r, "日本語 🚀" + r, " spaced " + r,
		strings.Repeat("x", 600) + r, strings.Repeat("/", 300) + r, strings.Repeat("/", 300) + r + "!",
	}
	for _, id := range ids {
		task, err := s.CreateTask(ctx, store.Task{TenantID: id, Title: "task", Description: "task of " + id}, nil)
		if err != nil {
			t.Fatalf("CreateTask(tenant %q): %v", id, err)
		}
		if got, err := s.GetTask(ctx, id, task.ID); err != nil || got != task {
			t.Errorf("GetTask(tenant %q): %+v, %v", id, got, err)
		}
		if _, err := s.AddNotification(ctx, store.Notification{TenantID: id, UserOID: id, Event: "e"}); err != nil {
			t.Fatalf("AddNotification(%q): %v", id, err)
		}
		if _, created, err := s.AppendAudit(ctx, store.AuditEntry{EventID: id, TenantID: id, Action: "a"}); err != nil || !created {
			t.Fatalf("AppendAudit(event %q): created %v, %v", id, created, err)
		}
	}
	// Each id sees its own records only.
	for _, id := range ids {
		tasks, err := s.ListTasks(ctx, id, 0, "")
		if err != nil || len(tasks.Items) != 1 || tasks.Items[0].Description != "task of "+id {
			t.Errorf("ListTasks(%q): %+v, %v", id, tasks.Items, err)
		}
		ns, err := s.ListNotifications(ctx, id, id, 0, "")
		if err != nil || len(ns.Items) != 1 || ns.Items[0].UserOID != id {
			t.Errorf("ListNotifications(%q): %+v, %v", id, ns.Items, err)
		}
		es, err := s.ListAudit(ctx, id, 0, "")
		if err != nil || len(es.Items) != 1 || es.Items[0].EventID != id {
			t.Errorf("ListAudit(%q): %+v, %v", id, es.Items, err)
		}
		if _, created, err := s.AppendAudit(ctx, store.AuditEntry{EventID: id, TenantID: id}); err != nil || created {
			t.Errorf("AppendAudit(event %q again): created %v, %v; want the stored entry", id, created, err)
		}
	}
	// Key forms are distinct, and never longer than the service allows.
	seen := map[string]string{}
	for _, id := range ids {
		k := table.Key(id)
		if prev, dup := seen[k]; dup {
			t.Errorf("ids %q and %q share the key %q", prev, id, k)
		}
		seen[k] = id
	}
}

// testTableRows looks at the rows the store writes: a task's two rows stay
// equal through updates and go together.
func testTableRows(t *testing.T, conn string) {
	ctx := t.Context()
	prefix := tablePrefix()
	s := openTable(t, table.Config{ConnectionString: conn, TablePrefix: prefix})
	tenant := randomHex("tenant-")
	var tasks []store.Task
	for i := range 3 {
		task, err := s.CreateTask(ctx, store.Task{TenantID: tenant, Title: "t" + strconv.Itoa(i), Description: "d"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, task)
	}
	if _, err := s.UpdateTask(ctx, tenant, tasks[0].ID, tasks[0].ETag, store.TaskPatch{Title: new("changed"), Completed: new(true)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateTask(ctx, tenant, tasks[1].ID, "", store.TaskPatch{}, nil); err != nil {
		t.Fatal(err)
	}
	if n := checkTaskRows(t, conn, prefix, tenant); n != 3 {
		t.Errorf("%d tasks, want 3", n)
	}
	if err := s.DeleteTask(ctx, tenant, tasks[2].ID, tasks[2].ETag, nil); err != nil {
		t.Fatal(err)
	}
	if n := checkTaskRows(t, conn, prefix, tenant); n != 2 {
		t.Errorf("%d tasks, want 2", n)
	}
	// Times are Int64 microseconds.
	rows := rawRows(t, rawTable(t, conn, prefix+"tasks"), tenant)
	row := rows["t|"+tasks[1].ID]
	if row["CreatedAt"] != strconv.FormatInt(tasks[1].CreatedAt.UnixMicro(), 10) || row["CreatedAt@odata.type"] != "Edm.Int64" {
		t.Errorf("CreatedAt stored as %v (%v)", row["CreatedAt"], row["CreatedAt@odata.type"])
	}
}

// faultTransport sends requests on, failing the ones a rule picks: before
// sending them (the service never sees them) or after (the service acted,
// the answer is lost).
type faultTransport struct {
	next  *http.Client
	mu    sync.Mutex
	down  bool // every request fails before it is sent
	rules []faultRule
	seen  []string // "METHOD path" of every request
}

type faultRule struct {
	match      func(*http.Request) bool
	loseAnswer bool // false: the request is not sent
	times      int  // how many requests it fails
}

var errInjected = errors.New("injected network failure")

func newFaultTransport() *faultTransport {
	return &faultTransport{next: &http.Client{Timeout: 30 * time.Second}}
}

func (f *faultTransport) Do(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.seen = append(f.seen, req.Method+" "+req.URL.Path)
	down := f.down
	var rule *faultRule
	for i := range f.rules {
		if r := &f.rules[i]; r.times > 0 && r.match(req) {
			r.times--
			rule = r
			break
		}
	}
	f.mu.Unlock()
	if down || (rule != nil && !rule.loseAnswer) {
		return nil, errInjected
	}
	resp, err := f.next.Do(req)
	if err != nil || rule == nil {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, errInjected
}

func (f *faultTransport) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *faultTransport) add(r faultRule) {
	f.mu.Lock()
	f.rules = append(f.rules, r)
	f.mu.Unlock()
}

func isBatch(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/$batch")
}

func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("%s: %v, want ErrUnavailable", what, err)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrPreconditionFailed) || errors.Is(err, store.ErrInvalid) {
		t.Errorf("%s: %v, want no answer about the record", what, err)
	}
}

// testTableOutageWritesNothing: while the storage cannot be reached, every
// write fails with ErrUnavailable, and once it can, nothing of them is
// there.
func testTableOutageWritesNothing(t *testing.T, conn string) {
	ctx := t.Context()
	prefix := tablePrefix()
	ft := newFaultTransport()
	s := openTable(t, table.Config{ConnectionString: conn, TablePrefix: prefix, Transport: ft, Retry: noRetries})
	tenant := randomHex("tenant-")
	task, err := s.CreateTask(ctx, store.Task{TenantID: tenant, Title: "before"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	ft.setDown(true)
	_, err = s.CreateTask(ctx, store.Task{TenantID: tenant, Title: "during"}, nil)
	wantUnavailable(t, "CreateTask", err)
	_, err = s.UpdateTask(ctx, tenant, task.ID, task.ETag, store.TaskPatch{Title: new("during")}, nil)
	wantUnavailable(t, "UpdateTask", err)
	wantUnavailable(t, "DeleteTask", s.DeleteTask(ctx, tenant, task.ID, "", nil))
	_, err = s.AddNotification(ctx, store.Notification{TenantID: tenant, UserOID: "u"})
	wantUnavailable(t, "AddNotification", err)
	_, _, err = s.AppendAudit(ctx, store.AuditEntry{EventID: tenant + "-ev", TenantID: tenant})
	wantUnavailable(t, "AppendAudit", err)
	ft.setDown(false)

	// Neither a task row nor an index row of "during"; "before" unchanged.
	if n := checkTaskRows(t, conn, prefix, tenant); n != 1 {
		t.Errorf("%d tasks after the outage, want 1", n)
	}
	if got, err := s.GetTask(ctx, tenant, task.ID); err != nil || got != task {
		t.Errorf("GetTask after the outage: %+v, %v; want %+v", got, err, task)
	}
	if rows := rawRows(t, rawTable(t, conn, prefix+"notifications"), tenant); len(rows) != 0 {
		t.Errorf("notification rows after the outage: %v", rows)
	}
	if rows := rawRows(t, rawTable(t, conn, prefix+"audit"), tenant); len(rows) != 0 {
		t.Errorf("audit rows after the outage: %v", rows)
	}

	// A transaction that reaches the service but whose answer is lost is
	// whole: both rows, or (failed) neither.
	ft.add(faultRule{match: isBatch, loseAnswer: true, times: 1})
	_, err = s.CreateTask(ctx, store.Task{TenantID: tenant, Title: "answer lost"}, nil)
	wantUnavailable(t, "CreateTask (answer lost, no retries)", err)
	if n := checkTaskRows(t, conn, prefix, tenant); n != 2 {
		t.Errorf("%d tasks, want 2 (the lost answer's task stored whole)", n)
	}
}

// testTableLostAnswers: a write the pipeline sends again after its answer
// was lost is recognised as done, not reported as a conflict or a
// changed ETag, and done once.
func testTableLostAnswers(t *testing.T, conn string) {
	ctx := t.Context()
	prefix := tablePrefix()
	ft := newFaultTransport()
	retry := &policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond}
	s := openTable(t, table.Config{ConnectionString: conn, TablePrefix: prefix, Transport: ft, Retry: retry})
	tenant := randomHex("tenant-")

	ft.add(faultRule{match: isBatch, loseAnswer: true, times: 1})
	task, err := s.CreateTask(ctx, store.Task{TenantID: tenant, Title: "once"}, nil)
	if err != nil {
		t.Fatalf("CreateTask (answer lost once): %v", err)
	}
	if got, err := s.GetTask(ctx, tenant, task.ID); err != nil || got != task {
		t.Errorf("GetTask: %+v, %v; want %+v", got, err, task)
	}

	ft.add(faultRule{match: isBatch, loseAnswer: true, times: 1})
	updated, err := s.UpdateTask(ctx, tenant, task.ID, task.ETag, store.TaskPatch{Completed: new(true)}, nil)
	if err != nil {
		t.Fatalf("UpdateTask (answer lost once): %v", err)
	}
	if got, err := s.GetTask(ctx, tenant, task.ID); err != nil || got != updated || !got.Completed {
		t.Errorf("GetTask after update: %+v, %v; want %+v", got, err, updated)
	}
	if n := checkTaskRows(t, conn, prefix, tenant); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}

	isPost := func(r *http.Request) bool { return r.Method == http.MethodPost && !isBatch(r) }
	ft.add(faultRule{match: isPost, loseAnswer: true, times: 1})
	n, err := s.AddNotification(ctx, store.Notification{TenantID: tenant, UserOID: "u", Event: "e"})
	if err != nil {
		t.Fatalf("AddNotification (answer lost once): %v", err)
	}
	if p, err := s.ListNotifications(ctx, tenant, "u", 0, ""); err != nil || len(p.Items) != 1 || p.Items[0] != n {
		t.Errorf("ListNotifications: %+v, %v; want [%+v]", p.Items, err, n)
	}

	// The marker's insert, then its completion.
	for _, rule := range []faultRule{
		{match: isPost, loseAnswer: true, times: 1},
		{match: func(r *http.Request) bool { return r.Method == "MERGE" || r.Method == http.MethodPatch }, loseAnswer: true, times: 1},
	} {
		ft.add(rule)
		ev := randomHex("event-")
		e, created, err := s.AppendAudit(ctx, store.AuditEntry{EventID: ev, TenantID: tenant, Action: "a"})
		if err != nil || !created {
			t.Fatalf("AppendAudit (answer lost once): created %v, %v", created, err)
		}
		again, created, err := s.AppendAudit(ctx, store.AuditEntry{EventID: ev, TenantID: tenant, Action: "b"})
		if err != nil || created || again != e {
			t.Errorf("AppendAudit again: %+v, created %v, %v; want %+v, not created", again, created, err, e)
		}
	}
	if p, err := s.ListAudit(ctx, tenant, 0, ""); err != nil || len(p.Items) != 2 {
		t.Errorf("ListAudit: %+v, %v; want 2 entries", p.Items, err)
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, r := range ft.rules {
		if r.times != 0 {
			t.Errorf("a fault was never injected: the store sent other requests than expected: %q", ft.seen)
			break
		}
	}
}

// testTableAuditCompletedByRetry: an append that fails after its marker is
// stored leaves the entry unlisted in part; its retry lists it and reports
// created, once.
func testTableAuditCompletedByRetry(t *testing.T, conn string) {
	ctx := t.Context()
	ft := newFaultTransport()
	s := openTable(t, table.Config{ConnectionString: conn, TablePrefix: tablePrefix(), Transport: ft, Retry: noRetries})
	tenant, ev := randomHex("tenant-"), randomHex("event-")
	ft.add(faultRule{match: func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "'!all'")
	}, times: 1})
	_, _, err := s.AppendAudit(ctx, store.AuditEntry{EventID: ev, TenantID: tenant, Action: "first"})
	wantUnavailable(t, "AppendAudit (every-tenant row not written)", err)

	listed, err := s.ListAudit(ctx, tenant, 0, "")
	if err != nil || len(listed.Items) != 1 {
		t.Fatalf("ListAudit(tenant) after the failed append: %+v, %v; want its entry (the first listing row was written)", listed.Items, err)
	}
	// Another tenant cannot take the event id over meanwhile.
	if _, _, err := s.AppendAudit(ctx, store.AuditEntry{EventID: ev, TenantID: "other-" + tenant}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("AppendAudit(other tenant, same event id): %v, want ErrInvalid", err)
	}

	e, created, err := s.AppendAudit(ctx, store.AuditEntry{EventID: ev, TenantID: tenant, Action: "retry"})
	if err != nil || !created || e != listed.Items[0] || e.Action != "first" {
		t.Fatalf("AppendAudit (retry): %+v, created %v, %v; want the first attempt's entry %+v, created", e, created, err, listed.Items[0])
	}
	if _, created, err := s.AppendAudit(ctx, store.AuditEntry{EventID: ev, TenantID: tenant}); err != nil || created {
		t.Errorf("AppendAudit (third): created %v, %v; want not created", created, err)
	}
	var found int
	cursor := ""
	for {
		p, err := s.ListAudit(ctx, "", store.MaxPageSize, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range p.Items {
			if item.EventID == ev {
				found++
			}
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if found != 1 {
		t.Errorf(`ListAudit("") lists the entry %d times, want once`, found)
	}
}

// testTableRefusedRecords: records Table Storage cannot hold are refused
// as invalid, and nothing of them is written.
func testTableRefusedRecords(t *testing.T, conn string) {
	ctx := t.Context()
	prefix := tablePrefix()
	s := openTable(t, table.Config{ConnectionString: conn, TablePrefix: prefix})
	tenant := randomHex("tenant-")
	huge := strings.Repeat("x", 40_000) // over a string property's 32K characters
	_, err := s.CreateTask(ctx, store.Task{TenantID: tenant, Title: "t", CreatedByName: huge}, nil)
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("CreateTask(40,000-character name): %v, want ErrInvalid", err)
	}
	_, err = s.CreateTask(ctx, store.Task{TenantID: tenant, Title: "t", CreatedBy: "bad \xff"}, nil)
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("CreateTask(name not UTF-8): %v, want ErrInvalid", err)
	}
	if n := checkTaskRows(t, conn, prefix, tenant); n != 0 {
		t.Errorf("%d tasks stored, want none", n)
	}
	_, err = s.AddNotification(ctx, store.Notification{TenantID: tenant, UserOID: "u", Email: huge})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("AddNotification(40,000-character email): %v, want ErrInvalid", err)
	}
	_, _, err = s.AppendAudit(ctx, store.AuditEntry{TenantID: tenant, EventID: "e-" + tenant, Action: "\xc3\x28"})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("AppendAudit(action not UTF-8): %v, want ErrInvalid", err)
	}
	// Strings of any valid characters round-trip.
	odd := "quotes ' \" <>&, \x00 NUL, \t\r\n, \u2028, emoji 🚀, ∑"
	task, err := s.CreateTask(ctx, store.Task{TenantID: tenant, Title: "odd", Description: odd, CreatedBy: odd, CreatedByName: odd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTask(ctx, tenant, task.ID); err != nil || got != task || !utf8.ValidString(got.Description) {
		t.Errorf("GetTask: %+v, %v; want %+v", got, err, task)
	}
}

func testTableClosed(t *testing.T, conn string) {
	ctx := t.Context()
	s, err := table.Open(ctx, table.Config{ConnectionString: conn, TablePrefix: tablePrefix()})
	if err != nil {
		t.Fatal(err)
	}
	task, err := s.CreateTask(ctx, store.Task{TenantID: "t1", Title: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, err := range allOps(ctx, s, "t1", task) {
		wantUnavailable(t, name+" on a closed store", err)
	}
}

// allOps calls every method of s once and yields its error.
func allOps(ctx context.Context, s store.Store, tenant string, task store.Task) func(yield func(string, error) bool) {
	return func(yield func(string, error) bool) {
		ops := []struct {
			name string
			fn   func() error
		}{
			{"CreateTask", func() error { _, err := s.CreateTask(ctx, store.Task{TenantID: tenant, Title: "x"}, nil); return err }},
			{"GetTask", func() error { _, err := s.GetTask(ctx, tenant, task.ID); return err }},
			{"ListTasks", func() error { _, err := s.ListTasks(ctx, tenant, 0, ""); return err }},
			{"UpdateTask", func() error { _, err := s.UpdateTask(ctx, tenant, task.ID, "", store.TaskPatch{}, nil); return err }},
			{"UpdateTask(If-Match)", func() error {
				_, err := s.UpdateTask(ctx, tenant, task.ID, task.ETag, store.TaskPatch{}, nil)
				return err
			}},
			{"DeleteTask", func() error { return s.DeleteTask(ctx, tenant, task.ID, "", nil) }},
			{"DeleteTask(If-Match)", func() error { return s.DeleteTask(ctx, tenant, task.ID, `"other"`, nil) }},
			{"AddNotification", func() error {
				_, err := s.AddNotification(ctx, store.Notification{TenantID: tenant, UserOID: "u"})
				return err
			}},
			{"ListNotifications", func() error { _, err := s.ListNotifications(ctx, tenant, "u", 0, ""); return err }},
			{"AppendAudit", func() error {
				_, _, err := s.AppendAudit(ctx, store.AuditEntry{EventID: "e", TenantID: tenant})
				return err
			}},
			{"ListAudit", func() error { _, err := s.ListAudit(ctx, "", 0, ""); return err }},
			{"ListAudit(tenant)", func() error { _, err := s.ListAudit(ctx, tenant, 0, ""); return err }},
		}
		for _, op := range ops {
			if !yield(op.name, op.fn()) {
				return
			}
		}
	}
}

// TestTableOutage stops Azurite under an open store: every method fails
// with ErrUnavailable, saying nothing about the records, and promptly.
func TestTableOutage(t *testing.T) {
	t.Parallel()
	az := azuritetest.StartInstance(t)
	ctx := t.Context()
	s := openTable(t, table.Config{ConnectionString: az.ConnectionString, TablePrefix: tablePrefix(), Retry: noRetries})
	task, err := s.CreateTask(ctx, store.Task{TenantID: "t1", Title: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	az.Stop()
	for name, err := range allOps(ctx, s, "t1", task) {
		wantUnavailable(t, name+" with Azurite stopped", err)
	}
	// A canceled request is unavailable too, and says why.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.CreateTask(canceled, store.Task{TenantID: "t1", Title: "x"}, nil)
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("CreateTask(canceled context): %v, want ErrUnavailable and context.Canceled", err)
	}
}

// TestTableOpenErrors needs no service.
func TestTableOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	closed := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;TableEndpoint=http://127.0.0.1:%d/%s;",
		azuritetest.Account, azuritetest.Key, closedPort, azuritetest.Account)
	if s, err := table.Open(ctx, table.Config{ConnectionString: closed, Retry: noRetries}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open(closed port): %v, %v; want ErrUnavailable", s, err)
	}

	for name, cfg := range map[string]table.Config{
		"nothing":               {},
		"both":                  {ConnectionString: closed, ServiceURL: "https://a.table.core.windows.net"},
		"URL, no credential":    {ServiceURL: "https://a.table.core.windows.net"},
		"URL not https":         {ServiceURL: "http://a.table.core.windows.net", Credential: fakeCredential{}},
		"prefix with a dash":    {ConnectionString: closed, TablePrefix: "my-app"},
		"prefix from a digit":   {ConnectionString: closed, TablePrefix: "1app"},
		"prefix too long":       {ConnectionString: closed, TablePrefix: "a" + strings.Repeat("b", 50)},
		"malformed conn string": {ConnectionString: "not a connection string"},
		"dev storage false":     {ConnectionString: "UseDevelopmentStorage=false"},
	} {
		if s, err := table.Open(ctx, cfg); err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Open(%s): %v, %v; want a configuration error", name, s, err)
		}
	}
	if strings.Contains(fmt.Sprint(table.Open(ctx, table.Config{ConnectionString: "AccountName=a;AccountKey=not base64!"})), "not base64") {
		t.Error("Open's error repeats the account key")
	}
}

type fakeCredential struct{}

func (fakeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("no token")
}

func TestTableConnectionString(t *testing.T) {
	t.Parallel()
	const devKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	dev := "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + devKey + ";TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
	for in, want := range map[string]string{
		"UseDevelopmentStorage=true":                                           dev,
		"UseDevelopmentStorage=true;":                                          dev,
		" usedevelopmentstorage=TRUE ":                                         dev,
		"UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite": strings.Replace(dev, "127.0.0.1", "azurite", 1),
		// Anything else is left to aztables.
		"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
	} {
		got, err := table.ExpandConnectionString(in)
		if err != nil || got != want {
			t.Errorf("ExpandConnectionString(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"UseDevelopmentStorage=false", "UseDevelopmentStorage=1", "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=ftp://x"} {
		if got, err := table.ExpandConnectionString(bad); err == nil {
			t.Errorf("ExpandConnectionString(%q) = %q, want an error", bad, got)
		}
	}
	// aztables accepts the expansion (its parser rejects the shorthand).
	if _, err := aztables.NewServiceClientFromConnectionString("UseDevelopmentStorage=true", nil); err == nil {
		t.Log("aztables now parses UseDevelopmentStorage=true itself")
	}
	if _, err := aztables.NewServiceClientFromConnectionString(dev, nil); err != nil {
		t.Errorf("aztables refuses the expansion: %v", err)
	}
}

func TestTableConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, c := range []struct {
		name                 string
		getenv               func(string) string
		conn, url, clientID  string
		identity, wantErrSub string
	}{
		{name: "connection string", getenv: env("AzureWebJobsStorage", "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName", "ignored"),
			conn: "UseDevelopmentStorage=true"},
		{name: "account name, system-assigned", getenv: env("AzureWebJobsStorage__accountName", "handoffdata"),
			url: "https://handoffdata.table.core.windows.net", identity: "yes"},
		{name: "service URI wins over account name", getenv: env("AzureWebJobsStorage__tableServiceUri", "https://x.table.core.windows.net", "AzureWebJobsStorage__accountName", "y"),
			url: "https://x.table.core.windows.net", identity: "yes"},
		{name: "user-assigned from AZURE_CLIENT_ID", getenv: env("AzureWebJobsStorage__accountName", "acct", "AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111"),
			url: "https://acct.table.core.windows.net", clientID: "11111111-1111-1111-1111-111111111111", identity: "yes"},
		{name: "user-assigned from __clientId first", getenv: env("AzureWebJobsStorage__accountName", "acct", "AZURE_CLIENT_ID", "1", "AzureWebJobsStorage__clientId", "2"),
			url: "https://acct.table.core.windows.net", clientID: "2", identity: "yes"},
		{name: "nothing set", getenv: env(), wantErrSub: "AzureWebJobsStorage"},
		{name: "bad account name", getenv: env("AzureWebJobsStorage__accountName", "Not.An/Account"), wantErrSub: "account name"},
		{name: "service URI not https", getenv: env("AzureWebJobsStorage__tableServiceUri", "http://x.table.core.windows.net"), wantErrSub: "https"},
	} {
		cfg, err := table.ConfigFromEnv(c.getenv)
		if c.wantErrSub != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErrSub) {
				t.Errorf("%s: %+v, %v; want an error about %s", c.name, cfg, err, c.wantErrSub)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if cfg.ConnectionString != c.conn || cfg.ServiceURL != c.url || cfg.ManagedIdentityClientID() != c.clientID || (cfg.Credential != nil) != (c.identity != "") {
			t.Errorf("%s: connection string %q, URL %q, client id %q, credential %v; want %q, %q, %q, %v",
				c.name, cfg.ConnectionString, cfg.ServiceURL, cfg.ManagedIdentityClientID(), cfg.Credential != nil, c.conn, c.url, c.clientID, c.identity != "")
		}
	}
}

func TestTableKey(t *testing.T) {
	t.Parallel()
	r := randomHex("")
	inputs := []string{
		"", "a", "A", "tenant-1.x", "0123abcd", "a/b", `a\b`, "a#b", "a?b", "a'b", "a|b", "a_2fb", "a_b", "!all", "~x",
		"\x00", "\x1f", "\x7f", "\u0085", "\xff", "日本", " ", "%2F",
		strings.Repeat("x", 200), strings.Repeat("x", 201), strings.Repeat("/", 66), strings.Repeat("/", 67), strings.Repeat("/", 67) + r,
	}
	seen := map[string]string{}
	for _, in := range inputs {
		k := table.Key(in)
		if prev, dup := seen[k]; dup {
			t.Errorf("TableKey(%q) = TableKey(%q) = %q", in, prev, k)
		}
		seen[k] = in
		if len(k) > 200 {
			t.Errorf("TableKey(%q) is %d characters long", in, len(k))
		}
		for _, c := range k {
			if c < 0x20 || c >= 0x7f || strings.ContainsRune(`/\#?'|!`, c) || (c == '~' && !strings.HasPrefix(k, "~")) {
				t.Errorf("TableKey(%q) = %q holds %q", in, k, c)
			}
		}
	}
	// A key of exactly 200 characters is kept as it is; only longer ones are hashed.
	for _, plain := range []string{"tenant-1.x", "72f988bf-86f1-41af-91ab-2d7cd011db47", strings.Repeat("x", 200)} {
		if k := table.Key(plain); k != plain {
			t.Errorf("TableKey(%q) = %q, want it unchanged", plain, k)
		}
	}
}

// TestTableBatchFailure reads a failed transaction's answer as Azure
// sends it (its documentation's example).
func TestTableBatchFailure(t *testing.T) {
	t.Parallel()
	answer := strings.ReplaceAll(`HTTP/1.1 202 Accepted
Content-Type: multipart/mixed; boundary=batchresponse_e69b1c6c-50d5-4bac-a8bc-1ae2e6e9a66b

--batchresponse_e69b1c6c-50d5-4bac-a8bc-1ae2e6e9a66b
Content-Type: multipart/mixed; boundary=changesetresponse_8d3df6de-9c18-4a3a-8f26-c6f8e0d3dcd3

--changesetresponse_8d3df6de-9c18-4a3a-8f26-c6f8e0d3dcd3
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 412 Precondition Failed
Content-ID: 1
X-Content-Type-Options: nosniff
Cache-Control: no-cache
DataServiceVersion: 3.0;
Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8

{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"1:The update condition specified in the request was not satisfied."}}}
--changesetresponse_8d3df6de-9c18-4a3a-8f26-c6f8e0d3dcd3--
--batchresponse_e69b1c6c-50d5-4bac-a8bc-1ae2e6e9a66b--
`, "\n", "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, code := table.BatchFailure(resp); st != http.StatusPreconditionFailed || code != "UpdateConditionNotSatisfied" {
		t.Errorf("BatchFailure = %d %q, want 412 UpdateConditionNotSatisfied", st, code)
	}
	ok := strings.Replace(answer, "412 Precondition Failed", "204 No Content", 1)
	resp, _ = http.ReadResponse(bufio.NewReader(strings.NewReader(ok)), nil)
	if st, code := table.BatchFailure(resp); st != 0 {
		t.Errorf("BatchFailure(all succeeded) = %d %q, want 0", st, code)
	}
	// The failure bound is 400 itself (a refused record), and 399 is no failure.
	for status, want := range map[string]int{"400 Bad Request": 400, "399 Unknown": 0} {
		answer := strings.Replace(answer, "412 Precondition Failed", status, 1)
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := table.BatchFailure(resp); st != want {
			t.Errorf("BatchFailure(an answer of %s) = %d, want %d", status, st, want)
		}
	}
}
