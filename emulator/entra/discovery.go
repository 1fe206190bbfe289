package entra

import (
	"net/http"
	"strings"
)

// handleDiscovery serves the OpenID configuration; version 1 is the v1
// document (issuer <base>/{tid}/), which validators read for the v1 issuer.
func (s *Server) handleDiscovery(version int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count("discovery")
		ref, e := s.resolveTenant(r.PathValue("tenant"))
		if e != nil {
			s.writeSTSError(w, r, e)
			return
		}
		// Endpoints name the tenant id (a domain resolves to it); common and
		// organizations keep their name and issue a {tenantid} template.
		seg, tid := ref.segment, "{tenantid}"
		if ref.tenant != nil {
			seg, tid = ref.tenant.ID, ref.tenant.ID
		}
		a := s.baseStr + "/" + seg
		doc := map[string]any{
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"response_modes_supported":              []string{"query", "fragment", "form_post"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
			"request_uri_parameter_supported":       false,
			"http_logout_supported":                 true,
			"frontchannel_logout_supported":         true,
			"cloud_instance_name":                   "microsoftonline.com",
			"cloud_graph_host_name":                 "graph.windows.net",
			"msgraph_host":                          "graph.microsoft.com",
			"tenant_region_scope":                   nil,
			"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host",
				"aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		}
		if version == 2 {
			doc["issuer"] = s.baseStr + "/" + tid + "/v2.0"
			doc["token_endpoint"] = a + "/oauth2/v2.0/token"
			doc["authorization_endpoint"] = a + "/oauth2/v2.0/authorize"
			doc["end_session_endpoint"] = a + "/oauth2/v2.0/logout"
			doc["device_authorization_endpoint"] = a + "/oauth2/v2.0/devicecode"
			doc["jwks_uri"] = a + "/discovery/v2.0/keys"
		} else {
			// The v1 token and authorize endpoints are not emulated; the
			// document exists for its issuer and keys.
			doc["issuer"] = s.baseStr + "/" + tid + "/"
			doc["token_endpoint"] = a + "/oauth2/token"
			doc["authorization_endpoint"] = a + "/oauth2/authorize"
			doc["end_session_endpoint"] = a + "/oauth2/logout"
			doc["jwks_uri"] = a + "/discovery/keys"
		}
		writeJSON(w, http.StatusOK, doc)
	}
}

// handleKeys serves the signing keys as Entra does: kty, use, kid, x5t, n,
// e, x5c, and (v2) an issuer template; never alg.
func (s *Server) handleKeys(version int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count("jwks")
		if _, e := s.resolveTenant(r.PathValue("tenant")); e != nil {
			s.writeSTSError(w, r, e)
			return
		}
		if s.takeFailure("jwks", "") {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable", "error_description": "JWKS failure injected by the emulator's failure control."})
			return
		}
		keys := s.keys.jwks()
		if version == 2 {
			for i := range keys {
				keys[i].Issuer = s.baseStr + "/{tenantid}/v2.0"
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
	}
}

// handleUserRealm answers MSAL's home-realm lookup before a password grant:
// every known user is a managed (cloud-only) account.
func (s *Server) handleUserRealm(w http.ResponseWriter, r *http.Request) {
	s.count("userrealm")
	name := r.PathValue("user")
	domain := name[strings.LastIndex(name, "@")+1:]
	accountType := "Unknown"
	if t := s.dir.Tenant(strings.ToLower(domain)); t != nil && t.User(name) != nil {
		accountType = "Managed"
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"ver":                 "1.0",
		"account_type":        accountType,
		"domain_name":         domain,
		"cloud_instance_name": "microsoftonline.com",
		"cloud_audience_urn":  "urn:federation:MicrosoftOnline",
	})
}
