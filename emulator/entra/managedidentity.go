package entra

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
)

// IdentityEndpointPath is the managed identity endpoint, App Service style:
// set IDENTITY_ENDPOINT to BaseURL()+IdentityEndpointPath and IDENTITY_HEADER
// to the directory's identity header, and azidentity's
// ManagedIdentityCredential gets tokens here.
const IdentityEndpointPath = "/msi/token"

// handleManagedIdentity issues app-only tokens to the directory's managed
// identities, including api://AzureADTokenExchange tokens that apps trust as
// federated credentials.
func (s *Server) handleManagedIdentity(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointManagedIdentity)
	fail := func(status int, msg string) {
		s.log.Info("managed identity request refused", "status", status, "reason", msg)
		writeJSON(w, status, map[string]any{"statusCode": status, "message": msg})
	}
	hdr := r.Header.Get("X-IDENTITY-HEADER")
	if s.dir.IdentityHeader == "" || subtle.ConstantTimeCompare([]byte(hdr), []byte(s.dir.IdentityHeader)) != 1 {
		fail(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") != "2019-08-01" {
		fail(http.StatusBadRequest, "api-version must be 2019-08-01.")
		return
	}
	var mi *ManagedIdentity
	switch {
	case q.Get("client_id") != "":
		mi = s.dir.ManagedIdentity(q.Get("client_id"))
	case q.Get("object_id") != "" || q.Get("principal_id") != "":
		id := q.Get("object_id") + q.Get("principal_id")
		for _, m := range s.dir.ManagedIdentities {
			if m.ObjectID == id {
				mi = m
			}
		}
	case q.Get("mi_res_id") != "":
		res := q.Get("mi_res_id")
		for _, m := range s.dir.ManagedIdentities {
			if strings.EqualFold(res[strings.LastIndex(res, "/")+1:], m.Name) {
				mi = m
			}
		}
	default:
		mi = s.dir.ManagedIdentity("")
	}
	if mi == nil {
		fail(http.StatusBadRequest, "No managed identity matches the request's client_id, object_id or mi_res_id.")
		return
	}
	resourceAs := strings.TrimSuffix(q.Get("resource"), "/.default")
	res := s.dir.resourceByIdentifier(resourceAs)
	if res == nil {
		fail(http.StatusBadRequest, "AADSTS500011: The resource principal named "+resourceAs+" was not found in the emulator's directory.")
		return
	}
	t := s.dir.Tenant(mi.Tenant)
	if s.dir.servicePrincipal(t, res) == nil {
		fail(http.StatusBadRequest, "AADSTS500011: The resource principal named "+resourceAs+" was not found in the tenant "+t.ID+".")
		return
	}
	tok, exp, err := s.accessToken(issue{
		tenant: t, client: principal{appID: mi.ClientID, objectID: mi.ObjectID}, acr: acrCert,
		resource: res, resourceAs: resourceAs,
		roles: t.rolesOf(PrincipalServicePrincipal, mi.ClientID, res.ClientID),
	})
	if err != nil {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	s.countIssued("managed_identity")
	writeJSON(w, http.StatusOK, map[string]string{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     q.Get("resource"),
		"token_type":   "Bearer",
		"client_id":    mi.ClientID,
	})
}
