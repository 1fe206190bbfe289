package entra_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
)

// TestEntraErrors triggers each documented pitfall the way a user would, with
// the real MSAL clients, and checks Entra's AADSTS code comes back.
func TestEntraErrors(t *testing.T) {
	ctx := context.Background()
	clk := &clock{}
	srv := entratest.Start(t, entra.Config{Now: clk.Now})
	taskAPI := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
	alice := userToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", taskAPIScope)

	tests := []struct {
		name string
		code int
		do   func(t *testing.T) error
	}{
		{"wrong client secret", 7000215, func(t *testing.T) error {
			c := secretClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID, "not-the-secret")
			_, err := c.AcquireTokenByCredential(ctx, []string{auditScope})
			return err
		}},
		{"public flow with a confidential app's id (no credential)", 7000218, func(t *testing.T) error {
			pc := publicClient(t, srv, entra.HomeTenantID, entra.TaskAPIClientID)
			//lint:ignore SA1019 the password grant is deprecated; here it reproduces AADSTS7000218.
			_, err := pc.AcquireTokenByUsernamePassword(ctx, []string{taskAPIScope}, "alice@home.handoff.test", entra.DefaultUserPassword)
			return err
		}},
		{"OBO assertion altered after signing", 50013, func(t *testing.T) error {
			_, err := taskAPI.AcquireTokenOnBehalfOf(ctx, alterPayload(t, alice.AccessToken, "name", "Mallory"), []string{notificationScope})
			return err
		}},
		{"OBO assertion for another audience", 500131, func(t *testing.T) error {
			other := userToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", "api://"+entra.NotificationClientID+"/"+entra.ScopeNotifyRead)
			_, err := taskAPI.AcquireTokenOnBehalfOf(ctx, other.AccessToken, []string{notificationScope})
			return err
		}},
		{"OBO with an app-only token", 7000114, func(t *testing.T) error {
			op := secretClient(t, srv, entra.HomeTenantID, entra.OperatorClientID, entra.OperatorSecret)
			app, err := op.AcquireTokenByCredential(ctx, []string{entra.TaskAPIClientID + "/.default"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = taskAPI.AcquireTokenOnBehalfOf(ctx, app.AccessToken, []string{notificationScope})
			return err
		}},
		{"user flow for a scope the client was not consented to", 65001, func(t *testing.T) error {
			pc := publicClient(t, srv, entra.HomeTenantID, entra.DevClientID)
			//lint:ignore SA1019 the password grant is deprecated; here it reproduces AADSTS65001.
			_, err := pc.AcquireTokenByUsernamePassword(ctx, []string{"api://" + entra.NotificationClientID + "/" + entra.ScopeNotifySend}, "alice@home.handoff.test", entra.DefaultUserPassword)
			return err
		}},
		{"scope the API does not expose", 70011, func(t *testing.T) error {
			pc := publicClient(t, srv, entra.HomeTenantID, entra.DevClientID)
			//lint:ignore SA1019 the password grant is deprecated; here it reproduces AADSTS70011.
			_, err := pc.AcquireTokenByUsernamePassword(ctx, []string{"api://" + entra.TaskAPIClientID + "/tasks.everything"}, "alice@home.handoff.test", entra.DefaultUserPassword)
			return err
		}},
		{"client credentials with a role name instead of /.default", 1002012, func(t *testing.T) error {
			_, err := taskAPI.AcquireTokenByCredential(ctx, []string{"api://" + entra.AuditClientID + "/" + entra.RoleAuditWrite})
			return err
		}},
		{"single-tenant app used in another tenant", 700016, func(t *testing.T) error {
			op := secretClient(t, srv, entra.SecondTenantID, entra.OperatorClientID, entra.OperatorSecret)
			_, err := op.AcquireTokenByCredential(ctx, []string{entra.TaskAPIClientID + "/.default"})
			return err
		}},
		{"resource not provisioned in the tenant", 500011, func(t *testing.T) error {
			c := secretClient(t, srv, entra.SecondTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
			_, err := c.AcquireTokenByCredential(ctx, []string{auditScope})
			return err
		}},
		{"wrong password", 50126, func(t *testing.T) error {
			pc := publicClient(t, srv, entra.HomeTenantID, entra.DevClientID)
			//lint:ignore SA1019 the password grant is deprecated; here it reproduces AADSTS50126.
			_, err := pc.AcquireTokenByUsernamePassword(ctx, []string{taskAPIScope}, "alice@home.handoff.test", "guess")
			return err
		}},
		{"unknown tenant", 90002, func(t *testing.T) error {
			c := secretClient(t, srv, "99999999-0000-4000-8000-000000000009", entra.TaskAPIClientID, entra.TaskAPISecret)
			_, err := c.AcquireTokenByCredential(ctx, []string{auditScope})
			return err
		}},
		// Last: it moves the emulator's clock past alice's token's expiry.
		{"OBO with an expired assertion", 500133, func(t *testing.T) error {
			clk.Advance(2 * time.Hour)
			defer clk.Advance(-2 * time.Hour)
			_, err := taskAPI.AcquireTokenOnBehalfOf(ctx, alice.AccessToken, []string{notificationScope})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(t)
			if got := aadsts(err); got != tt.code {
				t.Fatalf("got AADSTS%d (%v), want AADSTS%d", got, err, tt.code)
			}
		})
	}
}

// TestUserNotAssigned: an API that requires assignment refuses users without a role.
func TestUserNotAssigned(t *testing.T) {
	dir := entra.DefaultDirectory()
	for _, sp := range dir.Tenant(entra.HomeTenantID).ServicePrincipals {
		if sp.AppID == entra.TaskAPIClientID {
			sp.AppRoleAssignmentRequired = true
		}
	}
	srv := entratest.Start(t, entra.Config{Directory: dir})
	pc := publicClient(t, srv, entra.HomeTenantID, entra.DevClientID)
	//lint:ignore SA1019 the password grant is deprecated; here it reproduces AADSTS50105.
	_, err := pc.AcquireTokenByUsernamePassword(context.Background(), []string{taskAPIScope}, "dave@home.handoff.test", entra.DefaultUserPassword)
	if aadsts(err) != 50105 {
		t.Fatalf("dave without a role: %v, want AADSTS50105", err)
	}
	// alice has a role and still gets in.
	userToken(t, srv, entra.HomeTenantID, "alice@home.handoff.test", taskAPIScope)
}

// TestErrorBody checks the error JSON has Entra's shape.
func TestErrorBody(t *testing.T) {
	srv := start(t)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {entra.TaskAPIClientID},
		"client_secret": {"wrong"}, "scope": {auditScope}}
	req, _ := http.NewRequest(http.MethodPost, srv.Authority(entra.HomeTenantID)+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("client-request-id", "11111111-2222-4333-8444-555555555555")
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", resp.StatusCode)
	}
	var body struct {
		Error         string `json:"error"`
		Description   string `json:"error_description"`
		Codes         []int  `json:"error_codes"`
		Timestamp     string `json:"timestamp"`
		TraceID       string `json:"trace_id"`
		CorrelationID string `json:"correlation_id"`
		ErrorURI      string `json:"error_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Error != "invalid_client" || len(body.Codes) != 1 || body.Codes[0] != 7000215 ||
		!strings.HasPrefix(body.Description, "AADSTS7000215: ") || body.Timestamp == "" || !entra.IsGUID(body.TraceID) ||
		body.CorrelationID != "11111111-2222-4333-8444-555555555555" || body.ErrorURI == "" {
		t.Errorf("error body = %+v", body)
	}
}

// TestOBOWithoutAdminConsent: a tenant onboarded without admin consent for the
// Task API's downstream permissions answers OBO with 65001 and suberror
// consent_required, which MSAL and apps branch on.
func TestOBOWithoutAdminConsent(t *testing.T) {
	dir := entra.DefaultDirectory()
	second := dir.Tenant(entra.SecondTenantID)
	second.ConsentGrants = slices.DeleteFunc(second.ConsentGrants, func(g *entra.ConsentGrant) bool {
		return g.ClientAppID == entra.TaskAPIClientID
	})
	srv := entratest.Start(t, entra.Config{Directory: dir})
	erin := userToken(t, srv, entra.SecondTenantID, "erin@fabrikam.handoff.test", taskAPIScope)

	taskAPI := secretClient(t, srv, entra.SecondTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
	_, err := taskAPI.AcquireTokenOnBehalfOf(context.Background(), erin.AccessToken, []string{notificationScope})
	if aadsts(err) != 65001 {
		t.Fatalf("OBO without consent: %v, want AADSTS65001", err)
	}

	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "requested_token_use": {"on_behalf_of"},
		"client_id": {entra.TaskAPIClientID}, "client_secret": {entra.TaskAPISecret}, "assertion": {erin.AccessToken}, "scope": {notificationScope}}
	resp, err := srv.HTTPClient().PostForm(srv.Authority(entra.SecondTenantID)+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 400 || body["error"] != "invalid_grant" || body["suberror"] != "consent_required" {
		t.Errorf("status %d body %v", resp.StatusCode, body)
	}
}

// alterPayload changes one claim and keeps the original signature, as an
// attacker editing a token would.
func alterPayload(t *testing.T, tok, claim, value string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	c := claims(t, tok)
	c[claim] = value
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}
