package keyvault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
	"github.com/handoff-dev/handoff/emulator/keyvault"
	"github.com/handoff-dev/handoff/emulator/keyvault/keyvaulttest"
)

// These tests drive the emulator with the real azsecrets client and real
// azidentity client secret credentials getting tokens from the Entra
// emulator. (Not ManagedIdentityCredential: MSAL caches managed identity
// tokens process-wide, across emulator instances.)

const apiVersion = "2026-04-01" // what azsecrets v1.5.1 sends

var versionRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// world is an Entra emulator and a vault that trusts it.
type world struct {
	entra *entra.Server
	vault *keyvault.Server
	// taskSP is the Task API's service principal: the oid of its app tokens.
	taskSP string
}

// start serves an Entra emulator and a vault configured by configure,
// which may grant roles to the Task API's service principal it is given.
func start(t *testing.T, configure func(cfg *keyvault.Config, taskSP string)) *world {
	t.Helper()
	es := entratest.Start(t, entra.Config{})
	w := &world{entra: es, taskSP: es.Directory().ServicePrincipalObjectID(entra.HomeTenantID, entra.TaskAPIClientID)}
	if w.taskSP == "" {
		t.Fatal("the Task API has no service principal in the home tenant")
	}
	var cfg keyvault.Config
	if configure != nil {
		configure(&cfg, w.taskSP)
	}
	w.vault = keyvaulttest.Start(t, es, cfg)
	return w
}

func (w *world) credential(t *testing.T, tenantID, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	opts := &azidentity.ClientSecretCredentialOptions{DisableInstanceDiscovery: true}
	opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: w.entra.BaseURL() + "/"}
	opts.Transport = w.entra.HTTPClient()
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, secret, opts)
	if err != nil {
		t.Fatalf("NewClientSecretCredential: %v", err)
	}
	return cred
}

func (w *world) taskAPI(t *testing.T) azcore.TokenCredential {
	return w.credential(t, entra.HomeTenantID, entra.TaskAPIClientID, entra.TaskAPISecret)
}

func (w *world) client(t *testing.T, cred azcore.TokenCredential) *azsecrets.Client {
	t.Helper()
	c, err := azsecrets.NewClient(w.vault.BaseURL(), cred, &azsecrets.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: w.entra.HTTPClient()},
		DisableChallengeResourceVerification: true,
	})
	if err != nil {
		t.Fatalf("azsecrets.NewClient: %v", err)
	}
	return c
}

// token gets an access token from cred for scope.
func token(t *testing.T, cred azcore.TokenCredential, scope string) string {
	t.Helper()
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		t.Fatalf("GetToken(%s): %v", scope, err)
	}
	return tok.Token
}

// rawResponse is a response read by hand.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r rawResponse) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("body %s is not a Key Vault error (%v)", r.body, err)
	}
	return e.Error.Code
}

// do sends a request by hand; bearer "" sends no Authorization header.
func (w *world) do(t *testing.T, method, pathAndQuery, bearer string, body []byte) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, w.vault.BaseURL()+pathAndQuery, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.entra.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, pathAndQuery, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{resp.StatusCode, resp.Header, b}
}

// wantResponseError checks err is Key Vault's error with status and code,
// and that its text (which carries the body) has every one of wantText.
func wantResponseError(t *testing.T, err error, status int, code string, wantText ...string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *azcore.ResponseError", err)
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("got %d %q, want %d %q: %v", re.StatusCode, re.ErrorCode, status, code, err)
	}
	for _, s := range wantText {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not mention %q: %v", s, err)
		}
	}
}

