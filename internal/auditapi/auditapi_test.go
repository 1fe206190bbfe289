package auditapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/store"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
)

// service is the Audit Service behind httptest, trusting an emulator, on a
// SQLite store, with app-only tokens from the emulator by real MSAL.
type service struct {
	srv    *entra.Server
	url    string
	writer string // the Task API's token: AuditLog.Write
	reader string // the operator's token: AuditLog.Read
}

func startService(t *testing.T) *service {
	t.Helper()
	srv := entratest.Start(t, entra.Config{})
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	app, err := auditapi.New(t.Context(), auditapi.Config{
		Authority: srv.BaseURL(), HomeTenantID: entra.HomeTenantID, ClientID: entra.AuditClientID,
		Writers: []string{entra.TaskAPIClientID}, HTTPClient: srv.HTTPClient(),
	}, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(app.Handler())
	t.Cleanup(hs.Close)
	return &service{
		srv:    srv,
		url:    hs.URL,
		writer: appToken(t, srv, entra.TaskAPIClientID, entra.TaskAPISecret),
		reader: appToken(t, srv, entra.OperatorClientID, entra.OperatorSecret),
	}
}

func appToken(t *testing.T, srv *entra.Server, clientID, secret string) string {
	t.Helper()
	cred, err := confidential.NewCredFromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := confidential.New(srv.Authority(entra.HomeTenantID), clientID, cred,
		confidential.WithHTTPClient(srv.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.AcquireTokenByCredential(context.Background(), []string{entra.AuditClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	return res.AccessToken
}

func (s *service) do(t *testing.T, method, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+"/api/audit?tenant_id="+entra.HomeTenantID, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestRedelivery: an event the service already holds is answered 200 with
// the entry first recorded, never a second entry, even when the redelivery
// says something else about it.
func TestRedelivery(t *testing.T) {
	s := startService(t)
	event := map[string]any{"event_id": "ev-redelivered", "action": "task.created", "resource_id": "task-1",
		"actor": entra.AliceOID, "tenant_id": entra.HomeTenantID}
	status, body := s.do(t, "POST", s.writer, event)
	if status != http.StatusCreated {
		t.Fatalf("first delivery: %d %s, want 201", status, body)
	}
	var first store.AuditEntry
	if err := json.Unmarshal(body, &first); err != nil {
		t.Fatal(err)
	}
	if first.EventID != "ev-redelivered" || first.CallerApp != entra.TaskAPIClientID || first.Action != "task.created" {
		t.Errorf("first entry = %+v", first)
	}

	changed := map[string]any{"event_id": "ev-redelivered", "action": "task.deleted", "resource_id": "task-2",
		"actor": "someone-else", "tenant_id": entra.HomeTenantID}
	for i, redelivery := range []map[string]any{event, changed} {
		status, body := s.do(t, "POST", s.writer, redelivery)
		if status != http.StatusOK {
			t.Fatalf("redelivery %d: %d %s, want 200", i, status, body)
		}
		var again store.AuditEntry
		if err := json.Unmarshal(body, &again); err != nil {
			t.Fatal(err)
		}
		if again.EventID != first.EventID || again.Action != first.Action || again.ResourceID != first.ResourceID ||
			again.Actor != first.Actor || !again.Timestamp.Equal(first.Timestamp) {
			t.Errorf("redelivery %d answered %+v, want the first entry %+v", i, again, first)
		}
	}

	status, body = s.do(t, "GET", s.reader, nil)
	if status != http.StatusOK {
		t.Fatalf("list: %d %s", status, body)
	}
	var list struct {
		Items []store.AuditEntry `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].EventID != "ev-redelivered" || list.Items[0].Action != "task.created" {
		t.Errorf("entries after two redeliveries = %+v, want the one first recorded", list.Items)
	}

	// A new event is still created, so 200 above is the redelivery's answer only.
	event["event_id"] = "ev-new"
	if status, body := s.do(t, "POST", s.writer, event); status != http.StatusCreated {
		t.Errorf("a new event: %d %s, want 201", status, body)
	}
}

// TestWriteRequiresTheWriter: the reader's token (AuditLog.Read) cannot write.
func TestWriteRequiresTheWriter(t *testing.T) {
	s := startService(t)
	event := map[string]any{"event_id": "ev-1", "action": "task.created", "resource_id": "task-1",
		"actor": entra.AliceOID, "tenant_id": entra.HomeTenantID}
	if status, body := s.do(t, "POST", s.reader, event); status != http.StatusForbidden {
		t.Errorf("write with the reader's token: %d %s, want 403", status, body)
	}
}
