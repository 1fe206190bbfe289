package notifyapi_test

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
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/internal/notifyapi"
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

// TestHangUpIsLoggedAtInfo: a notification whose caller (the Task API)
// hung up is logged at Info as a hang-up, not at Error as a store failure.
func TestHangUpIsLoggedAtInfo(t *testing.T) {
	srv := entratest.Start(t, entra.Config{})
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "notify.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var logs syncBuffer
	app, err := notifyapi.New(t.Context(), notifyapi.Config{Authority: srv.BaseURL(), HomeTenantID: entra.HomeTenantID,
		ClientID: entra.NotificationClientID, TenantIDs: []string{entra.HomeTenantID}, Callers: []string{entra.TaskAPIClientID},
		HTTPClient: srv.HTTPClient()}, st, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := public.New(entra.DevClientID, public.WithAuthority(srv.Authority(entra.HomeTenantID)),
		public.WithHTTPClient(srv.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	user, err := pc.AcquireTokenByUsernamePassword(t.Context(), []string{"api://" + entra.TaskAPIClientID + "/access_as_user"},
		"alice@home.handoff.test", entra.DefaultUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := confidential.NewCredFromSecret(entra.TaskAPISecret)
	cc, err := confidential.New(srv.Authority(entra.HomeTenantID), entra.TaskAPIClientID, cred,
		confidential.WithHTTPClient(srv.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cc.AcquireTokenOnBehalfOf(t.Context(), user.AccessToken, []string{entra.NotificationClientID + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	post := func(ctx context.Context) int {
		r := httptest.NewRequest("POST", "/api/notify", strings.NewReader(`{"event":"task_created","task_title":"t"}`)).WithContext(ctx)
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		rec := httptest.NewRecorder()
		app.Handler().ServeHTTP(rec, r)
		return rec.Code
	}
	// The first call caches the signing keys, so the next reaches the store.
	if code := post(t.Context()); code != http.StatusCreated {
		t.Fatalf("notify: %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	post(ctx)
	out := logs.String()
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "the caller hung up") || strings.Contains(out, "level=ERROR") {
		t.Errorf("log:\n%s\nwant an Info line saying the caller hung up, no Error", out)
	}
}