func TestChallengeThenGetSecret(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Secrets = map[string]string{"db-password": "s3cret"}
		cfg.Readers = []string{taskSP}
	})

	// What azsecrets sends first: no token, so the vault says where to get one.
	r := w.do(t, http.MethodGet, "/secrets/db-password/?api-version="+apiVersion, "", nil)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated request: status %d, want 401", r.status)
	}
	wantChallenge := `Bearer authorization="` + w.entra.BaseURL() + "/" + entra.HomeTenantID + `", resource="https://vault.azure.net"`
	if got := r.header.Get("WWW-Authenticate"); got != wantChallenge {
		t.Fatalf("WWW-Authenticate = %q, want %q", got, wantChallenge)
	}
	if code := r.errorCode(t); code != "Unauthorized" {
		t.Fatalf("error code %q, want Unauthorized", code)
	}

	c := w.client(t, w.taskAPI(t))
	got, err := c.GetSecret(context.Background(), "db-password", "", nil)
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	if got.Value == nil || *got.Value != "s3cret" {
		t.Fatalf("value = %v, want s3cret", got.Value)
	}
	if got.ID == nil || got.ID.Name() != "db-password" || !versionRE.MatchString(got.ID.Version()) {
		t.Fatalf("id = %v, want .../secrets/db-password/<32 hex>", got.ID)
	}
	if !strings.HasPrefix(string(*got.ID), w.vault.BaseURL()+"/secrets/db-password/") {
		t.Errorf("id %s is not under the vault's base URL %s", *got.ID, w.vault.BaseURL())
	}
	a := got.Attributes
	if a == nil || a.Enabled == nil || !*a.Enabled || a.Created == nil || a.Updated == nil || a.RecoveryLevel == nil || *a.RecoveryLevel != "Recoverable+Purgeable" {
		t.Fatalf("attributes = %+v", a)
	}
	st := w.vault.Stats()
	if st.Challenges != 2 || st.Reads != 1 || st.Unauthorized != 0 || st.Forbidden != 0 {
		t.Fatalf("stats = %+v, want 2 challenges (ours and the client's) and 1 read", st)
	}

	// Then the same by hand with a token: timestamps are integers, as Key Vault's are.
	tok := token(t, w.taskAPI(t), "https://vault.azure.net/.default")
	r = w.do(t, http.MethodGet, "/secrets/db-password?api-version="+apiVersion, tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET with a token: %d %s", r.status, r.body)
	}
	var raw struct {
		Value      string                     `json:"value"`
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"created", "updated"} {
		if !regexp.MustCompile(`^[0-9]+$`).Match(raw.Attributes[k]) {
			t.Errorf("attributes.%s = %s, want an integer", k, raw.Attributes[k])
		}
	}
}

func TestSetSecretAddsVersions(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Secrets = map[string]string{"api-key": "one"}
		cfg.Writers = []string{taskSP}
	})
	ctx := context.Background()
	c := w.client(t, w.taskAPI(t))

	first, err := c.GetSecret(ctx, "api-key", "", nil)
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	v1 := first.ID.Version()

	// Through azsecrets (the challenge strips the body; the retry must carry it).
	set, err := c.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: to.Ptr("two"), ContentType: to.Ptr("text/plain"),
		Tags: map[string]*string{"env": to.Ptr("dev")}}, nil)
	if err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	v2 := set.ID.Version()
	if *set.Value != "two" || !versionRE.MatchString(v2) || v2 == v1 || set.ContentType == nil || *set.ContentType != "text/plain" || *set.Tags["env"] != "dev" {
		t.Fatalf("SetSecret answered %+v (version %s after %s)", set.Secret, v2, v1)
	}
	// Through the Go API, as a rotation under a running client.
	v3, err := w.vault.SetSecret("api-key", "three")
	if err != nil || !versionRE.MatchString(v3) || v3 == v2 || v3 == v1 {
		t.Fatalf("vault.SetSecret = %q, %v", v3, err)
	}

	for _, tc := range []struct{ version, want string }{{"", "three"}, {v1, "one"}, {v2, "two"}, {v3, "three"}} {
		got, err := c.GetSecret(ctx, "api-key", tc.version, nil)
		if err != nil {
			t.Fatalf("GetSecret(%q): %v", tc.version, err)
		}
		if *got.Value != tc.want {
			t.Errorf("GetSecret(%q) = %q, want %q", tc.version, *got.Value, tc.want)
		}
	}
	// Names are case-insensitive; ids keep the case the secret was created with.
	got, err := c.GetSecret(ctx, "API-KEY", "", nil)
	if err != nil || *got.Value != "three" || got.ID.Name() != "api-key" {
		t.Fatalf("GetSecret(API-KEY) = %v, %v", got.ID, err)
	}

	var versions []string
	pager := c.NewListSecretPropertiesVersionsPager("api-key", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("list versions: %v", err)
		}
		for _, p := range page.Value {
			if p.Attributes == nil || p.Attributes.Created == nil {
				t.Errorf("version %s has no attributes", *p.ID)
			}
			versions = append(versions, p.ID.Version())
		}
	}
	if want := []string{v1, v2, v3}; !slices.Equal(versions, want) {
		t.Fatalf("versions = %v, want %v (oldest first)", versions, want)
	}

	// A new secret, then the list of names (ids without versions).
	if _, err := c.SetSecret(ctx, "other", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil); err != nil {
		t.Fatalf("SetSecret(other): %v", err)
	}
	var names []string
	for page, err := range pagesOf(ctx, c.NewListSecretPropertiesPager(nil)) {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		for _, p := range page.Value {
			if p.ID.Version() != "" {
				t.Errorf("list id %s has a version", *p.ID)
			}
			names = append(names, p.ID.Name())
		}
	}
	if want := []string{"api-key", "other"}; !slices.Equal(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
	if value, version, ok := w.vault.Secret("other"); !ok || value != "x" || !versionRE.MatchString(version) {
		t.Fatalf("vault.Secret(other) = %q, %q, %v", value, version, ok)
	}
	if st := w.vault.Stats(); st.Writes != 2 || st.Lists != 2 || st.Challenges != 1 {
		t.Fatalf("stats = %+v, want 2 writes, 2 list pages, 1 challenge", st)
	}
}

