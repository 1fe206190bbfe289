package entra_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
)

// enterDeviceCode is the user at the verification page: it opens it, enters
// the code, and picks the user (by username) on the sign-in page that follows.
func enterDeviceCode(srv *entra.Server, verificationURI, userCode, username string) error {
	hc := srv.HTTPClient()
	resp, err := hc.Get(verificationURI)
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || action == nil {
		return fmt.Errorf("the code page: %s\n%s", resp.Status, page)
	}
	resp, err = hc.PostForm(string(action[1]), url.Values{"otc": {strings.ToLower(userCode)}, "decision": {"next"}})
	if err != nil {
		return err
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	// The sign-in page: one button per user, carrying its oid, and the code hidden.
	m := regexp.MustCompile(`<button type="submit" name="user" value="([^"]+)" data-username="` + regexp.QuoteMeta(username) + `"`).FindSubmatch(page)
	action = regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindSubmatch(page)
	otc := regexp.MustCompile(`<input type="hidden" name="otc" value="([^"]+)"`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || action == nil || otc == nil {
		return fmt.Errorf("the sign-in page: %s\n%s", resp.Status, page)
	}
	resp, err = hc.PostForm(string(action[1]), url.Values{"otc": {string(otc[1])}, "user": {string(m[1])}})
	if err != nil {
		return err
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "signed in to") {
		return fmt.Errorf("signing in: %s\n%s", resp.Status, page)
	}
	return nil
}

// TestDeviceCodeMSAL: MSAL Go's AcquireTokenByDeviceCode completes once bob
// enters the code on the emulator's page; the Task API accepts the token.
func TestDeviceCodeMSAL(t *testing.T) {
	srv := start(t)
	pc := publicClient(t, srv, entra.HomeTenantID, entra.DevClientID)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dc, err := pc.AcquireTokenByDeviceCode(ctx, []string{taskAPIScope})
	if err != nil {
		t.Fatal(err)
	}
	if dc.Result.Interval != entra.DeviceCodeInterval || !strings.Contains(dc.Result.Message, dc.Result.UserCode) {
		t.Errorf("device code result %+v", dc.Result)
	}
	entered := make(chan error, 1)
	go func() {
		entered <- enterDeviceCode(srv, dc.Result.VerificationURL, dc.Result.UserCode, "bob@home.handoff.test")
	}()
	res, err := dc.AuthenticationResult(ctx)
	if err != nil {
		t.Fatalf("AuthenticationResult: %v (page: %v)", err, <-entered)
	}
	if err := <-entered; err != nil {
		t.Fatal(err)
	}
	id, err := taskAPIValidator(t, srv).Validate(ctx, res.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.ObjectID != entra.BobOID || !id.HasScope(entra.ScopeAccessAsUser) || id.CallerAppID != entra.DevClientID {
		t.Errorf("identity %+v", id)
	}
	if res.Account.PreferredUsername != "bob@home.handoff.test" {
		t.Errorf("account %+v", res.Account)
	}
	if st := srv.Stats(); st.Issued[entra.GrantDeviceCode] != 1 {
		t.Errorf("stats %+v: want one device code token", st)
	}
}

// TestDeviceCodeAzidentity: azidentity's DeviceCodeCredential, its prompt
// answered on the emulator's page.
func TestDeviceCodeAzidentity(t *testing.T) {
	srv := start(t)
	entered := make(chan error, 1)
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions: azClientOptions(srv), DisableInstanceDiscovery: true,
		TenantID: entra.HomeTenantID, ClientID: entra.DevClientID,
		UserPrompt: func(ctx context.Context, m azidentity.DeviceCodeMessage) error {
			go func() { entered <- enterDeviceCode(srv, m.VerificationURL, m.UserCode, "alice@home.handoff.test") }()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{taskAPIScope}})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-entered; err != nil {
		t.Fatal(err)
	}
	id, err := taskAPIValidator(t, srv).Validate(ctx, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	if id.ObjectID != entra.AliceOID || !id.HasRole(entra.RoleAdmin) {
		t.Errorf("identity %+v", id)
	}
}

// deviceCode starts a flow with plain HTTP.
func deviceCode(t *testing.T, srv *entra.Server, clientID string) (deviceCode, userCode string) {
	t.Helper()
	resp, err := srv.HTTPClient().PostForm(srv.Authority(entra.HomeTenantID)+"/oauth2/v2.0/devicecode",
		url.Values{"client_id": {clientID}, "scope": {taskAPIScope + " openid offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
		ExpiresIn  int    `json:"expires_in"`
		URI        string `json:"verification_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("devicecode: %s %v", resp.Status, err)
	}
	if body.ExpiresIn != 900 || body.URI != srv.BaseURL()+"/devicelogin" || !regexp.MustCompile(`^[A-Z]{9}$`).MatchString(body.UserCode) {
		t.Errorf("devicecode response %+v", body)
	}
	return body.DeviceCode, body.UserCode
}

// poll redeems a device code once and returns the error and AADSTS number
// ("" and 0 on success).
func poll(t *testing.T, srv *entra.Server, clientID, code string, secret ...string) (string, int) {
	t.Helper()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {clientID}, "device_code": {code}}
	if len(secret) > 0 {
		form.Set("client_secret", secret[0])
	}
	resp, err := srv.HTTPClient().PostForm(srv.Authority(entra.HomeTenantID)+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		Codes       []int  `json:"error_codes"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Error == "" {
		if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
			t.Fatalf("poll: %s without error or token", resp.Status)
		}
		return "", 0
	}
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized || len(body.Codes) != 1 {
		t.Fatalf("poll: %s %+v", resp.Status, body)
	}
	return body.Error, body.Codes[0]
}

// TestDeviceCodePollingErrors: Entra's polling answers, each in turn, on
// an injected clock.
func TestDeviceCodePollingErrors(t *testing.T) {
	clk := &clock{}
	srv := entratest.Start(t, entra.Config{Now: clk.Now})
	dev, user := deviceCode(t, srv, entra.DevClientID)

	if e, code := poll(t, srv, entra.DevClientID, dev); e != "authorization_pending" || code != 70016 {
		t.Errorf("before sign-in: %s %d", e, code)
	}
	for range entra.MaxDevicePollsPerInterval - 1 {
		poll(t, srv, entra.DevClientID, dev)
	}
	if e, _ := poll(t, srv, entra.DevClientID, dev); e != "slow_down" {
		t.Errorf("poll %d within one interval: %s, want slow_down", entra.MaxDevicePollsPerInterval+1, e)
	}
	clk.Advance(entra.DeviceCodeInterval * time.Second)
	if e, _ := poll(t, srv, entra.DevClientID, dev); e != "authorization_pending" {
		t.Errorf("after waiting an interval: %s", e)
	}
	if e, _ := poll(t, srv, entra.TaskAPIClientID, dev, entra.TaskAPISecret); e != "invalid_grant" {
		t.Errorf("another client's poll: %s", e)
	}
	if e, code := poll(t, srv, entra.DevClientID, "no-such-code"); e != "bad_verification_code" || code != 70018 {
		t.Errorf("unknown device code: %s %d", e, code)
	}

	if err := enterDeviceCode(srv, srv.BaseURL()+"/devicelogin", user, "carol@home.handoff.test"); err != nil {
		t.Fatal(err)
	}
	if e, _ := poll(t, srv, entra.DevClientID, dev); e != "" {
		t.Fatalf("after sign-in: %s", e)
	}
	if e, _ := poll(t, srv, entra.DevClientID, dev); e != "bad_verification_code" {
		t.Errorf("a device code redeemed twice: %s", e)
	}
	if err := enterDeviceCode(srv, srv.BaseURL()+"/devicelogin", user, "carol@home.handoff.test"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a used user code entered again: %v", err)
	}

	// Expired: the user has DeviceCodeLifetime.
	dev, user = deviceCode(t, srv, entra.DevClientID)
	clk.Advance(entra.DeviceCodeLifetime)
	if err := enterDeviceCode(srv, srv.BaseURL()+"/devicelogin", user, "carol@home.handoff.test"); err == nil {
		t.Error("an expired user code was accepted on the page")
	}
	if e, code := poll(t, srv, entra.DevClientID, dev); e != "expired_token" || code != 70020 {
		t.Errorf("expired: %s %d", e, code)
	}

	// Declined on the page.
	dev, user = deviceCode(t, srv, entra.DevClientID)
	resp, err := srv.HTTPClient().PostForm(srv.BaseURL()+"/devicelogin", url.Values{"otc": {user}, "decision": {"cancel"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e, code := poll(t, srv, entra.DevClientID, dev); e != "authorization_declined" || code != 70000 {
		t.Errorf("declined: %s %d", e, code)
	}

	// A confidential client must authenticate to redeem.
	dev, user = deviceCode(t, srv, entra.TaskAPIClientID)
	if e, code := poll(t, srv, entra.TaskAPIClientID, dev); e != "invalid_client" || code != 7000218 {
		t.Errorf("a confidential client without its secret: %s %d", e, code)
	}
	if err := enterDeviceCode(srv, srv.BaseURL()+"/devicelogin", user, "bob@home.handoff.test"); err != nil {
		t.Fatal(err)
	}
	if e, _ := poll(t, srv, entra.TaskAPIClientID, dev, entra.TaskAPISecret); e != "" {
		t.Errorf("a confidential client with its secret: %s", e)
	}
}

func TestDeviceCodeRequestErrors(t *testing.T) {
	srv := start(t)
	for _, tc := range []struct {
		tenant string
		form   url.Values
		code   int
	}{
		{entra.HomeTenantID, url.Values{"scope": {taskAPIScope}}, 900144},
		{entra.HomeTenantID, url.Values{"client_id": {"a0000000-0000-4000-8000-0000000000ff"}, "scope": {taskAPIScope}}, 700016},
		{"no-such-tenant.example", url.Values{"client_id": {entra.DevClientID}, "scope": {taskAPIScope}}, 90002},
		{entra.HomeTenantID, url.Values{"client_id": {entra.DevClientID}, "scope": {"api://nothing/x"}}, 70011},
	} {
		resp, err := srv.HTTPClient().PostForm(srv.Authority(tc.tenant)+"/oauth2/v2.0/devicecode", tc.form)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Codes []int `json:"error_codes"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode < 400 || len(body.Codes) != 1 || body.Codes[0] != tc.code {
			t.Errorf("devicecode %s %v: %s %v, want AADSTS%d", tc.tenant, tc.form, resp.Status, body.Codes, tc.code)
		}
	}
	// The code page escapes nothing it did not render: a wrong code is a 400 page.
	resp, err := srv.HTTPClient().PostForm(srv.BaseURL()+"/devicelogin", url.Values{"otc": {"<script>"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(page), "<script>") {
		t.Errorf("a wrong code: %s", resp.Status)
	}
}

// The v2 discovery document names the device code endpoint, as Entra's does.
func TestDeviceCodeDiscovery(t *testing.T) {
	srv := start(t)
	resp, err := srv.HTTPClient().Get(srv.Authority(entra.HomeTenantID) + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		DeviceEndpoint string `json:"device_authorization_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.DeviceEndpoint != srv.Authority(entra.HomeTenantID)+"/oauth2/v2.0/devicecode" {
		t.Errorf("device_authorization_endpoint = %q", doc.DeviceEndpoint)
	}
}

// TestDeviceCodeBound: beyond MaxDeviceFlows outstanding codes the oldest
// is dropped; the newest still works.
func TestDeviceCodeBound(t *testing.T) {
	srv := start(t)
	first, _ := deviceCode(t, srv, entra.DevClientID)
	var last string
	for range entra.MaxDeviceFlows {
		last, _ = deviceCode(t, srv, entra.DevClientID)
	}
	if e, _ := poll(t, srv, entra.DevClientID, first); e != "bad_verification_code" {
		t.Errorf("the oldest of %d+1 device codes: %s, want it dropped", entra.MaxDeviceFlows, e)
	}
	if e, _ := poll(t, srv, entra.DevClientID, last); e != "authorization_pending" {
		t.Errorf("the newest device code: %s", e)
	}
}
