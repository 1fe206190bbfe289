package auditapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/store/sqlite"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestHangUpIsLoggedAtInfo: an append whose caller (the Task API) hung up
// is logged at Info as a hang-up, not at Error as "storage unavailable".
func TestHangUpIsLoggedAtInfo(t *testing.T) {
	srv := entratest.Start(t, entra.Config{})
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var logs syncBuffer
	app, err := auditapi.New(t.Context(), auditapi.Config{Authority: srv.BaseURL(), HomeTenantID: entra.HomeTenantID,
		ClientID: entra.AuditClientID, Writers: []string{entra.TaskAPIClientID}, HTTPClient: srv.HTTPClient()},
		st, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := confidential.NewCredFromSecret(entra.TaskAPISecret)
	cc, err := confidential.New(srv.Authority(entra.HomeTenantID), entra.TaskAPIClientID, cred,
		confidential.WithHTTPClient(srv.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cc.AcquireTokenByCredential(t.Context(), []string{entra.AuditClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	post := func(ctx context.Context, eventID string) int {
		r := httptest.NewRequest("POST", "/api/audit", strings.NewReader(`{"event_id":"`+eventID+
			`","action":"task.created","resource_id":"r1","actor":"a1","tenant_id":"`+entra.HomeTenantID+`"}`)).WithContext(ctx)
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		rec := httptest.NewRecorder()
		app.Handler().ServeHTTP(rec, r)
		return rec.Code
	}
	// The first append caches the signing keys, so the next reaches the store.
	if code := post(t.Context(), "ev-1"); code != http.StatusCreated {
		t.Fatalf("append: %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	post(ctx, "ev-2")
	out := logs.String()
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "the caller hung up") || strings.Contains(out, "level=ERROR") {
		t.Errorf("log:\n%s\nwant an Info line saying the caller hung up, no Error", out)
	}
}
