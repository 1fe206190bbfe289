package entra_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// browser plays a user's browser on the emulator's sign-in page: it keeps
// cookies, stops at redirects, and submits the page's form.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T, srv *entra.Server) *browser {
	c := noRedirects(srv)
	c.Jar, _ = cookiejar.New(nil)
	return &browser{t: t, c: c}
}

var (
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	actionRE = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
)

// submit opens the authorize URL, checks the page offers username, and
// clicks that user, returning the emulator's answer.
func (b *browser) submit(authURL, userOID, username string) (*http.Response, error) {
	resp, err := b.c.Get(authURL)
	if err != nil {
		return nil, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sign-in page: %s\n%s", resp.Status, page)
	}
	if !strings.Contains(string(page), username) {
		return nil, fmt.Errorf("sign-in page does not offer %s", username)
	}
	action, form := parseForm(page)
	if action == "" {
		return nil, errors.New("sign-in page has no form")
	}
	form.Set("user", userOID)
	return b.c.PostForm(action, form)
}

// signIn signs in and returns where the emulator redirects.
func (b *browser) signIn(authURL, userOID, username string) *url.URL {
	b.t.Helper()
	resp, err := b.submit(authURL, userOID, username)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("sign-in: %s, want a redirect", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// parseForm reads a page's form: its action and hidden fields.
func parseForm(page []byte) (string, url.Values) {
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(string(page), -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	action := actionRE.FindStringSubmatch(string(page))
	if action == nil {
		return "", form
	}
	return html.UnescapeString(action[1]), form
}

func pkce() (verifier, challenge string) {
	verifier = "verifier-" + strings.Repeat("x", 40)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestInteractiveSignIn drives MSAL Go's own browser flow (loopback redirect,
// PKCE) through the sign-in page.
func TestInteractiveSignIn(t *testing.T) {
	srv := start(t)
	pc := publicClient(t, srv, entra.HomeTenantID, entra.DevClientID)
	b := newBrowser(t, srv)
	landed := make(chan string, 1)
	open := func(u string) error {
		// MSAL asks for response_mode=form_post: the emulator answers with a
		// self-submitting form to MSAL's loopback listener, posted here as the
		// browser would.
		resp, err := b.submit(u, entra.BobOID, "bob@home.handoff.test")
		if err != nil {
			return err
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		action, form := parseForm(page)
		if resp.StatusCode != http.StatusOK || form.Get("code") == "" {
			return fmt.Errorf("form_post answer: %s %s", resp.Status, page)
		}
		landed <- action
		go func() {
			if resp, err := http.PostForm(action, form); err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := pc.AcquireTokenInteractive(ctx, []string{taskAPIScope},
		public.WithOpenURL(open), public.WithRedirectURI("http://localhost"))
	if err != nil {
		t.Fatalf("interactive: %v", err)
	}
	if loc, _ := url.Parse(<-landed); loc.Hostname() != "localhost" || loc.Port() == "" {
		t.Errorf("form posted to %s, want MSAL's loopback listener", loc)
	}
	c := claims(t, res.AccessToken)
	wantClaim(t, c, "oid", entra.BobOID)
	wantClaim(t, c, "roles", entra.RoleEditor)
	wantClaim(t, c, "azp", entra.DevClientID)
	if res.Account.PreferredUsername != "bob@home.handoff.test" {
		t.Errorf("account = %+v", res.Account)
	}
	if got := srv.Stats().Grants[entra.GrantAuthorizationCode]; got != 1 {
		t.Errorf("authorization_code requests = %d, want 1", got)
	}
}

// spaAuthURL is the authorize request MSAL.js makes.
func spaAuthURL(srv *entra.Server, tenant, challenge string) string {
	return srv.Authority(tenant) + "/oauth2/v2.0/authorize?" + url.Values{
		"client_id":             {entra.SPAClientID},
		"redirect_uri":          {"http://localhost:3000"},
		"response_type":         {"code"},
		"response_mode":         {"fragment"},
		"scope":                 {taskAPIScope + " openid profile offline_access"},
		"state":                 {"state-123"},
		"nonce":                 {"nonce-456"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"client_info":           {"1"},
	}.Encode()
}

// redeem posts a code (or refresh token) to the token endpoint as a browser
// (origin set) or a server (origin empty) would.
func redeem(t *testing.T, srv *entra.Server, tenant, origin string, form url.Values) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.Authority(tenant)+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}

func codeForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "client_id": {entra.SPAClientID}, "code": {code},
		"redirect_uri": {"http://localhost:3000"}, "code_verifier": {verifier},
		"scope": {taskAPIScope + " openid profile offline_access"}, "client_info": {"1"}}
}

func errorCode(body map[string]any) int {
	codes, _ := body["error_codes"].([]any)
	if len(codes) == 0 {
		return 0
	}
	return int(codes[0].(float64))
}

// TestSPASignIn is MSAL.js's path: authorize at organizations with PKCE and
// a fragment response, cross-origin redemption, refresh, and the SPA rules.
func TestSPASignIn(t *testing.T) {
	srv := start(t)
	b := newBrowser(t, srv)
	verifier, challenge := pkce()
	loc := b.signIn(spaAuthURL(srv, "organizations", challenge), entra.ErinOID, "erin@fabrikam.handoff.test")
	frag, _ := url.ParseQuery(loc.Fragment)
	if loc.Scheme+"://"+loc.Host != "http://localhost:3000" || frag.Get("code") == "" || frag.Get("state") != "state-123" || frag.Get("client_info") == "" {
		t.Fatalf("redirect = %s", loc)
	}
	code := frag.Get("code")

	status, body, hdr := redeem(t, srv, "organizations", "http://localhost:3000", codeForm(code, verifier))
	if status != http.StatusOK {
		t.Fatalf("SPA redemption: %d %v", status, body)
	}
	if hdr.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Errorf("token response CORS origin = %q", hdr.Get("Access-Control-Allow-Origin"))
	}
	at := claims(t, body["access_token"].(string))
	wantClaim(t, at, "tid", entra.SecondTenantID)
	wantClaim(t, at, "azp", entra.SPAClientID)
	wantClaim(t, at, "scp", entra.ScopeAccessAsUser)
	id := claims(t, body["id_token"].(string))
	wantClaim(t, id, "nonce", "nonce-456")
	wantClaim(t, id, "aud", entra.SPAClientID)
	wantClaim(t, id, "iss", srv.Issuer(entra.SecondTenantID))
	if body["refresh_token"] == nil || body["client_info"] == nil {
		t.Errorf("SPA response lacks refresh_token or client_info: %v", body)
	}

	t.Run("code reuse", func(t *testing.T) {
		_, body, _ := redeem(t, srv, "organizations", "http://localhost:3000", codeForm(code, verifier))
		if errorCode(body) != 54005 {
			t.Errorf("second redemption: %v, want AADSTS54005", body)
		}
	})
	rtForm := url.Values{"grant_type": {"refresh_token"}, "client_id": {entra.SPAClientID},
		"refresh_token": {body["refresh_token"].(string)}, "scope": {taskAPIScope + " openid offline_access"}}
	t.Run("refresh cross-origin", func(t *testing.T) {
		status, body, _ := redeem(t, srv, entra.SecondTenantID, "http://localhost:3000", rtForm)
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, body)
		}
		wantClaim(t, claims(t, body["access_token"].(string)), "oid", entra.ErinOID)
	})
	t.Run("SPA refresh token without origin", func(t *testing.T) {
		_, body, _ := redeem(t, srv, entra.SecondTenantID, "", rtForm)
		if errorCode(body) != 9002327 {
			t.Errorf("got %v, want AADSTS9002327", body)
		}
	})
}

// TestSPACodeRules reproduces the SPA and PKCE errors at code redemption.
func TestSPACodeRules(t *testing.T) {
	srv := start(t)
	verifier, challenge := pkce()
	spaCode := func() string {
		loc := newBrowser(t, srv).signIn(spaAuthURL(srv, entra.HomeTenantID, challenge), entra.AliceOID, "alice@home.handoff.test")
		frag, _ := url.ParseQuery(loc.Fragment)
		return frag.Get("code")
	}
	t.Run("SPA code redeemed by a server (MSAL Go, no Origin)", func(t *testing.T) {
		pc := publicClient(t, srv, entra.HomeTenantID, entra.SPAClientID)
		_, err := pc.AcquireTokenByAuthCode(context.Background(), spaCode(), "http://localhost:3000", []string{taskAPIScope}, public.WithChallenge(verifier))
		if aadsts(err) != 9002327 {
			t.Errorf("got %v, want AADSTS9002327", err)
		}
	})
	t.Run("a code presented by another client is not burnt", func(t *testing.T) {
		code := spaCode()
		form := codeForm(code, verifier)
		form.Set("client_id", entra.DevClientID)
		if _, body, _ := redeem(t, srv, entra.HomeTenantID, "http://localhost:3000", form); errorCode(body) == 0 {
			t.Fatalf("another client redeemed the SPA's code: %v", body)
		}
		if status, body, _ := redeem(t, srv, entra.HomeTenantID, "http://localhost:3000", codeForm(code, verifier)); status != 200 {
			t.Errorf("the rightful client after the attempt: %d %v", status, body)
		}
	})
	t.Run("PKCE verifier mismatch", func(t *testing.T) {
		_, body, _ := redeem(t, srv, entra.HomeTenantID, "http://localhost:3000", codeForm(spaCode(), "another-verifier-"+strings.Repeat("y", 30)))
		if errorCode(body) != 501481 {
			t.Errorf("got %v, want AADSTS501481", body)
		}
	})
	t.Run("native app code redeemed cross-origin", func(t *testing.T) {
		authURL := srv.Authority(entra.HomeTenantID) + "/oauth2/v2.0/authorize?" + url.Values{
			"client_id": {entra.DevClientID}, "redirect_uri": {"http://localhost:8400"}, "response_type": {"code"},
			"scope": {taskAPIScope}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		}.Encode()
		loc := newBrowser(t, srv).signIn(authURL, entra.AliceOID, "alice@home.handoff.test")
		form := url.Values{"grant_type": {"authorization_code"}, "client_id": {entra.DevClientID}, "code": {loc.Query().Get("code")},
			"redirect_uri": {"http://localhost:8400"}, "code_verifier": {verifier}, "scope": {taskAPIScope}}
		_, body, _ := redeem(t, srv, entra.HomeTenantID, "http://localhost:3000", form)
		if errorCode(body) != 9002326 {
			t.Errorf("got %v, want AADSTS9002326", body)
		}
	})
}

// TestSignInPageRefusals: an unregistered redirect URI is never redirected
// to, and silent sign-in needs a session.
func TestSignInPageRefusals(t *testing.T) {
	srv := start(t)
	_, challenge := pkce()
	bad := strings.Replace(spaAuthURL(srv, entra.HomeTenantID, challenge), url.QueryEscape("http://localhost:3000"), url.QueryEscape("https://evil.example"), 1)
	resp, err := noRedirects(srv).Get(bad)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(string(page), "AADSTS50011") {
		t.Errorf("unregistered redirect: %s location %q", resp.Status, resp.Header.Get("Location"))
	}

	silent := spaAuthURL(srv, entra.HomeTenantID, challenge) + "&prompt=none"
	b := newBrowser(t, srv)
	resp, err = b.c.Get(silent)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	frag, _ := url.ParseQuery(loc.Fragment)
	if frag.Get("error") != "login_required" || frag.Get("state") != "state-123" {
		t.Errorf("silent sign-in without a session: %s", loc)
	}

	// After a sign-in, the session cookie makes prompt=none succeed.
	b.signIn(spaAuthURL(srv, entra.HomeTenantID, challenge), entra.CarolOID, "carol@home.handoff.test")
	resp, err = b.c.Get(silent)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ = url.Parse(resp.Header.Get("Location"))
	frag, _ = url.ParseQuery(loc.Fragment)
	if frag.Get("code") == "" {
		t.Errorf("silent sign-in with a session: %s", loc)
	}

	// The session is the home tenant's: a silent sign-in at another tenant's
	// authority does not sign carol in there.
	other := strings.Replace(silent, "/"+entra.HomeTenantID+"/", "/"+entra.SecondTenantID+"/", 1)
	resp, err = b.c.Get(other)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ = url.Parse(resp.Header.Get("Location"))
	frag, _ = url.ParseQuery(loc.Fragment)
	if frag.Get("error") != "login_required" {
		t.Errorf("silent sign-in at another tenant: %s", loc)
	}

	// Logging out ends the session.
	resp, err = b.c.Get(srv.Authority(entra.HomeTenantID) + "/oauth2/v2.0/logout?post_logout_redirect_uri=" + url.QueryEscape("http://localhost:3000"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://localhost:3000" {
		t.Errorf("logout: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, err = b.c.Get(silent)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ = url.Parse(resp.Header.Get("Location"))
	frag, _ = url.ParseQuery(loc.Fragment)
	if frag.Get("error") != "login_required" {
		t.Errorf("silent sign-in after logout: %s", loc)
	}
}
