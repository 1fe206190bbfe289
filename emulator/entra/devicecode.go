package entra

import (
	"crypto/rand"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The device authorization grant (RFC 8628) as Entra serves it: a device
// asks /{tenant}/oauth2/v2.0/devicecode for a user code, the user enters it
// at /devicelogin and signs in on the emulator's sign-in page, and the
// device polls the token endpoint meanwhile.

// Endpoint and grant names of the device code flow, for [Stats].
const (
	EndpointDeviceCode  = "devicecode"
	EndpointDeviceLogin = "devicelogin"
	GrantDeviceCode     = "device_code"
)

const grantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// Limits of the device code flow.
const (
	// DeviceCodeLifetime is Entra's: the user has 15 minutes to sign in.
	DeviceCodeLifetime = 15 * time.Minute
	// DeviceCodeInterval is the polling interval advertised, in seconds (Entra's).
	DeviceCodeInterval = 5
	// MaxDevicePollsPerInterval polls of one device code within an interval
	// are answered; beyond, slow_down. MSAL polls at most four times in its
	// first interval.
	MaxDevicePollsPerInterval = 10
	// MaxDeviceFlows bounds outstanding device codes; the oldest are dropped beyond.
	MaxDeviceFlows = 1000
	userCodeLength = 9
	// userCodeAlphabet has no vowels, so no code spells a word, and no look-alikes.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
)

type deviceState int

const (
	devicePending deviceState = iota
	deviceApproved
	deviceDeclined
)

// deviceFlow is one device code, from issue to redemption.
type deviceFlow struct {
	deviceCode, userCode string
	ref                  tenantRef
	app                  *Application
	q                    scopeRequest
	expires              time.Time

	state    deviceState
	tenant   *Tenant // the user who approved, when approved
	user     *User
	authTime time.Time
	window   time.Time // start of the current polling interval
	polls    int       // polls within it
}

// deviceStore holds the outstanding device flows. Its zero value is ready.
type deviceStore struct {
	mu       sync.Mutex
	byDevice map[string]*deviceFlow
	byUser   map[string]*deviceFlow
	order    []*deviceFlow // by age, for eviction
}

// add stores f under fresh codes, dropping expired flows and, beyond the
// bound, the oldest.
func (d *deviceStore) add(f *deviceFlow, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byDevice == nil {
		d.byDevice, d.byUser = map[string]*deviceFlow{}, map[string]*deviceFlow{}
	}
	for len(d.order) > 0 && (len(d.order) >= MaxDeviceFlows || !now.Before(d.order[0].expires)) {
		d.removeLocked(d.order[0])
	}
	f.deviceCode = randomString(48)
	for f.userCode == "" || d.byUser[f.userCode] != nil {
		f.userCode = newUserCode()
	}
	d.byDevice[f.deviceCode], d.byUser[f.userCode] = f, f
	d.order = append(d.order, f)
}

func (d *deviceStore) removeLocked(f *deviceFlow) {
	delete(d.byDevice, f.deviceCode)
	delete(d.byUser, f.userCode)
	for i, o := range d.order {
		if o == f {
			d.order = append(d.order[:i], d.order[i+1:]...)
			break
		}
	}
}

// byUserCode finds a pending, unexpired flow by the code the user typed.
func (d *deviceStore) byUserCode(code string, now time.Time) *deviceFlow {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.byUser[strings.ToUpper(strings.TrimSpace(code))]
	if f == nil || f.state != devicePending || !now.Before(f.expires) {
		return nil
	}
	return f
}

// settle approves or declines a pending flow; false if it is no longer pending.
func (d *deviceStore) settle(f *deviceFlow, state deviceState, t *Tenant, u *User, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f.state != devicePending || d.byDevice[f.deviceCode] != f || !now.Before(f.expires) {
		return false
	}
	f.state, f.tenant, f.user, f.authTime = state, t, u, now
	return true
}

// poll answers one token request for a device code: the flow once it is
// approved (and removes it: a device code is redeemed once), else the
// polling error.
func (d *deviceStore) poll(deviceCode, clientID string, now time.Time) (*deviceFlow, *stsError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.byDevice[deviceCode]
	switch {
	case f == nil:
		return nil, newSTSError(http.StatusBadRequest, "bad_verification_code", 70018,
			"The provided value for the input parameter 'device_code' is not valid: the emulator issued no such device code, or it was redeemed already.")
	case f.app.ClientID != clientID:
		return nil, errInvalidGrant(70000, "The device code was issued to another client.")
	case !now.Before(f.expires):
		d.removeLocked(f)
		return nil, newSTSError(http.StatusBadRequest, "expired_token", 70020,
			"The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
	case f.state == deviceDeclined:
		d.removeLocked(f)
		return nil, newSTSError(http.StatusBadRequest, "authorization_declined", 70000,
			"The user declined the authorization request on the device login page.")
	case f.state == deviceApproved:
		d.removeLocked(f)
		return f, nil
	}
	if now.Sub(f.window) >= DeviceCodeInterval*time.Second {
		f.window, f.polls = now, 0
	}
	if f.polls++; f.polls > MaxDevicePollsPerInterval {
		return nil, newSTSError(http.StatusBadRequest, "slow_down", 70016,
			"OAuth 2.0 device flow error. Polling too fast: wait %d more seconds between polls.", DeviceCodeInterval)
	}
	return nil, newSTSError(http.StatusBadRequest, "authorization_pending", 70016,
		"OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
}

func newUserCode() string {
	b := make([]byte, userCodeLength)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}

type deviceCodeResponse struct {
	UserCode        string `json:"user_code"`
	DeviceCode      string `json:"device_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int    `json:"expires_in"`
	Interval        int    `json:"interval"`
	Message         string `json:"message"`
}

// handleDeviceCode is POST /{tenant}/oauth2/v2.0/devicecode.
func (s *Server) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointDeviceCode)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.writeSTSError(w, r, errInvalidRequest(900144, "The request body must be a form of at most %d bytes: %v.", maxFormBytes, err))
		return
	}
	ref, e := s.resolveTenant(r.PathValue("tenant"))
	if e != nil {
		s.writeSTSError(w, r, e)
		return
	}
	clientID := r.PostForm.Get("client_id")
	if clientID == "" {
		s.writeSTSError(w, r, errInvalidRequest(900144, "The request body must contain the following parameter: 'client_id'."))
		return
	}
	app := s.dir.Application(clientID)
	if app == nil || app.FirstParty || (ref.tenant != nil && !app.availableIn(ref.tenant)) {
		s.writeSTSError(w, r, errAppNotInTenant(clientID, ref.segment))
		return
	}
	q, e := s.parseScopes(r.PostForm.Get("scope"))
	if e != nil {
		s.writeSTSError(w, r, e)
		return
	}
	now := s.now()
	f := &deviceFlow{ref: ref, app: app, q: q, expires: now.Add(DeviceCodeLifetime), window: now}
	s.devices.add(f, now)
	uri := s.baseStr + "/devicelogin"
	writeJSON(w, http.StatusOK, deviceCodeResponse{
		UserCode: f.userCode, DeviceCode: f.deviceCode, VerificationURI: uri,
		ExpiresIn: int(DeviceCodeLifetime / time.Second), Interval: DeviceCodeInterval,
		Message: "To sign in, use a web browser to open the page " + uri + " and enter the code " + f.userCode + " to authenticate.",
	})
}

// deviceCodeGrant redeems an approved device code at the token endpoint.
func (s *Server) deviceCodeGrant(req *tokenRequest) (*tokenResponse, *stsError) {
	app, acr, e := s.authenticateClient(req)
	if e != nil {
		return nil, e
	}
	if acr == acrPublic && !app.PublicClient {
		return nil, errMissingCredential()
	}
	code := req.form.Get("device_code")
	if code == "" {
		return nil, errInvalidRequest(900144, "The request body must contain the following parameter: 'device_code'.")
	}
	f, e := s.devices.poll(code, app.ClientID, s.now())
	if e != nil {
		return nil, e
	}
	if req.ref.tenant != nil && req.ref.tenant != f.tenant {
		return nil, errUserNotInTenant(f.user.ObjectID, req.ref.tenant.ID)
	}
	return s.userToken(req, userGrant{tenant: f.tenant, user: f.user, app: app, acr: acr, q: f.q, authTime: f.authTime, public: true})
}

// handleDeviceLoginPage is GET /devicelogin: where the user enters the code.
func (s *Server) handleDeviceLoginPage(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointDeviceLogin)
	s.deviceCodePage(w, http.StatusOK, "")
}

// handleDeviceLoginCode is POST /devicelogin: the code entered (otc, as
// Entra names it), or the sign-in cancelled.
func (s *Server) handleDeviceLoginCode(w http.ResponseWriter, r *http.Request) {
	f, now, ok := s.deviceFormFlow(w, r, "That code is not one the emulator issued, or it has expired or been used. Check the code on your device and try again.")
	if !ok {
		return
	}
	if r.PostForm.Get("decision") == "cancel" {
		s.devices.settle(f, deviceDeclined, nil, nil, now)
		writeMessage(w, http.StatusOK, "Sign-in cancelled", "You declined to sign in to "+f.app.DisplayName+" on your device. You can close this window.")
		return
	}
	s.deviceSignInPage(w, f)
}

// handleDeviceLoginSignIn is POST /devicelogin/signin: a user chosen on the
// sign-in page approves the device.
func (s *Server) handleDeviceLoginSignIn(w http.ResponseWriter, r *http.Request) {
	f, now, ok := s.deviceFormFlow(w, r, "That code has expired or been used. Start the sign-in on your device again.")
	if !ok {
		return
	}
	t, u, e := s.signInUser(f.ref, r.PostForm.Get("user"))
	if e != nil {
		s.errorPage(w, e)
		return
	}
	if e := s.approveDevice(f, t, u); e != nil {
		s.errorPage(w, e)
		return
	}
	if !s.devices.settle(f, deviceApproved, t, u, now) {
		s.deviceCodePage(w, http.StatusBadRequest, "That code has expired or been used. Start the sign-in on your device again.")
		return
	}
	writeMessage(w, http.StatusOK, "Signed in", u.Name+" signed in to "+f.app.DisplayName+" on your device. You can close this window.")
}

// approveDevice runs the sign-in checks and records the consent the
// sign-in implies, as the authorize endpoint does.
func (s *Server) approveDevice(f *deviceFlow, t *Tenant, u *User) *stsError {
	if !f.app.availableIn(t) || s.dir.servicePrincipal(t, f.app) == nil {
		return errAppNotInTenant(f.app.ClientID, t.ID)
	}
	if f.q.resource == nil {
		return nil
	}
	if e := s.consentOnSignIn(t, f.app, u, f.q, false); e != nil {
		return e
	}
	_, _, e := s.delegated(t, f.app, u, f.q)
	return e
}

func (s *Server) deviceSignInPage(w http.ResponseWriter, f *deviceFlow) {
	tenants := s.tenantChoices(f.ref, f.q)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	_ = signInTemplate.Execute(w, map[string]any{
		"App": f.app.DisplayName, "Scopes": f.q.raw, "Tenants": tenants,
		"Hidden": []struct{ Name, Value string }{{"otc", f.userCode}},
		"Action": s.baseStr + "/devicelogin/signin",
	})
}

func (s *Server) deviceCodePage(w http.ResponseWriter, status int, problem string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = deviceCodeTemplate.Execute(w, map[string]string{"Action": s.baseStr + "/devicelogin", "Problem": problem})
}

func writeMessage(w http.ResponseWriter, status int, title, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = messagePage.Execute(w, struct{ Title, Message string }{title, message})
}

var deviceCodeTemplate = template.Must(template.New("devicecode").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Enter code — handoff Entra emulator</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
input{font-size:1.2rem;padding:.4rem;letter-spacing:.1rem}button{font-size:1rem;padding:.5rem 1rem;margin:.5rem .5rem 0 0}
.warn{background:#fff4ce;padding:.5rem}.problem{color:#a80000}</style></head>
<body><h1>Enter code</h1>
<p class="warn">Local Entra ID emulator, for development only.</p>
<p>Enter the code displayed on your app or device.</p>
{{if .Problem}}<p class="problem" role="alert">{{.Problem}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input name="otc" id="otc" aria-label="Code" autocomplete="off" autofocus required maxlength="32">
<div><button type="submit" name="decision" value="next">Next</button>
<button type="submit" name="decision" value="cancel" formnovalidate>Cancel sign-in</button></div>
</form></body></html>
`))

// deviceFormFlow reads a POST of the device login pages and finds the flow
// its code (otc) names; on a malformed form or an unknown, expired or used
// code it answers the code page with the reason (unknown, the given text)
// and returns ok false.
func (s *Server) deviceFormFlow(w http.ResponseWriter, r *http.Request, unknown string) (f *deviceFlow, now time.Time, ok bool) {
	s.count(EndpointDeviceLogin)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.deviceCodePage(w, http.StatusBadRequest, "The form is malformed.")
		return nil, now, false
	}
	now = s.now()
	if f = s.devices.byUserCode(r.PostForm.Get("otc"), now); f == nil {
		s.deviceCodePage(w, http.StatusBadRequest, unknown)
		return nil, now, false
	}
	return f, now, true
}
