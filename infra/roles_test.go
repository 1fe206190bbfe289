package infra

// Role assignments use Azure's documented built-in role definitions, and
// nothing else.

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// documentedRoles are the built-in roles the templates may assign, as
// Azure's "Azure built-in roles" reference lists them: id, name, and the
// key of modules/roles.bicep's builtInRoles.
var documentedRoles = map[string]struct{ name, key string }{
	"b7e6dc6d-f1e8-4753-8033-0f276bb0955b": {"Storage Blob Data Owner", "storageBlobDataOwner"},
	"0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": {"Storage Table Data Contributor", "storageTableDataContributor"},
	"974c5e8b-45b9-4653-ba55-5f855dd0fb88": {"Storage Queue Data Contributor", "storageQueueDataContributor"},
	"3913510d-42f4-4e42-8a64-420c390055eb": {"Monitoring Metrics Publisher", "monitoringMetricsPublisher"},
	"4633458b-17de-408a-b874-0445c86b69e6": {"Key Vault Secrets User", "keyVaultSecretsUser"},
	"b86a8fe4-44ce-4948-aee5-eccb2c155cd7": {"Key Vault Secrets Officer", "keyVaultSecretsOfficer"},
}

var guidRE = regexp.MustCompile(`(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// checkRoleIDs reports the entries of roles (builtInRoles: key to id) that
// are not the documented built-in role of that key.
func checkRoleIDs(roles map[string]string) []string {
	var problems []string
	for _, key := range slices.Sorted(maps.Keys(roles)) {
		id := roles[key]
		doc, ok := documentedRoles[strings.ToLower(id)]
		switch {
		case !guidRE.MatchString(id) || len(id) != 36:
			problems = append(problems, fmt.Sprintf("builtInRoles.%s = %q is not a role definition id", key, id))
		case !ok:
			problems = append(problems, fmt.Sprintf("builtInRoles.%s = %s is not one of the documented built-in roles the deployment may assign", key, id))
		case doc.key != key:
			problems = append(problems, fmt.Sprintf("builtInRoles.%s = %s is %s, which should be builtInRoles.%s", key, id, doc.name, doc.key))
		}
	}
	return problems
}

func TestCheckRoleIDsReports(t *testing.T) {
	for _, tc := range []struct {
		name  string
		roles map[string]string
		want  string
	}{
		{"documented", map[string]string{"keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6"}, ""},
		{"unknown id", map[string]string{"owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"}, "not one of the documented"},
		{"wrong name", map[string]string{"keyVaultSecretsOfficer": "4633458b-17de-408a-b874-0445c86b69e6"}, "is Key Vault Secrets User"},
		{"not a guid", map[string]string{"reader": "Reader"}, "not a role definition id"},
	} {
		got := checkRoleIDs(tc.roles)
		if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
			t.Errorf("%s: problems %q, want %q", tc.name, got, tc.want)
		}
	}
}

var roleDefinitionRE = regexp.MustCompile(`^subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions', builtInRoles\.([A-Za-z]+)\)$`)

func TestRoleAssignments(t *testing.T) {
	tpl := loadTemplates(t)
	rolesFile := tpl.module(t, "roles.bicep")
	v := rolesFile.find("var", "builtInRoles")
	if v == nil || v.value.obj == nil || !hasDecorator(v, "@export()") {
		t.Fatal("modules/roles.bicep: want an @export() var builtInRoles = { ... }")
	}
	roles := map[string]string{}
	for k, e := range v.value.obj.props {
		id, ok := e.str()
		if !ok {
			t.Errorf("builtInRoles.%s must be a string literal", k)
		}
		roles[k] = id
	}
	for _, p := range checkRoleIDs(roles) {
		t.Error(p)
	}

	// Every role assignment names its role through builtInRoles, a guid()
	// name, and (for managed identities) principalType ServicePrincipal.
	assigned := map[string]int{}
	for _, f := range tpl.files() {
		ras := f.resources("Microsoft.Authorization/roleAssignments@")
		if len(ras) > 0 && !slices.Contains(f.imports, "import { builtInRoles } from 'roles.bicep'") {
			t.Errorf("%s: assigns roles without import { builtInRoles } from 'roles.bicep'", f.path)
		}
		for _, ra := range ras {
			b := ra.body()
			m := roleDefinitionRE.FindStringSubmatch(canonical(b.get("properties.roleDefinitionId")))
			if m == nil || roles[m[1]] == "" {
				t.Errorf("%s:%d: %s: roleDefinitionId %s, want subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.<role>)",
					f.path, ra.line, ra.name, canonical(b.get("properties.roleDefinitionId")))
				continue
			}
			assigned[m[1]]++
			if name := canonical(b.get("name")); !strings.HasPrefix(name, "guid(") || !strings.Contains(name, "builtInRoles."+m[1]) {
				t.Errorf("%s:%d: %s: name %s, want guid(<scope>, <principal>, builtInRoles.%s)", f.path, ra.line, ra.name, name, m[1])
			}
			pt := b.get("properties.principalType")
			switch principal := canonical(b.get("properties.principalId")); {
			case principal == "identity.properties.principalId":
				if s, _ := pt.str(); s != "ServicePrincipal" {
					t.Errorf("%s:%d: %s: a managed identity's assignment needs principalType 'ServicePrincipal'", f.path, ra.line, ra.name)
				}
			case principal == "secretsOfficerPrincipalId" && m[1] == "keyVaultSecretsOfficer":
				// The deployer: a user or a service principal, so no principalType.
				if pt != nil {
					t.Errorf("%s:%d: %s: the deployer may be a user or a service principal: no principalType", f.path, ra.line, ra.name)
				}
			default:
				t.Errorf("%s:%d: %s: unexpected principal %s", f.path, ra.line, ra.name, principal)
			}
		}
	}
	for key := range roles {
		if assigned[key] == 0 {
			t.Errorf("builtInRoles.%s is never assigned", key)
		}
	}

	// No other GUID anywhere in the templates: role ids only in roles.bicep
	// (scope and app role ids are guid() of fixed strings).
	for _, f := range tpl.files() {
		src, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range guidRE.FindAllString(string(src), -1) {
			if f != rolesFile {
				t.Errorf("%s: GUID %s outside modules/roles.bicep", f.path, id)
			} else if _, ok := documentedRoles[strings.ToLower(id)]; !ok {
				t.Errorf("%s: GUID %s is not a documented built-in role", f.path, id)
			}
		}
	}

	// Key Vault Secrets User for the Task API's identity only, and only
	// when it reads its secret from the vault.
	for _, app := range deployedApps {
		got := canonical(params(tpl.main.find("module", app.module))["keyVaultName"])
		want := ""
		if app.service == "task" {
			want = "taskApiCredential == 'keyvault-secret' ? keyVault.outputs.name : ''"
		}
		if got != want {
			t.Errorf("main.bicep: module %s: keyVaultName %q, want %q", app.module, got, want)
		}
	}
	if got := canonical(params(tpl.main.find("module", "keyVault"))["secretsOfficerPrincipalId"]); got != "taskApiCredential == 'keyvault-secret' ? principalId : ''" {
		t.Errorf("main.bicep: the deployer is Key Vault Secrets Officer for keyvault-secret only; secretsOfficerPrincipalId is %q", got)
	}
}
