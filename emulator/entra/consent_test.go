package entra_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/emulator/entra/entratest"
)

// withTaskAPIRequiringAudit is the default directory as it was: the
// multi-tenant Task API listing the single-tenant Audit Service's
// AuditLog.Write among its required resources.
func withTaskAPIRequiringAudit() *entra.Directory {
	d := entra.DefaultDirectory()
	d.Application(entra.TaskAPIClientID).RequiredAccess = append(d.Application(entra.TaskAPIClientID).RequiredAccess,
		entra.RequiredAccess{ResourceAppID: entra.AuditClientID, Roles: []string{entra.RoleAuditWrite}})
	return d
}

// consentAt signs a user in to the SPA with prompt=consent (the SPA's
// "Grant consent" step): a consent to the SPA and, through the Task API's
// knownClientApplications, to the Task API's own required resources.
func consentAt(t *testing.T, srv *entra.Server, tenant, oid, username string) url.Values {
	t.Helper()
	_, challenge := pkce()
	authURL := spaAuthURL(srv, tenant, challenge) + "&prompt=consent"
	loc := newBrowser(t, srv).signIn(authURL, oid, username)
	frag, err := url.ParseQuery(loc.Fragment)
	if err != nil {
		t.Fatal(err)
	}
	return frag
}

// TestConsentNeedsEveryRequiredResourceProvisionable: Entra provisions
// each required resource in the consenting tenant; a single-tenant one
// cannot be outside its home tenant, and the consent fails with
// AADSTS650052. The old registrations failed for the second tenant; the
// fixed ones consent.
func TestConsentNeedsEveryRequiredResourceProvisionable(t *testing.T) {
	for _, tc := range []struct {
		name          string
		dir           *entra.Directory
		tenant        string
		oid, username string
		refused       bool
	}{
		{"old registrations, second tenant", withTaskAPIRequiringAudit(), entra.SecondTenantID, entra.ErinOID, "erin@fabrikam.handoff.test", true},
		{"old registrations, home tenant", withTaskAPIRequiringAudit(), entra.HomeTenantID, entra.BobOID, "bob@home.handoff.test", false},
		{"fixed registrations, second tenant", entra.DefaultDirectory(), entra.SecondTenantID, entra.ErinOID, "erin@fabrikam.handoff.test", false},
		// Northwind has no Notification Service principal, but the service
		// is multi-tenant: consent would create one.
		{"fixed registrations, third tenant", entra.DefaultDirectory(), entra.ThirdTenantID, entra.FrankOID, "frank@northwind.handoff.test", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := entratest.Start(t, entra.Config{Directory: tc.dir})
			frag := consentAt(t, srv, tc.tenant, tc.oid, tc.username)
			if !tc.refused {
				if frag.Get("code") == "" || frag.Get("error") != "" {
					t.Fatalf("consent refused: %v", frag)
				}
				return
			}
			desc := frag.Get("error_description")
			if frag.Get("code") != "" || frag.Get("error") != "invalid_client" || !strings.HasPrefix(desc, "AADSTS650052: ") ||
				!strings.Contains(desc, entra.AuditClientID) || !strings.Contains(desc, tc.tenant) {
				t.Fatalf("consent answered %v, want AADSTS650052 naming the Audit Service and the tenant", frag)
			}
			if frag.Get("state") != "state-123" {
				t.Errorf("error redirect lost the state: %v", frag)
			}
		})
	}
}

// TestConsentCheckOnlyWhenConsenting: without a consent prompt (the
// tenant's admin already consented) nothing is provisioned, so nothing is
// checked, as in Entra; the refusal is the consent's, not the sign-in's.
func TestConsentCheckOnlyWhenConsenting(t *testing.T) {
	srv := entratest.Start(t, entra.Config{Directory: withTaskAPIRequiringAudit()})
	_, challenge := pkce()
	loc := newBrowser(t, srv).signIn(spaAuthURL(srv, entra.SecondTenantID, challenge), entra.ErinOID, "erin@fabrikam.handoff.test")
	frag, _ := url.ParseQuery(loc.Fragment)
	if frag.Get("code") == "" {
		t.Fatalf("sign-in with admin consent in place: %v, want a code", frag)
	}
}

// TestDirectoryRefusesUnknownRequiredResource: a required resource must be
// an app of the directory.
func TestDirectoryRefusesUnknownRequiredResource(t *testing.T) {
	d := entra.DefaultDirectory()
	d.Application(entra.SPAClientID).RequiredAccess = append(d.Application(entra.SPAClientID).RequiredAccess,
		entra.RequiredAccess{ResourceAppID: "a0000000-0000-4000-8000-0000000000ff", Scopes: []string{"x"}})
	if _, err := entra.New(entra.Config{BaseURL: "https://127.0.0.1:1", Directory: d}); err == nil || !strings.Contains(err.Error(), "unknown app") {
		t.Fatalf("New: %v, want an unknown required resource refused", err)
	}
}

// TestDefaultDirectoryConsentsAnywhere: every multi-tenant app of the
// default directory (the deployed ones and the local dev client) requires
// only multi-tenant resources, so consent to it works in any tenant.
func TestDefaultDirectoryConsentsAnywhere(t *testing.T) {
	d := entra.DefaultDirectory()
	checked := 0
	for _, a := range d.Applications {
		if a.SignInAudience != entra.MultiTenant {
			continue
		}
		for _, ra := range a.RequiredAccess {
			if res := d.Application(ra.ResourceAppID); res == nil || !(res.SignInAudience == entra.MultiTenant || res.FirstParty) {
				t.Errorf("multi-tenant %s requires %s, which no other tenant can provision", a.DisplayName, ra.ResourceAppID)
			}
			checked++
		}
	}
	if checked < 4 {
		t.Errorf("%d required resources of multi-tenant apps checked, want the Task API's, the SPA's and the dev client's (4)", checked)
	}
}