// pagesOf ranges over a pager's pages.
func pagesOf[T any](ctx context.Context, p interface {
	More() bool
	NextPage(context.Context) (T, error)
}) func(yield func(T, error) bool) {
	return func(yield func(T, error) bool) {
		for p.More() {
			page, err := p.NextPage(ctx)
			if !yield(page, err) || err != nil {
				return
			}
		}
	}
}

func TestSecretNotFound(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Secrets = map[string]string{"present": "x"}
		cfg.Readers = []string{taskSP}
	})
	ctx := context.Background()
	c := w.client(t, w.taskAPI(t))
	_, err := c.GetSecret(ctx, "missing", "", nil)
	wantResponseError(t, err, http.StatusNotFound, "SecretNotFound", "A secret with (name/id) missing was not found in this key vault")
	_, err = c.GetSecret(ctx, "present", strings.Repeat("0", 32), nil)
	wantResponseError(t, err, http.StatusNotFound, "SecretNotFound", "present/"+strings.Repeat("0", 32))
	_, err = c.NewListSecretPropertiesVersionsPager("missing", nil).NextPage(ctx)
	wantResponseError(t, err, http.StatusNotFound, "SecretNotFound")
}

func TestAuthorization(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Secrets = map[string]string{"shared": "x"}
		cfg.Readers = []string{taskSP}
	})
	ctx := context.Background()

	// The operator app has no role on the vault.
	operatorSP := w.entra.Directory().ServicePrincipalObjectID(entra.HomeTenantID, entra.OperatorClientID)
	op := w.client(t, w.credential(t, entra.HomeTenantID, entra.OperatorClientID, entra.OperatorSecret))
	_, err := op.GetSecret(ctx, "shared", "", nil)
	wantResponseError(t, err, http.StatusForbidden, "Forbidden", "Caller is not authorized to perform action on resource",
		"appid="+entra.OperatorClientID, "oid="+operatorSP, "Microsoft.KeyVault/vaults/secrets/getSecret/action", "ForbiddenByRbac")
	_, err = op.NewListSecretPropertiesPager(nil).NextPage(ctx)
	wantResponseError(t, err, http.StatusForbidden, "Forbidden", "Microsoft.KeyVault/vaults/secrets/readMetadata/action")

	// The Task API reads and lists, but may not set.
	task := w.client(t, w.taskAPI(t))
	if _, err := task.GetSecret(ctx, "shared", "", nil); err != nil {
		t.Fatalf("reader GetSecret: %v", err)
	}
	if _, err := task.NewListSecretPropertiesPager(nil).NextPage(ctx); err != nil {
		t.Fatalf("reader list: %v", err)
	}
	_, err = task.SetSecret(ctx, "shared", azsecrets.SetSecretParameters{Value: to.Ptr("y")}, nil)
	wantResponseError(t, err, http.StatusForbidden, "Forbidden", "appid="+entra.TaskAPIClientID, "oid="+w.taskSP,
		"Microsoft.KeyVault/vaults/secrets/setSecret/action")
	if value, _, _ := w.vault.Secret("shared"); value != "x" {
		t.Fatalf("a reader's set changed the secret to %q", value)
	}
	if st := w.vault.Stats(); st.Forbidden != 3 || st.Writes != 0 {
		t.Fatalf("stats = %+v, want 3 forbidden and no writes", st)
	}
}

