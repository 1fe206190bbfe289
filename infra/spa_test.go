package infra

// The SPA on Azure Static Web Apps: the site (spa.bicep), its origin among
// the SPA's redirect URIs and the Task API's CORS origins, the outputs its
// build reads, and azure.yaml's web service.

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// wantSPAOrigins is main.bicep's spaOrigins: the development origins, the
// Static Web App's and, when set, spaOrigin.
const wantSPAOrigins = "concat(spaDevOrigins, [spa.outputs.url], empty(spaOrigin) ? [] : [spaOrigin])"

// swaRegions are the regions of Static Web Apps the location may be.
var swaRegions = []string{"westus2", "centralus", "eastus2", "westeurope", "eastasia"}

var swaAllowed = "@allowed([ '" + strings.Join(swaRegions, "' '") + "' ])"

// checkWebService reports how azure.yaml's web service differs from the
// SPA's: web/ built by its prepackage hook, deployed to Static Web Apps.
func checkWebService(doc map[string]any) []string {
	if lookup(doc, "services", "web") == nil {
		return []string{"services.web is missing"}
	}
	var problems []string
	for path, value := range map[string]string{
		"host":                   "staticwebapp",
		"language":               "js",
		"project":                "./web",
		"dist":                   "dist",
		"hooks.prepackage.shell": "sh",
		"hooks.prepackage.run":   "npm ci --no-audit --no-fund && npm run build",
	} {
		keys := append([]string{"services", "web"}, strings.Split(path, ".")...)
		if got, _ := lookup(doc, keys...).(string); got != value {
			problems = append(problems, "services.web."+path+" = "+got+", want "+value)
		}
	}
	slices.Sort(problems)
	return problems
}

// spaModule is main.bicep's one call of spa.bicep.
func spaModule(t *testing.T, tpl *templates) *decl {
	t.Helper()
	calls := moduleCalls(tpl.main, "spa.bicep")
	if len(calls) != 1 {
		t.Fatalf("main.bicep: want one module of spa.bicep, have %d", len(calls))
	}
	return calls[0]
}

func TestStaticWebApp(t *testing.T) {
	tpl := loadTemplates(t)
	f := tpl.module(t, "spa.bicep")
	site := one(t, f, "Microsoft.Web/staticSites@")
	for _, p := range checkProperties("static web app", site.body(), map[string]string{
		"sku.name": "'Free'",
		"sku.tier": "'Free'",
		"name":     "name",
		"location": "location",
		"tags":     "union(tags, { 'azd-service-name': 'web' })",
	}) {
		t.Error(p)
	}
	loc := f.find("param", "location")
	if loc == nil || !hasDecorator(loc, swaAllowed) || canonical(loc.value) != "'westeurope'" {
		t.Errorf("spa.bicep: param location must be %s with the default 'westeurope'", swaAllowed)
	}
	if out := f.find("output", "url"); out == nil || canonical(out.value) != "'https://${site.properties.defaultHostname}'" {
		t.Error("spa.bicep: output url must be 'https://${site.properties.defaultHostname}'")
	}

	m := spaModule(t, tpl)
	p := params(m)
	if got := canonical(p["location"]); got != "spaLocation" {
		t.Errorf("main.bicep: module %s: location = %q, want spaLocation", m.name, got)
	}
	if sl := tpl.main.find("param", "spaLocation"); sl == nil || !hasDecorator(sl, swaAllowed) || canonical(sl.value) != "'westeurope'" {
		t.Errorf("main.bicep: param spaLocation must be %s with the default 'westeurope'", swaAllowed)
	}
	// The site depends on nothing the SPA's origin flows into: no cycle.
	for name, e := range p {
		if r := render(e); strings.Contains(r, ".outputs.") {
			t.Errorf("main.bicep: module %s: %s = %s: the Static Web App must depend on no module", m.name, name, r)
		}
	}
}

