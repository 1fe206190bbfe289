package infra

// Each Function App's settings are exactly what its binary reads (its
// Settings list) and what the Functions host reads, and nothing Flex
// Consumption refuses.

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/downstream"
	"github.com/handoff-dev/handoff/internal/auditapi"
	"github.com/handoff-dev/handoff/internal/notifyapi"
	"github.com/handoff-dev/handoff/internal/taskapi"
)

// deployedApps are the Function Apps main.bicep deploys: the azd service
// name, the module declaration, the variable holding the app's settings,
// and the Settings list of the code.
var deployedApps = []struct {
	service     string
	module      string
	settingsVar string
	settings    []string
}{
	{"task", "taskApp", "taskApiSettings", taskapi.Settings},
	{"notification", "notificationApp", "notificationSettings", notifyapi.Settings},
	{"audit", "auditApp", "auditSettings", auditapi.Settings},
}

// hostOwnedSettings are read by the Functions host (and, for storage, by
// table.ConfigFromEnv too): in functionapp.bicep's hostSettings.
var hostOwnedSettings = []string{
	"AzureWebJobsStorage__accountName",
	"AzureWebJobsStorage__credential",
	"AzureWebJobsStorage__clientId",
	"APPLICATIONINSIGHTS_CONNECTION_STRING",
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

// forbiddenSettings must never be app settings.
var forbiddenSettings = map[string]string{
	"FUNCTIONS_WORKER_RUNTIME":     "Flex Consumption refuses it: the runtime is functionAppConfig.runtime",
	"FUNCTIONS_EXTENSION_VERSION":  "Flex Consumption refuses it",
	"FUNCTIONS_CUSTOMHANDLER_PORT": "the Functions host sets it for the handler",
	"AzureWebJobsStorage":          "a connection string: storage is identity-based (shared keys are off)",
}

// checkSettings reports how the names of an app's settings differ from
// required (its Settings list) and the host-owned list.
func checkSettings(settings map[string]string, required []string) []string {
	var problems []string
	for _, name := range required {
		if _, ok := settings[name]; !ok {
			problems = append(problems, fmt.Sprintf("%s is in the app's Settings list but not set", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		if why, bad := forbiddenSettings[name]; bad {
			problems = append(problems, fmt.Sprintf("%s must not be set: %s", name, why))
			continue
		}
		if !slices.Contains(required, name) && !slices.Contains(hostOwnedSettings, name) {
			problems = append(problems, fmt.Sprintf("%s is set but neither in the app's Settings list nor host-owned", name))
		}
	}
	return problems
}

func TestCheckSettingsReports(t *testing.T) {
	required := []string{"A", "B"}
	full := map[string]string{"A": "", "B": "", "AzureWebJobsStorage__accountName": ""}
	for _, tc := range []struct {
		name     string
		settings map[string]string
		want     []string // substrings, one per problem
	}{
		{"complete", full, nil},
		{"missing", map[string]string{"A": ""}, []string{"B is in the app's Settings list but not set"}},
		{"unknown", map[string]string{"A": "", "B": "", "C": ""}, []string{"C is set but neither"}},
		{"worker runtime", map[string]string{"A": "", "B": "", "FUNCTIONS_WORKER_RUNTIME": "custom"}, []string{"FUNCTIONS_WORKER_RUNTIME must not be set"}},
		{"extension version", map[string]string{"A": "", "B": "", "FUNCTIONS_EXTENSION_VERSION": "~4"}, []string{"FUNCTIONS_EXTENSION_VERSION must not be set"}},
		{"port", map[string]string{"A": "", "B": "", "FUNCTIONS_CUSTOMHANDLER_PORT": "7071"}, []string{"FUNCTIONS_CUSTOMHANDLER_PORT must not be set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := checkSettings(tc.settings, required)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %q, want it to say %q", got[i], w)
				}
			}
		})
	}
}

// appSettings returns the settings main.bicep gives the app (its variable,
// names to expressions with variables followed), checking that the module
// call passes that variable.
func appSettings(t *testing.T, tpl *templates, app string) map[string]*expr {
	t.Helper()
	for _, a := range deployedApps {
		if a.service != app {
			continue
		}
		m := tpl.main.find("module", a.module)
		if m == nil || !strings.HasSuffix(m.typ, "modules/functionapp.bicep") {
			t.Fatalf("main.bicep: no module %s of modules/functionapp.bicep", a.module)
		}
		p := params(m)
		if s, _ := p["serviceName"].str(); s != a.service {
			t.Fatalf("main.bicep: module %s: serviceName %q, want %q (the azd service)", a.module, canonical(p["serviceName"]), a.service)
		}
		if got := canonical(p["appSettings"]); got != a.settingsVar {
			t.Fatalf("main.bicep: module %s: appSettings is %q, want the variable %s", a.module, got, a.settingsVar)
		}
		v := tpl.main.find("var", a.settingsVar)
		if v == nil || v.value.obj == nil {
			t.Fatalf("main.bicep: var %s must be an object literal", a.settingsVar)
		}
		out := map[string]*expr{}
		for k, e := range v.value.obj.props {
			out[k] = resolveVar(tpl.main, e)
		}
		return out
	}
	t.Fatalf("no app %s", app)
	return nil
}

// hostSettings returns functionapp.bicep's hostSettings, checking that the
// app settings are exactly union(hostSettings, otlpSettings, appSettings).
func hostSettings(t *testing.T, tpl *templates) map[string]*expr {
	t.Helper()
	fa := tpl.module(t, "functionapp.bicep")
	configs := fa.resources("Microsoft.Web/sites/config")
	var appsettings *decl
	for _, c := range configs {
		if n, _ := c.body().get("name").str(); n == "appsettings" {
			appsettings = c
		}
	}
	if appsettings == nil {
		t.Fatal("functionapp.bicep: no config resource named appsettings (the app's settings)")
	}
	if got := canonical(appsettings.body().get("properties")); got != "union(hostSettings, otlpSettings, appSettings)" {
		t.Fatalf("functionapp.bicep: appsettings properties are %q, want union(hostSettings, otlpSettings, appSettings)", got)
	}
	for _, site := range fa.resources("Microsoft.Web/sites@") {
		if site.body().get("properties.siteConfig.appSettings") != nil {
			t.Fatalf("functionapp.bicep: site %s sets siteConfig.appSettings too: settings come from the appsettings config only", site.name)
		}
	}
	v := fa.find("var", "hostSettings")
	if v == nil || v.value.obj == nil {
		t.Fatal("functionapp.bicep: var hostSettings must be an object literal")
	}
	return v.value.obj.props
}

// TestOTLPSettings: OTEL_EXPORTER_OTLP_ENDPOINT is an app setting only when
// the deployment names an endpoint (otlpEndpoint, from azd's
// OTEL_EXPORTER_OTLP_ENDPOINT, empty by default), the same for every app:
// by default the apps export nothing (internal/telemetry).
func TestOTLPSettings(t *testing.T) {
	tpl := loadTemplates(t)
	fa := tpl.module(t, "functionapp.bicep")
	v := fa.find("var", "otlpSettings")
	const want = "empty(otlpEndpoint) ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint }"
	if v == nil || canonical(v.value) != canonical(&expr{raw: want}) {
		t.Errorf("functionapp.bicep: var otlpSettings must be %s", want)
	}
	for _, f := range []*bicepFile{fa, tpl.main} {
		p := f.find("param", "otlpEndpoint")
		if p == nil || p.typ != "string" || p.value == nil || canonical(p.value) != "''" {
			t.Errorf("%s: param otlpEndpoint must be a string, '' by default", f.path)
		}
	}
	for _, app := range deployedApps {
		m := tpl.main.find("module", app.module)
		if m == nil {
			t.Fatalf("main.bicep: no module %s", app.module)
		}
		if got := canonical(m.body().get("params.otlpEndpoint")); got != "otlpEndpoint" {
			t.Errorf("main.bicep: module %s: otlpEndpoint is %q, want the param otlpEndpoint", app.module, got)
		}
	}
}

func TestAppSettingsMatchTheCode(t *testing.T) {
	tpl := loadTemplates(t)
	host := hostSettings(t, tpl)
	if got := slices.Sorted(maps.Keys(host)); !slices.Equal(got, slices.Sorted(slices.Values(hostOwnedSettings))) {
		t.Errorf("functionapp.bicep: hostSettings are %q, want %q", got, hostOwnedSettings)
	}
	for _, app := range deployedApps {
		t.Run(app.service, func(t *testing.T) {
			own := appSettings(t, tpl, app.service)
			for name := range own {
				if _, dup := host[name]; dup {
					t.Errorf("%s is in both hostSettings and %s", name, app.settingsVar)
				}
			}
			all := map[string]string{}
			for k, e := range host {
				all[k] = canonical(e)
			}
			for k, e := range own {
				all[k] = canonical(e)
			}
			for _, p := range checkSettings(all, app.settings) {
				t.Error(p)
			}
		})
	}
}

// TestAppSettingValues checks the values docs/deploy.md and docs/configuration.md promise.
func TestAppSettingValues(t *testing.T) {
	tpl := loadTemplates(t)
	literal := map[string]string{
		"STORAGE_BACKEND":                   "table",
		"ALLOWED_ORIGINS":                   "",
		"EXTRA_CA_FILE":                     "",
		"DATA_DIR":                          "/tmp",
		"AZURE_API_CLIENT_SECRET":           "",
		"AZURE_API_CLIENT_CERTIFICATE_PATH": "",
		"AZURE_API_CLIENT_SECRET_NAME":      "task-api-client-secret", // via the parameter's default
		"AZURE_API_CLIENT_CERTIFICATE_NAME": "task-api-client-certificate",
		"AUDIT_SWEEP_SCHEDULE":              "0 */1 * * * *",
		// The code's defaults, written out.
		"DOWNSTREAM_TIMEOUT":           goDuration(taskapi.DefaultDownstreamTimeout),
		"AUDIT_RETRY_DELAY":            goDuration(taskapi.DefaultAuditRetryDelay),
		"AUDIT_MAX_ATTEMPTS":           strconv.Itoa(taskapi.DefaultAuditMaxAttempts),
		"OBO_CACHE_SIZE":               strconv.Itoa(downstream.DefaultOBOCacheSize),
		"MAX_TENANT_CLIENTS":           strconv.Itoa(downstream.DefaultMaxTenants),
		"AZURE_API_CREDENTIAL_REFRESH": goDuration(downstream.DefaultSecretRefresh),
	}
	expression := map[string]string{
		"AZURE_HOME_TENANT_ID":         "tenant().tenantId",
		"AZURE_AUTHORITY_HOST":         "endsWith(loginEndpoint, '/') ? substring(loginEndpoint, 0, length(loginEndpoint) - 1) : loginEndpoint",
		"AZURE_API_CLIENT_ID":          "entra.outputs.taskApiAppId",
		"ALLOWED_CALLER_APP_IDS":       "entra.outputs.taskApiAppId",
		"AZURE_NOTIFICATION_CLIENT_ID": "entra.outputs.notificationAppId",
		"AZURE_AUDIT_CLIENT_ID":        "entra.outputs.auditAppId",
		"NOTIFICATION_URL":             "notificationApp.outputs.url",
		"AUDIT_URL":                    "auditApp.outputs.url",
		"NOTIFICATION_SCOPE":           "'${entra.outputs.notificationIdentifierUri}/.default'",
		"AUDIT_SCOPE":                  "'${entra.outputs.auditIdentifierUri}/.default'",
		"AZURE_API_CREDENTIAL":         "taskApiCredential",
		"AZURE_KEYVAULT_URL":           "keyVault.outputs.uri",
		"ALLOWED_TENANT_IDS":           "allowedTenantIds",
		"ALLOW_ANY_TENANT":             "allowAnyTenant ? 'true' : 'false'",
	}
	for _, app := range deployedApps {
		own := appSettings(t, tpl, app.service)
		for name, e := range own {
			if want, ok := literal[name]; ok {
				got, isLit := e.str()
				if p := tpl.main.find("param", e.raw); p != nil && p.value != nil {
					got, isLit = p.value.str() // a parameter: its default
				}
				if !isLit || got != want {
					t.Errorf("%s: %s = %s, want '%s'", app.settingsVar, name, canonical(e), want)
				}
			}
			if want, ok := expression[name]; ok && canonical(e) != want {
				t.Errorf("%s: %s = %s, want %s", app.settingsVar, name, canonical(e), want)
			}
		}
	}
	if v := tpl.main.find("var", "loginEndpoint"); v == nil || canonical(v.value) != "environment().authentication.loginEndpoint" {
		t.Error("main.bicep: var loginEndpoint must be environment().authentication.loginEndpoint (AZURE_AUTHORITY_HOST)")
	}

	// AZURE_CLIENT_ID is the Task API's own user-assigned identity.
	task := appSettings(t, tpl, "task")
	checkIdentityRef(t, tpl, task["AZURE_CLIENT_ID"], "clientId", "task")
	checkIdentityRef(t, tpl, params(tpl.main.find("module", "taskApp"))["identityName"], "name", "task")
	checkIdentityRef(t, tpl, params(tpl.main.find("module", "notificationApp"))["identityName"], "name", "notification")
	checkIdentityRef(t, tpl, params(tpl.main.find("module", "auditApp"))["identityName"], "name", "audit")

	// The credential parameter: managed identity by default, or a secret in Key Vault.
	cred := tpl.main.find("param", "taskApiCredential")
	if cred == nil {
		t.Fatal("main.bicep: no param taskApiCredential")
	}
	if d, _ := cred.value.str(); d != "managed-identity" {
		t.Errorf("param taskApiCredential defaults to %q, want managed-identity", canonical(cred.value))
	}
	if !hasDecorator(cred, "@allowed([ 'managed-identity' 'keyvault-secret' ])") {
		t.Errorf("param taskApiCredential: want @allowed(['managed-identity', 'keyvault-secret']), have %q", cred.decorators)
	}

	// Host settings: identity-based storage and Entra-authenticated telemetry.
	host := hostSettings(t, tpl)
	for name, want := range map[string]string{
		"AzureWebJobsStorage__accountName":          "storage.name",
		"AzureWebJobsStorage__credential":           "'managedidentity'",
		"AzureWebJobsStorage__clientId":             "identity.properties.clientId",
		"APPLICATIONINSIGHTS_CONNECTION_STRING":     "appInsights.properties.ConnectionString",
		"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "'ClientId=${identity.properties.clientId};Authorization=AAD'",
	} {
		if got := canonical(host[name]); got != want {
			t.Errorf("functionapp.bicep: hostSettings.%s = %s, want %s", name, got, want)
		}
	}
}

// goDuration writes d as the settings do: 3s, 30s, 5m, 1h.
func goDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// checkIdentityRef checks that e is identities.outputs.identities[i].member
// where services[i] is service.
func checkIdentityRef(t *testing.T, tpl *templates, e *expr, member, service string) {
	t.Helper()
	m := indexedOutputRE.FindStringSubmatch(canonical(e))
	if m == nil || m[1] != "identities" || m[2] != "identities" || m[4] != member {
		t.Errorf("main.bicep: %s, want identities.outputs.identities[<%s>].%s", canonical(e), service, member)
		return
	}
	i, _ := strconv.Atoi(m[3])
	services := tpl.main.find("var", "services")
	if services == nil {
		t.Fatal("main.bicep: no var services")
	}
	names, _ := services.value.strings()
	if i >= len(names) || names[i] != service {
		t.Errorf("main.bicep: %s is identity %d, which is services[%d] = %q, want %s", canonical(e), i, i, names, service)
	}
}

var decoratorSpace = regexp.MustCompile(`[\s,]+`)

// hasDecorator reports whether d has the decorator, comparing with
// whitespace and commas collapsed.
func hasDecorator(d *decl, want string) bool {
	norm := func(s string) string { return decoratorSpace.ReplaceAllString(s, " ") }
	for _, dec := range d.decorators {
		if norm(dec) == norm(want) {
			return true
		}
	}
	return false
}

// TestCORS: the platform answers CORS for the SPA's origins on the Task
// API only (the browser calls nothing else), from the same list as the
// SPA's redirect URIs.
func TestCORS(t *testing.T) {
	tpl := loadTemplates(t)
	for _, app := range deployedApps {
		got := canonical(params(tpl.main.find("module", app.module))["corsAllowedOrigins"])
		want := ""
		if app.service == "task" {
			want = "spaOrigins"
		}
		if got != want {
			t.Errorf("main.bicep: module %s: corsAllowedOrigins %q, want %q", app.module, got, want)
		}
	}
	if got := canonical(params(tpl.main.find("module", "entra"))["spaRedirectUris"]); got != "spaOrigins" {
		t.Errorf("main.bicep: module entra: spaRedirectUris %q, want spaOrigins", got)
	}
	if v := tpl.main.find("var", "spaOrigins"); v == nil || canonical(v.value) != wantSPAOrigins {
		t.Error("main.bicep: var spaOrigins must be " + wantSPAOrigins)
	}
	dev := tpl.main.find("param", "spaDevOrigins")
	if origins, _ := dev.value.strings(); !slices.Equal(origins, []string{"http://localhost:3000"}) {
		t.Errorf("main.bicep: spaDevOrigins defaults to %q, want [http://localhost:3000]", canonical(dev.value))
	}
	fa := tpl.module(t, "functionapp.bicep")
	for _, site := range fa.resources("Microsoft.Web/sites@") {
		if got := canonical(site.body().get("properties.siteConfig.cors.allowedOrigins")); got != "corsAllowedOrigins" {
			t.Errorf("functionapp.bicep: siteConfig.cors.allowedOrigins = %q, want corsAllowedOrigins", got)
		}
	}
}