func TestWriterReadsToo(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Writers = []string{strings.ToUpper(taskSP)} // object ids compare case-insensitively
	})
	ctx := context.Background()
	c := w.client(t, w.taskAPI(t))
	if _, err := c.SetSecret(ctx, "new", azsecrets.SetSecretParameters{Value: to.Ptr("")}, nil); err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	got, err := c.GetSecret(ctx, "new", "", nil)
	if err != nil || got.Value == nil || *got.Value != "" {
		t.Fatalf("GetSecret = %v, %v; want the empty value", got.Value, err)
	}
}

// lockedBuffer collects log output written from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRefusedTokens(t *testing.T) {
	var logs lockedBuffer
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Secrets = map[string]string{"s": "x"}
		cfg.Readers = []string{taskSP}
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	path := "/secrets/s?api-version=" + apiVersion
	wantChallenge := `Bearer authorization="` + w.entra.BaseURL() + "/" + entra.HomeTenantID + `", resource="https://vault.azure.net"`

	// A valid Task API token, for another audience.
	audit := token(t, w.taskAPI(t), entra.AuditClientID+"/.default")
	// A valid Task API token for Key Vault, from a tenant the vault is not in.
	fabrikam := token(t, w.credential(t, entra.SecondTenantID, entra.TaskAPIClientID, entra.TaskAPISecret), "https://vault.azure.net/.default")
	for name, tok := range map[string]string{"other audience": audit, "other tenant": fabrikam, "garbage": "not-a-jwt"} {
		r := w.do(t, http.MethodGet, path, tok, nil)
		if r.status != http.StatusUnauthorized || r.errorCode(t) != "Unauthorized" {
			t.Errorf("%s: %d %s, want 401 Unauthorized", name, r.status, r.body)
		}
		if got := r.header.Get("WWW-Authenticate"); got != wantChallenge {
			t.Errorf("%s: WWW-Authenticate = %q, want the challenge", name, got)
		}
	}
	if st := w.vault.Stats(); st.Unauthorized != 3 || st.Reads != 0 {
		t.Fatalf("stats = %+v, want 3 unauthorized and no reads", st)
	}
	if l := logs.String(); !strings.Contains(l, "request refused") || strings.Contains(l, audit) || strings.Contains(l, fabrikam) {
		t.Fatalf("the refusals are not logged, or the logs carry a token:\n%s", l)
	}
	// The same key vault token, the right one, passes.
	if r := w.do(t, http.MethodGet, path, token(t, w.taskAPI(t), "https://vault.azure.net/.default"), nil); r.status != http.StatusOK {
		t.Fatalf("valid token: %d %s", r.status, r.body)
	}
}

func TestMalformedRequests(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Secrets = map[string]string{"s": "x"}
		cfg.Writers = []string{taskSP}
	})
	tok := token(t, w.taskAPI(t), "https://vault.azure.net/.default")
	q := "?api-version=" + apiVersion
	big := []byte(`{"value":"` + strings.Repeat("a", keyvault.MaxBodyBytes) + `"}`)
	for _, tc := range []struct {
		name         string
		method, path string
		token        string
		body         []byte
		status       int
		code         string
	}{
		{"no api-version, no token", http.MethodGet, "/secrets/s", "", nil, 400, "BadParameter"},
		{"no api-version", http.MethodGet, "/secrets/s", tok, nil, 400, "BadParameter"},
		{"odd api-version", http.MethodGet, "/secrets/s?api-version=a%20b", tok, nil, 400, "BadParameter"},
		{"delete", http.MethodDelete, "/secrets/s" + q, tok, nil, 501, "NotImplemented"},
		{"keys", http.MethodGet, "/keys/k" + q, tok, nil, 501, "NotImplemented"},
		{"body too large", http.MethodPut, "/secrets/s" + q, tok, big, 413, "RequestEntityTooLarge"},
		{"body not JSON", http.MethodPut, "/secrets/s" + q, tok, []byte(`value=x`), 400, "BadParameter"},
		{"no value", http.MethodPut, "/secrets/s" + q, tok, []byte(`{"contentType":"x"}`), 400, "BadParameter"},
		{"value not a string", http.MethodPut, "/secrets/s" + q, tok, []byte(`{"value":1}`), 400, "BadParameter"},
		{"bad name", http.MethodGet, "/secrets/a_b" + q, tok, nil, 400, "BadParameter"},
		{"escaped slash in name", http.MethodGet, "/secrets/a%2Fb/" + q, tok, nil, 400, "BadParameter"},
		{"maxresults too large", http.MethodGet, "/secrets" + q + "&maxresults=26", tok, nil, 400, "BadParameter"},
		{"bad skiptoken", http.MethodGet, "/secrets/s/versions" + q + "&$skiptoken=zz", tok, nil, 400, "BadParameter"},
	} {
		r := w.do(t, tc.method, tc.path, tc.token, tc.body)
		if r.status != tc.status || r.errorCode(t) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	if value, _, _ := w.vault.Secret("s"); value != "x" {
		t.Fatalf("a refused set changed the secret to %q", value)
	}
	// A trailing slash is ignored, as azsecrets sends one for the current version.
	for _, p := range []string{"/secrets/", "/secrets/s/", "/secrets/s/versions/"} {
		if r := w.do(t, http.MethodGet, p+q, tok, nil); r.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, r.status, r.body)
		}
	}

	// Two Authorization headers are refused, not guessed between.
	req, _ := http.NewRequest(http.MethodGet, w.vault.BaseURL()+"/secrets/s"+q, nil)
	req.Header.Add("Authorization", "Bearer "+tok)
	req.Header.Add("Authorization", "Bearer "+tok)
	resp, err := w.entra.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("two Authorization headers: %d, want 400", resp.StatusCode)
	}
}

