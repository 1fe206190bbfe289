package keyvault

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// version is one version of a secret. Kept versions are never modified, so
// a pointer to one may be read without the store's lock.
type version struct {
	id          string // 32 lowercase hex characters
	value       string
	contentType string
	tags        map[string]string
	enabled     bool
	nbf, exp    *int64 // unix seconds; stored and echoed, not enforced (Key Vault gets secrets outside them too)
	created     int64  // unix seconds
}

// secret is a name's versions, oldest first: the last is the current one.
type secret struct {
	name     string // as first set: ids keep that case, lookups ignore it
	versions []*version
}

// store holds the vault's secrets within the package's limits.
type store struct {
	maxSecrets, maxBytes int // MaxSecrets and MaxStoredBytes; tests lower them

	mu      sync.Mutex
	secrets map[string]*secret // by lowercase name
	bytes   int                // sum of the kept values' lengths
}

func newStore() *store {
	return &store{maxSecrets: MaxSecrets, maxBytes: MaxStoredBytes, secrets: map[string]*secret{}}
}

// setParams is the body of a set request; the Go API fills Value alone.
type setParams struct {
	Value       *string           `json:"value"`
	ContentType *string           `json:"contentType"`
	Tags        map[string]string `json:"tags"`
	Attributes  *struct {
		Enabled *bool  `json:"enabled"`
		NBF     *int64 `json:"nbf"`
		Exp     *int64 `json:"exp"`
	} `json:"attributes"`
}

func validName(name string) *kvError {
	if !nameRE.MatchString(name) {
		return badParameter("The request URI contains an invalid name: " + clip(name) + ". Secret names are 1 to 127 letters, digits and dashes.")
	}
	return nil
}

// clip bounds request text echoed in messages and logs.
func clip(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}

func (p *setParams) validate() *kvError {
	if p.Value == nil {
		return badParameter("The secret value is required: the request body must be a JSON object with a string property 'value'.")
	}
	if len(*p.Value) > MaxValueBytes {
		return badParameter("The secret value is too large: the maximum is 25 KiB (25600 bytes).")
	}
	if p.ContentType != nil && len(*p.ContentType) > MaxContentTypeBytes {
		return badParameter("The content type is too long: the maximum is 255 bytes.")
	}
	if len(p.Tags) > MaxTags {
		return badParameter("Too many tags: a secret has at most 15.")
	}
	for k, v := range p.Tags {
		if k == "" || utf8.RuneCountInString(k) > 512 || utf8.RuneCountInString(v) > 256 {
			return badParameter("Tag names must be 1 to 512 characters and tag values at most 256.")
		}
	}
	return nil
}

// set stores a new version of name, the current one from now on, and
// returns it with the secret's name as first set.
func (st *store) set(name string, p setParams, now int64) (*version, string, *kvError) {
	if e := validName(name); e != nil {
		return nil, "", e
	}
	if e := p.validate(); e != nil {
		return nil, "", e
	}
	v := &version{id: newVersionID(), value: *p.Value, enabled: true, created: now}
	if p.ContentType != nil {
		v.contentType = *p.ContentType
	}
	if len(p.Tags) > 0 {
		v.tags = maps.Clone(p.Tags)
	}
	if a := p.Attributes; a != nil {
		if a.Enabled != nil {
			v.enabled = *a.Enabled
		}
		v.nbf, v.exp = a.NBF, a.Exp
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	key := strings.ToLower(name)
	s := st.secrets[key]
	if s == nil && len(st.secrets) >= st.maxSecrets {
		return nil, "", quotaExceeded(fmt.Sprintf("The Key Vault emulator keeps at most %d secrets.", st.maxSecrets))
	}
	freed := 0
	if s != nil && len(s.versions) >= MaxVersions {
		freed = len(s.versions[0].value)
	}
	if st.bytes-freed+len(v.value) > st.maxBytes {
		return nil, "", quotaExceeded(fmt.Sprintf("The Key Vault emulator keeps at most %d bytes of secret values.", st.maxBytes))
	}
	if s == nil {
		s = &secret{name: name}
		st.secrets[key] = s
	}
	if len(s.versions) >= MaxVersions {
		s.versions[0] = nil
		s.versions = s.versions[1:]
	}
	s.versions = append(s.versions, v)
	st.bytes += len(v.value) - freed
	return v, s.name, nil
}

// get returns the version of name ("" for the current one) and the
// secret's name as first set.
func (st *store) get(name, id string) (*version, string, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.secrets[strings.ToLower(name)]
	if s == nil {
		return nil, "", false
	}
	if id == "" {
		return s.versions[len(s.versions)-1], s.name, true
	}
	for _, v := range s.versions {
		if v.id == id {
			return v, s.name, true
		}
	}
	return nil, "", false
}

// item is one entry of a list page.
type item struct {
	name string
	v    *version
}

// list returns up to n secrets (with their current versions) whose
// lowercase names sort after the cursor, and whether more follow.
func (st *store) list(after string, n int) ([]item, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	keys := slices.Sorted(maps.Keys(st.secrets))
	i, _ := slices.BinarySearch(keys, after)
	if i < len(keys) && keys[i] == after {
		i++
	}
	var out []item
	for ; i < len(keys) && len(out) < n; i++ {
		s := st.secrets[keys[i]]
		out = append(out, item{s.name, s.versions[len(s.versions)-1]})
	}
	return out, i < len(keys)
}

// listVersions returns up to n versions of name, oldest first, that follow
// the version after ("" to start), the secret's name as first set, whether
// more follow and whether the secret exists. A cursor
// version that is no longer kept was older than every kept one (the oldest
// go first), so the page starts at the oldest.
func (st *store) listVersions(name, after string, n int) ([]item, string, bool, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.secrets[strings.ToLower(name)]
	if s == nil {
		return nil, "", false, false
	}
	i := 0
	if after != "" {
		if j := slices.IndexFunc(s.versions, func(v *version) bool { return v.id == after }); j >= 0 {
			i = j + 1
		}
	}
	var out []item
	for ; i < len(s.versions) && len(out) < n; i++ {
		out = append(out, item{s.name, s.versions[i]})
	}
	return out, s.name, i < len(s.versions), true
}

func newVersionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// kvError is an error answered in Key Vault's shape.
type kvError struct {
	status  int
	code    string
	message string
	inner   string // innererror.code, if any
}

func badParameter(msg string) *kvError {
	return &kvError{status: http.StatusBadRequest, code: "BadParameter", message: msg}
}

func quotaExceeded(msg string) *kvError {
	return &kvError{status: http.StatusBadRequest, code: "QuotaExceeded", message: msg}
}