// TestSPAOriginReachesRedirectsAndCORS: the Static Web App's origin is a
// redirect URI of the SPA's registration (both its declarations) and a CORS
// origin of the Task API.
func TestSPAOriginReachesRedirectsAndCORS(t *testing.T) {
	tpl := loadTemplates(t)
	origin := "[" + spaModule(t, tpl).name + ".outputs.url]"
	task := tpl.main.find("module", "taskApp")
	if got := render(resolveVar(tpl.main, params(task)["corsAllowedOrigins"])); !strings.Contains(got, origin) {
		t.Errorf("main.bicep: the Task API's corsAllowedOrigins are %s, without the Static Web App's origin %s", got, origin)
	}
	if got := render(resolveVar(tpl.main, params(tpl.main.find("module", "entra"))["spaRedirectUris"])); !strings.Contains(got, origin) {
		t.Errorf("main.bicep: the SPA's redirect URIs are %s, without the Static Web App's origin %s", got, origin)
	}
	ef := tpl.module(t, "entra.bicep")
	spaApps := 0
	for _, d := range ef.resources("Microsoft.Graph/applications@") {
		if r := d.body().get("spa.redirectUris"); r != nil {
			spaApps++
			if got := canonical(r); got != "spaRedirectUris" {
				t.Errorf("entra.bicep: %s: spa.redirectUris = %s, want spaRedirectUris", d.name, got)
			}
		}
	}
	if spaApps != 1 {
		t.Errorf("entra.bicep: %d applications with spa redirect URIs, want 1", spaApps)
	}
	for _, call := range moduleCalls(ef, "entra-spa-access.bicep") {
		if got := canonical(params(call)["redirectUris"]); got != "spaRedirectUris" {
			t.Errorf("entra.bicep: module %s: redirectUris = %s, want spaRedirectUris", call.name, got)
		}
	}
	access := tpl.module(t, "entra-spa-access.bicep")
	for _, d := range access.resources("Microsoft.Graph/applications@") {
		if got := canonical(d.body().get("spa.redirectUris")); got != "redirectUris" {
			t.Errorf("entra-spa-access.bicep: %s: spa.redirectUris = %s, want redirectUris", d.name, got)
		}
	}
}

var viteEnvRE = regexp.MustCompile(`env\.(VITE_[A-Z_]+)`)

// TestSPABuildOutputs: main.bicep outputs every VITE_* name the SPA's
// config reads, with the deployment's values.
func TestSPABuildOutputs(t *testing.T) {
	tpl := loadTemplates(t)
	spa := spaModule(t, tpl).name
	want := map[string]string{
		"SPA_URL":              spa + ".outputs.url",
		"VITE_CLIENT_ID":       "entra.outputs.spaAppId",
		"VITE_AUTHORITY":       "'${authorityHost}/organizations'",
		"VITE_KNOWN_AUTHORITY": "replace(authorityHost, 'https://', '')",
		"VITE_TASK_API":        "taskApp.outputs.url",
		"VITE_TASK_SCOPE":      "'${entra.outputs.taskApiIdentifierUri}/access_as_user'",
		"VITE_REDIRECT_URI":    spa + ".outputs.url",
	}
	for _, name := range sortedKeys(want) {
		out := tpl.main.find("output", name)
		if out == nil {
			t.Errorf("main.bicep: no output %s", name)
			continue
		}
		if got := canonical(out.value); got != want[name] {
			t.Errorf("main.bicep: output %s = %s, want %s", name, got, want[name])
		}
	}
	// authorityHost is the login endpoint without its trailing slash, so
	// VITE_AUTHORITY has no double slash.
	if v := tpl.main.find("var", "authorityHost"); v == nil || canonical(v.value) != "endsWith(loginEndpoint, '/') ? substring(loginEndpoint, 0, length(loginEndpoint) - 1) : loginEndpoint" {
		t.Error("main.bicep: var authorityHost must be the login endpoint without its trailing slash")
	}
	if v := tpl.main.find("var", "loginEndpoint"); v == nil || canonical(v.value) != "environment().authentication.loginEndpoint" {
		t.Error("main.bicep: var loginEndpoint must be environment().authentication.loginEndpoint")
	}
	// The names are the ones web/src/config.ts reads.
	src, err := os.ReadFile(filepath.Join("..", "web", "src", "config.ts"))
	if err != nil {
		t.Fatal(err)
	}
	var read []string
	for _, m := range viteEnvRE.FindAllStringSubmatch(string(src), -1) {
		read = append(read, m[1])
		if _, ok := want[m[1]]; !ok {
			t.Errorf("web/src/config.ts reads %s, which main.bicep does not output", m[1])
		}
	}
	for name := range want {
		if strings.HasPrefix(name, "VITE_") && !slices.Contains(read, name) {
			t.Errorf("main.bicep outputs %s, which web/src/config.ts does not read", name)
		}
	}
}