func TestLimits(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Writers = []string{taskSP}
	})
	ctx := context.Background()
	c := w.client(t, w.taskAPI(t))
	set := func(name, value string) error {
		_, err := c.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: &value}, nil)
		return err
	}

	if err := set("big", strings.Repeat("v", keyvault.MaxValueBytes)); err != nil {
		t.Fatalf("a value of exactly %d bytes: %v", keyvault.MaxValueBytes, err)
	}
	wantResponseError(t, set("big", strings.Repeat("v", keyvault.MaxValueBytes+1)), http.StatusBadRequest, "BadParameter", "too large")
	if err := set(strings.Repeat("n", 127), "x"); err != nil {
		t.Fatalf("a 127-character name: %v", err)
	}
	for _, name := range []string{strings.Repeat("n", 128), "bad_name", "dot.name"} {
		wantResponseError(t, set(name, "x"), http.StatusBadRequest, "BadParameter", "invalid name")
	}
	tags := map[string]*string{}
	for i := range keyvault.MaxTags + 1 {
		tags[strings.Repeat("t", i+1)] = to.Ptr("v")
	}
	_, err := c.SetSecret(ctx, "tagged", azsecrets.SetSecretParameters{Value: to.Ptr("x"), Tags: tags}, nil)
	wantResponseError(t, err, http.StatusBadRequest, "BadParameter", "tags")

	// The Go API holds the same limits.
	if _, err := w.vault.SetSecret("bad_name", "x"); err == nil {
		t.Error("vault.SetSecret accepted a bad name")
	}
	if _, err := w.vault.SetSecret("big", strings.Repeat("v", keyvault.MaxValueBytes+1)); err == nil {
		t.Error("vault.SetSecret accepted an oversized value")
	}

	// At most MaxVersions versions are kept: the oldest go first, and the
	// list pages through the rest.
	var all []string
	for i := range keyvault.MaxVersions + 5 {
		v, err := w.vault.SetSecret("rotated", strings.Repeat("x", i))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, v)
	}
	w.vault.ResetStats()
	var listed []string
	for page, err := range pagesOf(ctx, c.NewListSecretPropertiesVersionsPager("rotated", nil)) {
		if err != nil {
			t.Fatalf("list versions: %v", err)
		}
		for _, p := range page.Value {
			listed = append(listed, p.ID.Version())
		}
	}
	if want := all[5:]; !slices.Equal(listed, want) {
		t.Fatalf("listed %d versions, want the last %d in order", len(listed), len(want))
	}
	if st := w.vault.Stats(); st.Lists != 4 {
		t.Fatalf("%d list pages for %d versions, want 4 of at most %d", st.Lists, len(listed), keyvault.PageSize)
	}
	_, err = c.GetSecret(ctx, "rotated", all[4], nil)
	wantResponseError(t, err, http.StatusNotFound, "SecretNotFound")
	if got, err := c.GetSecret(ctx, "rotated", all[5], nil); err != nil || len(*got.Value) != 5 {
		t.Fatalf("the oldest kept version: %v", err)
	}
}

func TestListPagesSecrets(t *testing.T) {
	secrets := map[string]string{}
	var want []string
	for i := range 2*keyvault.PageSize + 3 {
		name := "secret-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		secrets[name] = "x"
		want = append(want, name)
	}
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Secrets = secrets
		cfg.Readers = []string{taskSP}
	})
	c := w.client(t, w.taskAPI(t))
	var names []string
	pages := 0
	for page, err := range pagesOf(context.Background(), c.NewListSecretPropertiesPager(nil)) {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		pages++
		for _, p := range page.Value {
			names = append(names, p.ID.Name())
		}
	}
	if !slices.Equal(names, want) || pages != 3 {
		t.Fatalf("listed %d names in %d pages, want %d in 3", len(names), pages, len(want))
	}
}

