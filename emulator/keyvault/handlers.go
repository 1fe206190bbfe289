package keyvault

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// operation is what a request asks for, with the role action Key Vault's
// RBAC names for it.
type operation int

const (
	opGet operation = iota
	opSet
	opList
	opListVersions
)

func (o operation) action() string {
	switch o {
	case opGet:
		return "Microsoft.KeyVault/vaults/secrets/getSecret/action"
	case opSet:
		return "Microsoft.KeyVault/vaults/secrets/setSecret/action"
	default:
		return "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
	}
}

type route struct {
	op            operation
	name, version string
}

// parseRoute maps the request to an operation:
//
//	GET /secrets                     list secrets
//	GET /secrets/{name}[/]           get the current version
//	GET /secrets/{name}/{version}    get a version
//	GET /secrets/{name}/versions     list a secret's versions
//	PUT /secrets/{name}              set a new version
//
// A trailing slash is ignored (azsecrets sends one when the version is empty).
func parseRoute(r *http.Request) (route, bool) {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1]
	}
	if segs[0] != "secrets" || len(segs) > 3 {
		return route{}, false
	}
	for i, seg := range segs {
		// A segment that does not unescape stays as sent and fails name validation.
		if u, err := url.PathUnescape(seg); err == nil {
			segs[i] = u
		}
	}
	switch {
	case r.Method == http.MethodGet && len(segs) == 1:
		return route{op: opList}, true
	case r.Method == http.MethodGet && len(segs) == 2:
		return route{op: opGet, name: segs[1]}, true
	case r.Method == http.MethodPut && len(segs) == 2:
		return route{op: opSet, name: segs[1]}, true
	case r.Method == http.MethodGet && len(segs) == 3 && segs[2] == "versions":
		return route{op: opListVersions, name: segs[1]}, true
	case r.Method == http.MethodGet && len(segs) == 3:
		return route{op: opGet, name: segs[1], version: segs[2]}, true
	}
	return route{}, false
}

var (
	versionRE    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	apiVersionRE = regexp.MustCompile(`^[0-9A-Za-z.-]{1,32}$`)
)

// ServeHTTP checks in this order: an operation the emulator does not
// implement (501), a missing api-version (400), a missing or refused token
// (401 with the challenge), a caller without the role (403), then the
// operation's own checks.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := parseRoute(r)
	if !ok {
		s.fail(w, r, &kvError{status: http.StatusNotImplemented, code: "NotImplemented", message: "The Key Vault emulator does not implement " + clip(r.Method+" "+r.URL.Path) +
			". It serves GET /secrets, GET and PUT /secrets/{name}, GET /secrets/{name}/{version} and GET /secrets/{name}/versions."})
		return
	}
	apiVersion := r.URL.Query().Get("api-version")
	if apiVersion == "" {
		s.fail(w, r, badParameter("The api-version query parameter is required."))
		return
	}
	if !apiVersionRE.MatchString(apiVersion) {
		s.fail(w, r, badParameter("The api-version query parameter is not a valid version."))
		return
	}
	id, e := s.authenticate(r)
	if e != nil {
		s.fail(w, r, e)
		return
	}
	if e := s.authorize(id, rt); e != nil {
		s.fail(w, r, e)
		return
	}
	switch rt.op {
	case opGet:
		s.count(func(st *Stats) { st.Reads++ })
		e = s.get(w, rt)
	case opSet:
		s.count(func(st *Stats) { st.Writes++ })
		e = s.set(w, r, rt)
	case opList, opListVersions:
		s.count(func(st *Stats) { st.Lists++ })
		e = s.list(w, r, rt, apiVersion)
	}
	if e != nil {
		s.fail(w, r, e)
	}
}

// authenticate validates the bearer token. Every 401 carries the challenge
// that tells the client which tenant and resource to get a token for.
func (s *Server) authenticate(r *http.Request) (*entraauth.Identity, *kvError) {
	if len(r.Header.Values("Authorization")) == 0 {
		s.count(func(st *Stats) { st.Challenges++ })
		return nil, &kvError{status: http.StatusUnauthorized, code: "Unauthorized", message: "AKV10000: Request is missing a Bearer or PoP token."}
	}
	raw, err := entraauth.BearerToken(r)
	var id *entraauth.Identity
	if err == nil {
		id, err = s.validator.Validate(r.Context(), raw)
	}
	if err == nil {
		return id, nil
	}
	var ae *entraauth.Error
	switch {
	case !errors.As(err, &ae):
		// The authority's metadata or keys cannot be had: fail closed.
		return nil, &kvError{status: http.StatusServiceUnavailable, code: "ServiceUnavailable",
			message: "The access token cannot be validated now: the authority's metadata or signing keys are unavailable."}
	case ae.Status == http.StatusBadRequest:
		return nil, badParameter("The request is malformed: " + ae.Description + ".")
	default:
		s.count(func(st *Stats) { st.Unauthorized++ })
		return nil, &kvError{status: http.StatusUnauthorized, code: "Unauthorized", message: "AKV10032: The access token is not valid: " + ae.Description + "."}
	}
}

