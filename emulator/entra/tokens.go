package entra

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// principal is who a token is issued to: an app registration's service
// principal, or a managed identity.
type principal struct {
	appID    string
	objectID string // service principal object id in the token's tenant
}

// Client authentication methods, as azpacr/appidacr say them.
const (
	acrPublic = "0"
	acrSecret = "1"
	acrCert   = "2" // certificate or federated assertion
)

// issue describes one access token to mint.
type issue struct {
	tenant     *Tenant
	client     principal
	acr        string
	user       *User // nil for app-only tokens
	resource   *Application
	resourceAs string   // v1 tokens carry the resource as requested in aud
	scopes     []string // delegated permissions granted
	roles      []string
	authTime   time.Time
}

// accessToken mints an access token in the version the resource asks for,
// with Entra's claim set for it.
func (s *Server) accessToken(is issue) (string, time.Time, error) {
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.lifetime)
	tok, err := signJWT(s.keys.signer(), s.accessClaims(is, now, exp, is.resource.tokenVersion()))
	return tok, exp, err
}

// accessClaims is the claim set of an access token valid from nbf to exp,
// in token version ver (1 or 2).
func (s *Server) accessClaims(is issue, nbf, exp time.Time, ver int) map[string]any {
	now := nbf
	c := map[string]any{
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": exp.Unix(),
		"aio": randomString(48),
		"rh":  "1." + randomString(40) + ".",
		"tid": is.tenant.ID,
		"uti": randomString(16),
	}
	if len(is.roles) > 0 {
		c["roles"] = is.roles
	}
	if slices.Contains(is.resource.OptionalClaims, "idtyp") {
		if is.user == nil {
			c["idtyp"] = "app"
		} else {
			c["idtyp"] = "user"
		}
	}
	if is.user != nil {
		c["oid"] = is.user.ObjectID
		c["name"] = is.user.Name
		c["sub"] = derivedID("sub", is.user.ObjectID, is.resource.ClientID)
		c["scp"] = strings.Join(is.scopes, " ")
	} else {
		c["oid"] = is.client.objectID
		c["sub"] = is.client.objectID
	}
	if ver == 2 {
		c["ver"] = "2.0"
		c["iss"] = s.Issuer(is.tenant.ID)
		c["aud"] = is.resource.ClientID
		c["azp"] = is.client.appID
		c["azpacr"] = is.acr
		if is.user != nil {
			c["preferred_username"] = is.user.PreferredUsername
		}
	} else {
		c["ver"] = "1.0"
		c["iss"] = s.IssuerV1(is.tenant.ID)
		c["aud"] = is.resourceAs
		c["appid"] = is.client.appID
		c["appidacr"] = is.acr
		c["idp"] = s.IssuerV1(is.tenant.ID)
		if is.user != nil {
			delete(c, "idp")
			c["upn"] = is.user.PreferredUsername
			c["unique_name"] = is.user.PreferredUsername
			c["amr"] = []string{"pwd"}
			c["acr"] = "1"
		}
	}
	return c
}

// idToken mints the v2 ID token for a user sign-in to client.
func (s *Server) idToken(t *Tenant, u *User, clientID, nonce string) (string, error) {
	now := s.now().Truncate(time.Second)
	c := map[string]any{
		"aud":                clientID,
		"iss":                s.Issuer(t.ID),
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
		"aio":                randomString(48),
		"name":               u.Name,
		"oid":                u.ObjectID,
		"preferred_username": u.PreferredUsername,
		"rh":                 "1." + randomString(40) + ".",
		"sub":                derivedID("sub", u.ObjectID, clientID),
		"tid":                t.ID,
		"uti":                randomString(16),
		"ver":                "2.0",
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return signJWT(s.keys.signer(), c)
}

// clientInfo is MSAL's home account hint: base64url JSON {uid, utid}.
func clientInfo(u *User, t *Tenant) string {
	b, _ := json.Marshal(map[string]string{"uid": u.ObjectID, "utid": t.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}