func TestDisabledSecret(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Writers = []string{taskSP}
	})
	ctx := context.Background()
	c := w.client(t, w.taskAPI(t))
	_, err := c.SetSecret(ctx, "off", azsecrets.SetSecretParameters{Value: to.Ptr("x"), SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil)
	if err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	_, err = c.GetSecret(ctx, "off", "", nil)
	wantResponseError(t, err, http.StatusForbidden, "Forbidden", "disabled", "SecretDisabled")
}

func TestConcurrentUse(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Secrets = map[string]string{"hot": "0"}
		cfg.Writers = []string{taskSP}
	})
	ctx := context.Background()
	c := w.client(t, w.taskAPI(t))
	if _, err := c.GetSecret(ctx, "hot", "", nil); err != nil { // the challenge, once
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5 {
				if g%2 == 0 {
					if _, err := w.vault.SetSecret("hot", strings.Repeat("x", i)); err != nil {
						t.Error(err)
					}
				} else if _, err := c.GetSecret(ctx, "hot", "", nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if st := w.vault.Stats(); st.Reads != 11 {
		t.Fatalf("reads = %d, want 11", st.Reads)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ok := keyvault.Config{BaseURL: "https://127.0.0.1:7074", Authority: "https://127.0.0.1:7070", TenantID: entra.HomeTenantID}
	if _, err := keyvault.New(context.Background(), ok); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	for name, mutate := range map[string]func(*keyvault.Config){
		"http base URL":      func(c *keyvault.Config) { c.BaseURL = "http://127.0.0.1:7074" },
		"base URL with path": func(c *keyvault.Config) { c.BaseURL = "https://127.0.0.1:7074/vault" },
		"no authority":       func(c *keyvault.Config) { c.Authority = "" },
		"http authority":     func(c *keyvault.Config) { c.Authority = "http://127.0.0.1:7070" },
		"no tenant":          func(c *keyvault.Config) { c.TenantID = "" },
		"tenant not a GUID":  func(c *keyvault.Config) { c.TenantID = "home.handoff.test" },
		"bad seeded name":    func(c *keyvault.Config) { c.Secrets = map[string]string{"a b": "x"} },
		"oversized seed": func(c *keyvault.Config) {
			c.Secrets = map[string]string{"a": strings.Repeat("x", keyvault.MaxValueBytes+1)}
		},
		"authority with a =":  func(c *keyvault.Config) { c.Authority = "https://127.0.0.1:7070?a=b" },
		"authority with path": func(c *keyvault.Config) { c.Authority = "https://127.0.0.1:7070/x" },
	} {
		cfg := ok
		mutate(&cfg)
		if _, err := keyvault.New(context.Background(), cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestQuotas(t *testing.T) {
	w := start(t, func(cfg *keyvault.Config, taskSP string) {
		cfg.Writers = []string{taskSP}
	})
	ctx := context.Background()
	c := w.client(t, w.taskAPI(t))
	set := func(name, value string) error {
		_, err := c.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: &value}, nil)
		return err
	}

	// The stored bytes: versions dropped beyond MaxVersions free theirs.
	keyvault.SetStoreLimits(w.vault, 2, keyvault.MaxVersions)
	for range keyvault.MaxVersions + 50 {
		if _, err := w.vault.SetSecret("one", "x"); err != nil {
			t.Fatalf("rotating within the byte limit: %v", err)
		}
	}
	wantResponseError(t, set("two", "x"), http.StatusBadRequest, "QuotaExceeded", "bytes")
	if _, err := w.vault.SetSecret("two", "x"); err == nil {
		t.Fatal("vault.SetSecret went beyond the byte limit")
	}

	// The number of secrets: existing ones still take new versions.
	keyvault.SetStoreLimits(w.vault, 2, 1<<20)
	if err := set("two", "x"); err != nil {
		t.Fatalf("the second secret: %v", err)
	}
	wantResponseError(t, set("three", "x"), http.StatusBadRequest, "QuotaExceeded", "at most 2 secrets")
	if err := set("TWO", "y"); err != nil {
		t.Fatalf("a new version of an existing secret: %v", err)
	}
}