// authorize checks the caller's role: Readers may get and list, Writers
// may also set.
func (s *Server) authorize(id *entraauth.Identity, rt route) *kvError {
	oid := strings.ToLower(id.ObjectID)
	if oid != "" && (s.writers[oid] || (rt.op != opSet && s.readers[oid])) {
		return nil
	}
	s.count(func(st *Stats) { st.Forbidden++ })
	resource := s.base + "/secrets"
	if nameRE.MatchString(rt.name) {
		resource += "/" + rt.name
	}
	return &kvError{status: http.StatusForbidden, code: "Forbidden", inner: "ForbiddenByRbac", message: "Caller is not authorized to perform action on resource.\r\n" +
		"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n" +
		"Caller: appid=" + id.CallerAppID + ";oid=" + id.ObjectID + ";tid=" + id.TenantID + "\r\n" +
		"Action: '" + rt.op.action() + "'\r\n" +
		"Resource: '" + resource + "'\r\n" +
		"Assignment: (not found)\r\n" +
		"DenyAssignmentId: null\r\n" +
		"DecisionReason: null \r\n" +
		"Vault: " + s.host + ";location=local\r\n"}
}

func notFound(name string) *kvError {
	return &kvError{status: http.StatusNotFound, code: "SecretNotFound", message: "A secret with (name/id) " + name +
		" was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command." +
		" For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"}
}

func (s *Server) get(w http.ResponseWriter, rt route) *kvError {
	if e := validName(rt.name); e != nil {
		return e
	}
	v, name, ok := s.store.get(rt.name, rt.version)
	if !ok {
		if rt.version != "" {
			return notFound(rt.name + "/" + rt.version)
		}
		return notFound(rt.name)
	}
	if !v.enabled {
		return &kvError{status: http.StatusForbidden, code: "Forbidden", inner: "SecretDisabled", message: "Operation get is not allowed on a disabled secret."}
	}
	writeJSON(w, http.StatusOK, s.secretJSON(name, v, true))
	return nil
}

func (s *Server) set(w http.ResponseWriter, r *http.Request, rt route) *kvError {
	if e := validName(rt.name); e != nil {
		return e
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &kvError{status: http.StatusRequestEntityTooLarge, code: "RequestEntityTooLarge", message: "The request body is larger than the emulator's limit of 64 KiB."}
		}
		return badParameter("The request body could not be read.")
	}
	var p setParams
	if err := json.Unmarshal(body, &p); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return badParameter("The request body's property '" + te.Field + "' has the wrong type.")
		}
		return badParameter("The request body is not a JSON object.")
	}
	v, name, e := s.store.set(rt.name, p, s.now().Unix())
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, s.secretJSON(name, v, true))
	return nil
}

// list answers a page of secrets (ids without versions, the current
// version's attributes) or of a secret's versions, oldest first. The next
// link carries the last item returned as $skiptoken.
func (s *Server) list(w http.ResponseWriter, r *http.Request, rt route, apiVersion string) *kvError {
	q := r.URL.Query()
	n := PageSize
	if m := q.Get("maxresults"); m != "" {
		var err error
		if n, err = strconv.Atoi(m); err != nil || n < 1 || n > PageSize {
			return badParameter(fmt.Sprintf("maxresults must be between 1 and %d.", PageSize))
		}
	}
	skip := q.Get("$skiptoken")
	var (
		items []item
		more  bool
		path  = "/secrets"
	)
	if rt.op == opList {
		if skip != "" && !nameRE.MatchString(skip) {
			return badParameter("The $skiptoken is not valid.")
		}
		items, more = s.store.list(strings.ToLower(skip), n)
	} else {
		if e := validName(rt.name); e != nil {
			return e
		}
		if skip != "" && !versionRE.MatchString(skip) {
			return badParameter("The $skiptoken is not valid.")
		}
		var (
			name  string
			found bool
		)
		if items, name, more, found = s.store.listVersions(rt.name, skip, n); !found {
			return notFound(rt.name)
		}
		path += "/" + name + "/versions"
	}
	page := struct {
		Value    []secretJSON `json:"value"`
		NextLink *string      `json:"nextLink"`
	}{Value: []secretJSON{}}
	for _, it := range items {
		sj := s.secretJSON(it.name, it.v, false)
		if rt.op == opList {
			sj.ID = s.base + "/secrets/" + it.name
		}
		page.Value = append(page.Value, sj)
	}
	if more {
		last := items[len(items)-1]
		cursor := strings.ToLower(last.name)
		if rt.op == opListVersions {
			cursor = last.v.id
		}
		next := s.base + path + "?api-version=" + url.QueryEscape(apiVersion) + "&$skiptoken=" + cursor + "&maxresults=" + strconv.Itoa(n)
		page.NextLink = &next
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

type attributesJSON struct {
	Enabled         bool   `json:"enabled"`
	NBF             *int64 `json:"nbf,omitempty"`
	Exp             *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

type secretJSON struct {
	Value       *string           `json:"value,omitempty"`
	ContentType string            `json:"contentType,omitempty"`
	ID          string            `json:"id"`
	Attributes  attributesJSON    `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
}

func (s *Server) secretJSON(name string, v *version, withValue bool) secretJSON {
	sj := secretJSON{
		ContentType: v.contentType,
		ID:          s.base + "/secrets/" + name + "/" + v.id,
		Attributes: attributesJSON{
			Enabled: v.enabled, NBF: v.nbf, Exp: v.exp, Created: v.created, Updated: v.created,
			RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: 90,
		},
		Tags: v.tags,
	}
	if withValue {
		sj.Value = &v.value
	}
	return sj
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers e in Key Vault's shape, with the challenge on a 401.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *kvError) {
	s.log.Info("keyvault: request refused", "method", clip(r.Method), "path", clip(r.URL.Path), "status", e.status, "code", e.code)
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", s.challenge)
	}
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	type inner struct {
		Code string `json:"code"`
	}
	body := struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError *inner `json:"innererror,omitempty"`
		} `json:"error"`
	}{}
	body.Error.Code, body.Error.Message = e.code, e.message
	if e.inner != "" {
		body.Error.InnerError = &inner{e.inner}
	}
	writeJSON(w, e.status, body)
}
