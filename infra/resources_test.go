package infra

// The Flex Consumption plans and apps, the storage account and the Key
// Vault are configured as docs/deploy.md says.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/internal/store/table"
)

func sortedKeys[M ~map[K]V, K cmp.Ordered, V any](m M) []K { return slices.Sorted(maps.Keys(m)) }

// checkProperties reports the paths of body whose canonical text is not
// the one wanted (case-insensitive keys are not accepted: Bicep keys are
// written as the API spells them).
func checkProperties(what string, body *expr, want map[string]string) []string {
	var problems []string
	for _, path := range sortedKeys(want) {
		if got := canonical(body.get(path)); got != want[path] {
			problems = append(problems, fmt.Sprintf("%s: %s = %q, want %q", what, path, got, want[path]))
		}
	}
	return problems
}

func TestCheckPropertiesReports(t *testing.T) {
	p := &parser{src: "{\n  a: {\n    b: 'x'\n  }\n}", file: &bicepFile{path: "t.bicep"}}
	body := p.value()
	if got := checkProperties("t", body, map[string]string{"a.b": "'x'"}); len(got) != 0 {
		t.Errorf("problems %q for a match", got)
	}
	got := checkProperties("t", body, map[string]string{"a.b": "'y'", "a.c": "true"})
	if len(got) != 2 || !strings.Contains(got[0], "a.b") || !strings.Contains(got[1], "a.c") {
		t.Errorf("problems %q, want a.b and a.c", got)
	}
}

func one(t *testing.T, f *bicepFile, typePrefix string) *decl {
	t.Helper()
	var found []*decl
	for _, d := range f.resources(typePrefix) {
		if !d.existing {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want one %s, have %d", f.path, typePrefix, len(found))
	}
	return found[0]
}

func TestFlexConsumption(t *testing.T) {
	tpl := loadTemplates(t)
	fa := tpl.module(t, "functionapp.bicep")
	plan := one(t, fa, "Microsoft.Web/serverfarms@")
	site := one(t, fa, "Microsoft.Web/sites@")
	var problems []string
	problems = append(problems, checkProperties("plan", plan.body(), map[string]string{
		"sku.name":            "'FC1'",
		"sku.tier":            "'FlexConsumption'",
		"kind":                "'functionapp'",
		"properties.reserved": "true",
	})...)
	problems = append(problems, checkProperties("site", site.body(), map[string]string{
		// Its own plan: each module call (one per app) makes one plan and one app.
		"properties.serverFarmId": plan.name + ".id",
		"kind":                    "'functionapp,linux'",
		"properties.httpsOnly":    "true",
		"identity.type":           "'UserAssigned'",
		"tags":                    "union(tags, { 'azd-service-name': serviceName })",
	})...)
	problems = append(problems, checkProperties("functionAppConfig", site.body().get("properties.functionAppConfig"), map[string]string{
		"runtime.name":                           "'custom'",
		"runtime.version":                        "'1.0'",
		"deployment.storage.type":                "'blobContainer'",
		"deployment.storage.value":               "'${storage.properties.primaryEndpoints.blob}${deploymentContainer}'",
		"deployment.storage.authentication.type": "'UserAssignedIdentity'",
		"deployment.storage.authentication.userAssignedIdentityResourceId": "identity.id",
		"scaleAndConcurrency.instanceMemoryMB":                             "instanceMemoryMB",
		"scaleAndConcurrency.maximumInstanceCount":                         "maximumInstanceCount",
		"scaleAndConcurrency.triggers.http.perInstanceConcurrency":         "perInstanceConcurrency",
	})...)
	for _, p := range problems {
		t.Error(p)
	}
	for _, name := range []string{"instanceMemoryMB", "maximumInstanceCount", "perInstanceConcurrency"} {
		if p := fa.find("param", name); p == nil || !slices.ContainsFunc(p.decorators, func(d string) bool { return strings.HasPrefix(d, "@description(") }) {
			t.Errorf("functionapp.bicep: param %s must exist, with a description", name)
		}
		for _, app := range deployedApps {
			if got := canonical(params(tpl.main.find("module", app.module))[name]); got != name {
				t.Errorf("main.bicep: module %s: %s = %q, want the parameter %s", app.module, name, got, name)
			}
		}
	}
	// Flex Consumption's lowest maximumInstanceCount is 40: a lower value
	// fails at deployment, so the parameter refuses it up front.
	if p := tpl.main.find("param", "maximumInstanceCount"); p == nil || !slices.Contains(p.decorators, "@minValue(40)") ||
		p.value == nil || atoi(p.value.raw) < 40 {
		t.Error("main.bicep: param maximumInstanceCount must be @minValue(40) with a default of at least 40")
	}
	// One app per plan, one module call per app, distinct services and containers.
	calls := moduleCalls(tpl.main, "functionapp.bicep")
	if len(calls) != len(deployedApps) {
		t.Errorf("main.bicep: %d Function App modules, want %d", len(calls), len(deployedApps))
	}
	containers := map[string]bool{}
	for _, app := range deployedApps {
		c, _ := params(tpl.main.find("module", app.module))["deploymentContainer"].str()
		if c != "deploy-"+app.service || containers[c] {
			t.Errorf("main.bicep: module %s: deploymentContainer %q, want deploy-%s", app.module, c, app.service)
		}
		containers[c] = true
	}
	if got := canonical(params(tpl.main.find("module", "storage"))["deploymentContainers"]); got != "[for service in services: 'deploy-${service}']" {
		t.Errorf("main.bicep: storage deploymentContainers %q, want one deploy-<service> per service", got)
	}
}

// The Flex Consumption sizing chosen from the benchmark (docs/performance.md,
// Sizing on Flex Consumption): the defaults, in main.bicep and in the module
// alike, and only the values Flex Consumption accepts.
const (
	sizedInstanceMemoryMB       = 512
	sizedPerInstanceConcurrency = 4
	// Flex Consumption's instance sizes, and its HTTP concurrency bounds.
	flexMemoryAllowed      = "@allowed([ 512 2048 4096 ])"
	flexConcurrencyMinimum = "@minValue(1)"
	flexConcurrencyMaximum = "@maxValue(1000)"
)

func TestFlexSizing(t *testing.T) {
	tpl := loadTemplates(t)
	for _, f := range []struct {
		name string
		file *bicepFile
	}{{"main.bicep", tpl.main}, {"functionapp.bicep", tpl.module(t, "functionapp.bicep")}} {
		mem := f.file.find("param", "instanceMemoryMB")
		if mem == nil || !hasDecorator(mem, flexMemoryAllowed) {
			t.Errorf("%s: param instanceMemoryMB must be %s (Flex Consumption's sizes)", f.name, flexMemoryAllowed)
		} else if mem.value == nil || atoi(mem.value.raw) != sizedInstanceMemoryMB {
			t.Errorf("%s: param instanceMemoryMB defaults to %q, want %d", f.name, rawOf(mem.value), sizedInstanceMemoryMB)
		}
		conc := f.file.find("param", "perInstanceConcurrency")
		if conc == nil || !hasDecorator(conc, flexConcurrencyMinimum) || !hasDecorator(conc, flexConcurrencyMaximum) {
			t.Errorf("%s: param perInstanceConcurrency must be %s %s (Flex Consumption's bounds)", f.name, flexConcurrencyMinimum, flexConcurrencyMaximum)
		} else if conc.value == nil || atoi(conc.value.raw) != sizedPerInstanceConcurrency {
			t.Errorf("%s: param perInstanceConcurrency defaults to %q, want %d", f.name, rawOf(conc.value), sizedPerInstanceConcurrency)
		}
	}
}

// rawOf is an expression's source text, or "" when there is none.
func rawOf(e *expr) string {
	if e == nil {
		return ""
	}
	return e.raw
}

func TestStorageAndKeyVault(t *testing.T) {
	tpl := loadTemplates(t)
	st := tpl.module(t, "storage.bicep")
	account := one(t, st, "Microsoft.Storage/storageAccounts@")
	problems := checkProperties("storage account", account.body(), map[string]string{
		"properties.allowSharedKeyAccess":     "false",
		"properties.minimumTlsVersion":        "'TLS1_2'",
		"properties.allowBlobPublicAccess":    "false",
		"properties.supportsHttpsTrafficOnly": "true",
	})
	// The tables the Table backend opens (internal/store/table/table.go).
	var want []string
	for _, suffix := range []string{"tasks", "notifications", "audit"} {
		want = append(want, table.DefaultTablePrefix+suffix)
	}
	tables := st.find("param", "tableNames")
	if got, _ := tables.value.strings(); !slices.Equal(got, want) {
		t.Errorf("storage.bicep: tableNames default %q, want %q", got, want)
	}
	if tbl := one(t, st, "Microsoft.Storage/storageAccounts/tableServices/tables"); tbl.value.forHead != "for table in tableNames" {
		t.Errorf("storage.bicep: tables are %q, want for table in tableNames", tbl.value.forHead)
	}
	if ct := one(t, st, "Microsoft.Storage/storageAccounts/blobServices/containers"); ct.value.forHead != "for container in deploymentContainers" {
		t.Errorf("storage.bicep: containers are %q, want for container in deploymentContainers", ct.value.forHead)
	}

	kvf := tpl.module(t, "keyvault.bicep")
	vault := one(t, kvf, "Microsoft.KeyVault/vaults@")
	problems = append(problems, checkProperties("key vault", vault.body(), map[string]string{
		"properties.enableRbacAuthorization": "true",
		"properties.enablePurgeProtection":   "true",
		"properties.enableSoftDelete":        "true",
		"properties.tenantId":                "tenant().tenantId",
	})...)

	mon := tpl.module(t, "monitoring.bicep")
	ai := one(t, mon, "Microsoft.Insights/components@")
	problems = append(problems, checkProperties("application insights", ai.body(), map[string]string{
		"properties.DisableLocalAuth":    "true",
		"properties.WorkspaceResourceId": "workspace.id",
	})...)
	for _, p := range problems {
		t.Error(p)
	}
}

// TestParameters: every parameter has a description; nothing is @secure
// (there is no secret to pass); the outputs docs/deploy.md lists exist.
func TestParameters(t *testing.T) {
	tpl := loadTemplates(t)
	for _, f := range tpl.files() {
		for _, p := range f.all("param") {
			if !slices.ContainsFunc(p.decorators, func(d string) bool { return strings.HasPrefix(d, "@description(") }) {
				t.Errorf("%s:%d: param %s has no @description", f.path, p.line, p.name)
			}
			if slices.ContainsFunc(p.decorators, func(d string) bool { return strings.HasPrefix(d, "@secure") }) {
				t.Errorf("%s:%d: param %s is @secure: the deployment takes no secret", f.path, p.line, p.name)
			}
		}
	}
	if ts := tpl.main.find("targetScope", ""); ts == nil {
		t.Error("main.bicep: no targetScope")
	} else if s, _ := ts.value.str(); s != "subscription" {
		t.Errorf("main.bicep: targetScope %s, want 'subscription' (azd creates the resource group)", canonical(ts.value))
	}
	for _, name := range []string{
		"TASK_API_URL", "NOTIFICATION_URL", "AUDIT_URL",
		"AZURE_TASK_API_CLIENT_ID", "AZURE_NOTIFICATION_CLIENT_ID", "AZURE_AUDIT_CLIENT_ID", "AZURE_SPA_CLIENT_ID",
		"AZURE_TENANT_ID", "TASK_API_SCOPE", "AZURE_KEYVAULT_URL",
		// The postprovision hook's inputs.
		"TASK_API_CREDENTIAL", "AZURE_KEYVAULT_NAME", "TASK_API_SECRET_NAME",
	} {
		if tpl.main.find("output", name) == nil {
			t.Errorf("main.bicep: no output %s", name)
		}
	}
	for _, app := range deployedApps {
		out := map[string]string{"task": "TASK_API_URL", "notification": "NOTIFICATION_URL", "audit": "AUDIT_URL"}[app.service]
		if got := canonical(tpl.main.find("output", out).value); got != app.module+".outputs.url" {
			t.Errorf("main.bicep: output %s = %s, want %s.outputs.url", out, got, app.module)
		}
	}
	fa := tpl.module(t, "functionapp.bicep")
	if got := canonical(fa.find("output", "url").value); got != "'https://${site.properties.defaultHostName}'" {
		t.Errorf("functionapp.bicep: output url = %s, want 'https://${site.properties.defaultHostName}'", got)
	}
}

func TestBicepConfigAndParameters(t *testing.T) {
	var config struct {
		Extensions map[string]string `json:"extensions"`
	}
	readJSON(t, "bicepconfig.json", &config)
	ref := config.Extensions["microsoftGraphV1"]
	if !strings.HasPrefix(ref, "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:") {
		t.Errorf("bicepconfig.json: extensions.microsoftGraphV1 = %q, want the Microsoft Graph v1.0 extension", ref)
	}

	var parameters struct {
		Schema     string `json:"$schema"`
		Parameters map[string]struct {
			Value json.RawMessage `json:"value"`
		} `json:"parameters"`
	}
	readJSON(t, "main.parameters.json", &parameters)
	tpl := loadTemplates(t)
	values := map[string]string{}
	for name, p := range parameters.Parameters {
		if tpl.main.find("param", name) == nil {
			t.Errorf("main.parameters.json: %s is not a parameter of main.bicep", name)
		}
		values[name] = string(p.Value)
	}
	for name, want := range map[string]string{
		"environmentName":   `"${AZURE_ENV_NAME}"`,
		"location":          `"${AZURE_LOCATION}"`,
		"principalId":       `"${AZURE_PRINCIPAL_ID}"`,
		"taskApiCredential": `"${TASK_API_CREDENTIAL=managed-identity}"`,
	} {
		if values[name] != want {
			t.Errorf("main.parameters.json: %s = %s, want %s", name, values[name], want)
		}
	}
	// Every main.bicep parameter without a default comes from the file.
	for _, p := range tpl.main.all("param") {
		if _, ok := values[p.name]; p.value == nil && !ok {
			t.Errorf("main.bicep: param %s has no default and main.parameters.json does not set it", p.name)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestParser: the reader refuses what it does not know, and reads what the
// templates use.
func TestParser(t *testing.T) {
	f, err := parseBicep("t.bicep", `
// comment
@description('a \'quoted\' ${x} description')
param p string = 'v'
var o = {
  'k-1': [for (x, i) in range(0, 3): {
    v: '${x}'
  }]
  n: union(a, { b: 'c' }) // trailing
  arr: [
    'one'
    'two'
  ]
}
resource r 'A/b@1' existing = if (!empty(p)) {
  name: p
  resource c 'd@1' = {
    name: 'c'
  }
}
output x string = '''
multi
'''
`)
	if err != nil {
		t.Fatal(err)
	}
	o := f.find("var", "o").value
	if got := o.get("k-1").forHead; got != "for (x, i) in range(0, 3)" {
		t.Errorf("for head %q", got)
	}
	if got := canonical(o.get("n")); got != "union(a, { b: 'c' })" {
		t.Errorf("raw %q", got)
	}
	if got, _ := o.get("arr").strings(); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("array %q", got)
	}
	r := f.find("resource", "r")
	if !r.existing || r.condition != "!empty(p)" || len(f.resources("A/b/d@1")) != 1 {
		t.Errorf("resource %+v", r)
	}
	if d := f.find("param", "p").decorators; len(d) != 1 || !strings.Contains(d[0], `\'quoted\'`) {
		t.Errorf("decorators %q", d)
	}
	for _, bad := range []string{"param", "var x = {\n a: 1", "frobnicate x", "var x = 'unterminated\n", "resource r 'a@1' = 'not an object'"} {
		if _, err := parseBicep("bad.bicep", bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// atoi is the integer s, or -1.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
