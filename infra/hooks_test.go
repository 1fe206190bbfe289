package infra

// The hooks' logic, run against stand-ins for az, azd and bicep on PATH.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hookRun is one run of a hook script with stand-in tools.
type hookRun struct {
	t    *testing.T
	bash string
	dir  string // the stand-ins' state: calls, files they read
	bin  string // the stand-ins
	// cwd, when set, is the working directory of a run, which names the
	// script by its path relative to it (as azd does, from the project's
	// root); unset, runs name it by its absolute path.
	cwd string
}

func newHookRun(t *testing.T) *hookRun {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return &hookRun{t: t, bash: bash, dir: dir, bin: bin}
}

// tool installs a stand-in: a bash script (its body after the shebang)
// that sees STUB_DIR.
func (h *hookRun) tool(name, body string) {
	h.t.Helper()
	src := "#!" + h.bash + "\nprintf '%s\\n' \"$*\" >>\"$STUB_DIR/" + name + ".calls\"\n" + body
	if err := os.WriteFile(filepath.Join(h.bin, name), []byte(src), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

// file writes a file of the stand-ins' state.
func (h *hookRun) file(name, content string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *hookRun) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(h.dir, name))
	return string(b)
}

// run runs infra/hooks/<script> with PATH = the stand-ins, then path
// (empty: the stand-ins alone), and env; it returns the output and exit code.
func (h *hookRun) run(script, path string, env ...string) (string, int) {
	h.t.Helper()
	abs, err := filepath.Abs(filepath.Join("hooks", script))
	if err != nil {
		h.t.Fatal(err)
	}
	p := h.bin
	if path != "" {
		p += string(os.PathListSeparator) + path
	}
	cmd := exec.Command(h.bash, abs)
	if h.cwd != "" {
		rel, err := filepath.Rel(h.cwd, abs)
		if err != nil {
			h.t.Fatal(err)
		}
		cmd = exec.Command(h.bash, rel)
		cmd.Dir = h.cwd
	}
	cmd.Env = append([]string{"PATH=" + p, "STUB_DIR=" + h.dir, "HOME=" + h.dir}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	case err != nil:
		h.t.Fatalf("%s: %v", script, err)
	}
	return out.String(), 0
}

const (
	taskSP    = "11111111-1111-4111-8111-111111111111"
	auditSP   = "22222222-2222-4222-8222-222222222222"
	writeRole = "33333333-3333-4333-8333-333333333333"
)

// graphStub is az answering `az rest` as Graph would: GET prints the
// number of matching assignments ($STUB_DIR/assigned), failing while
// $STUB_DIR/get_failures counts down; POST records its body and creates the
// assignment, or fails when $STUB_DIR/post_fails exists (creating it anyway
// when that file says "exists": a duplicate a replicated read missed).
const graphStub = `
case "$*" in
"rest --method get"*)
	n="$(cat "$STUB_DIR/get_failures" 2>/dev/null || echo 0)"
	if [ "$n" -gt 0 ]; then echo $((n - 1)) >"$STUB_DIR/get_failures"; echo "ERROR: Not Found" >&2; exit 1; fi
	cat "$STUB_DIR/assigned" 2>/dev/null || echo 0 ;;
"rest --method post"*)
	while [ $# -gt 0 ]; do if [ "$1" = --body ]; then printf '%s\n' "$2" >>"$STUB_DIR/posted"; fi; shift; done
	if [ -f "$STUB_DIR/post_fails" ]; then
		if grep -q exists "$STUB_DIR/post_fails"; then echo 1 >"$STUB_DIR/assigned"; fi
		echo "ERROR: Bad Request" >&2; exit 1
	fi
	echo 1 >"$STUB_DIR/assigned" ;;
*) echo "unexpected az $*" >&2; exit 2 ;;
esac
`

var assignmentEnv = []string{"AZURE_TASK_API_SP_ID=" + taskSP, "AZURE_AUDIT_SP_ID=" + auditSP,
	"AUDIT_WRITE_ROLE_ID=" + writeRole, "POSTPROVISION_RETRY_SECONDS=0"}

// TestAppRoleAssignmentHook: the assignment is made once, found on every
// later run, survives Graph's replication delays, and fails loudly.
func TestAppRoleAssignmentHook(t *testing.T) {
	wantBody := `{"principalId":"` + taskSP + `","resourceId":"` + auditSP + `","appRoleId":"` + writeRole + `"}` + "\n"
	for _, tc := range []struct {
		name              string
		assigned          string // what Graph holds before
		getFailures       string
		postFails         string
		env               []string
		wantCode          int
		wantPosts         int
		wantOut           string
		wantNoAzCall      bool
		wantFilterOnGraph bool
	}{
		{name: "first run assigns", wantPosts: 1, wantOut: "granted", wantFilterOnGraph: true},
		{name: "re-provisioning keeps it", assigned: "1", wantOut: "kept"},
		{name: "replication: reads fail first", getFailures: "2", wantPosts: 1, wantOut: "granted"},
		{name: "replication: a duplicate refused, then found", postFails: "exists", wantPosts: 1, wantOut: "kept"},
		{name: "Graph refuses", postFails: "always", wantCode: 1, wantPosts: 6, wantOut: "azd hooks run postprovision"},
		{name: "an id that is not a GUID", env: []string{"AZURE_AUDIT_SP_ID=x') || true"}, wantCode: 1, wantOut: "not a GUID", wantNoAzCall: true},
		{name: "outputs missing", env: []string{"AZURE_TASK_API_SP_ID="}, wantCode: 1, wantOut: "run azd provision first", wantNoAzCall: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookRun(t)
			h.tool("az", graphStub)
			if tc.assigned != "" {
				h.file("assigned", tc.assigned)
			}
			if tc.getFailures != "" {
				h.file("get_failures", tc.getFailures)
			}
			if tc.postFails != "" {
				h.file("post_fails", tc.postFails)
			}
			out, code := h.run("app-role-assignment.sh", os.Getenv("PATH"), append(append([]string{}, assignmentEnv...), tc.env...)...)
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("exit %d, want %d, and output containing %q:\n%s", code, tc.wantCode, tc.wantOut, out)
			}
			posted := h.read("posted")
			if got := strings.Count(posted, "\n"); got != tc.wantPosts {
				t.Errorf("%d assignments posted, want %d:\n%s", got, tc.wantPosts, posted)
			}
			if tc.wantPosts > 0 && !strings.HasPrefix(posted, wantBody) {
				t.Errorf("posted %q, want %q", posted, wantBody)
			}
			calls := h.read("az.calls")
			if tc.wantNoAzCall && calls != "" {
				t.Errorf("az called before the inputs were checked:\n%s", calls)
			}
			if tc.wantFilterOnGraph && !strings.Contains(calls, "servicePrincipals/"+taskSP+"/appRoleAssignments?$filter=resourceId%20eq%20"+auditSP) {
				t.Errorf("the existence check does not read the Task API's assignments on the Audit Service:\n%s", calls)
			}
			if tc.wantPosts > 0 && !strings.Contains(calls, "rest --method post --url https://graph.microsoft.com/v1.0/servicePrincipals/"+auditSP+"/appRoleAssignedTo") {
				t.Errorf("the assignment is not posted to the Audit Service's appRoleAssignedTo:\n%s", calls)
			}
		})
	}
}

// TestHooksSourceTheirLibrary: the steps that source lib/approles.sh find
// it next to themselves from any working directory: the project's root
// (azd), their own folder, or elsewhere.
func TestHooksSourceTheirLibrary(t *testing.T) {
	hooks, err := filepath.Abs("hooks")
	if err != nil {
		t.Fatal(err)
	}
	for _, cwd := range []string{filepath.Dir(filepath.Dir(hooks)), hooks, t.TempDir()} {
		h := newHookRun(t)
		h.cwd = cwd
		h.tool("az", operatorGraphStub)
		env := append(append(append([]string{}, assignmentEnv...), operatorEnv...), "TASK_API_OPERATORS="+opUser1)
		if out, code := h.run("app-role-assignment.sh", os.Getenv("PATH"), env...); code != 0 || !strings.Contains(out, "granted the Task API AuditLog.Write") {
			t.Errorf("app-role-assignment.sh from %s: exit %d:\n%s", cwd, code, out)
		}
		if out, code := h.run("operator-roles.sh", os.Getenv("PATH"), env...); code != 0 || !strings.Contains(out, "users/"+opUser1+": granted") {
			t.Errorf("operator-roles.sh from %s: exit %d:\n%s", cwd, code, out)
		}
		if posted, want := h.read("posted"), `{"principalId":"`+taskSP+`","resourceId":"`+auditSP+`","appRoleId":"`+writeRole+`"}`+"\n"+operatorBody(opUser1)+"\n"; posted != want {
			t.Errorf("from %s: posted\n%s\nwant\n%s", cwd, posted, want)
		}
	}
}

// TestPostprovisionRunsBothSteps: postprovision.sh grants the app role,
// then manages the client secret (nothing to do with the managed
// identity), and stops at the first step that fails.
func TestPostprovisionRunsBothSteps(t *testing.T) {
	h := newHookRun(t)
	h.tool("az", graphStub)
	out, code := h.run("postprovision.sh", os.Getenv("PATH"), append(assignmentEnv, "TASK_API_CREDENTIAL=managed-identity")...)
	if code != 0 || !strings.Contains(out, "granted the Task API AuditLog.Write") || !strings.Contains(out, "managed-identity: no client secret to manage") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if calls := h.read("az.calls"); strings.Contains(calls, "keyvault") || strings.Contains(calls, "credential") {
		t.Errorf("with the managed identity the hook touched a secret:\n%s", calls)
	}

	h = newHookRun(t)
	h.tool("az", graphStub)
	h.file("post_fails", "always")
	out, code = h.run("postprovision.sh", os.Getenv("PATH"), append(assignmentEnv, "TASK_API_CREDENTIAL=managed-identity")...)
	if code == 0 || strings.Contains(out, "no client secret to manage") {
		t.Fatalf("a failed assignment went on to the next step (exit %d):\n%s", code, out)
	}
}

// The preflight's stand-ins, bash builtins only (PATH holds nothing else),
// answering from the environment the test gives them.
const (
	azdStub = `
case "$*" in
version) printf 'azd version %s (commit 0123abc)\n' "$STUB_AZD_VERSION" ;;
"config get alpha.language.custom" | "config get alpha.all")
	key="${3#alpha.}"
	if [ "$key" = "$STUB_AZD_ALPHA" ]; then printf '"on"\n'; else echo "ERROR: no value at path" >&2; exit 1; fi ;;
"auth login --check-status --output json")
	if [ -n "$STUB_AZD_SIGNED_IN" ]; then printf '{\n  "status": "success"\n}\n'; else printf '{\n  "status": "unauthenticated"\n}\n'; fi ;;
"env get-value AZURE_LOCATION")
	if [ -n "$STUB_ENV_LOCATION" ]; then printf '%s\n' "$STUB_ENV_LOCATION"; else echo "ERROR: no environment" >&2; exit 1; fi ;;
*) echo "unexpected azd $*" >&2; exit 2 ;;
esac
`
	azStub = `
case "$*" in
"version --query \"azure-cli\" --output tsv") printf '%s\n' "$STUB_AZ_VERSION" ;;
"account show"*)
	if [ -z "$STUB_AZ_SIGNED_IN" ]; then echo "ERROR: Please run 'az login'" >&2; exit 1; fi
	printf 'alice@contoso.com\nContoso Dev\n00000000-0000-4000-8000-0000000000aa\n' ;;
"functionapp list-flexconsumption-locations"*) printf 'eastus\nnortheurope\nswedencentral\n' ;;
*) echo "unexpected az $*" >&2; exit 2 ;;
esac
`
	bicepStub = `
case "$*" in
--version) printf 'Bicep CLI version %s (0123abcdef)\n' "$STUB_BICEP_VERSION" ;;
*) echo "unexpected bicep $*" >&2; exit 2 ;;
esac
`
)

// TestPreflight: every check, failing alone, gives one line with its fix;
// everything in order passes.
func TestPreflight(t *testing.T) {
	good := map[string]string{
		"STUB_AZD_VERSION": "1.20.0", "STUB_AZ_VERSION": "2.60.0", "STUB_BICEP_VERSION": "0.36.1",
		"STUB_AZD_ALPHA": "language.custom", "STUB_AZD_SIGNED_IN": "1", "STUB_AZ_SIGNED_IN": "1",
		"AZURE_LOCATION": "swedencentral",
	}
	for _, tc := range []struct {
		name    string
		change  map[string]string
		missing []string // stand-ins not installed
		want    string   // the failure's line; "" for success
		wantOK  string   // a line of a success
	}{
		{name: "all in order", wantOK: "preflight: ok: region swedencentral offers Flex Consumption"},
		{name: "newer versions", change: map[string]string{"STUB_AZD_VERSION": "1.31.2", "STUB_AZ_VERSION": "2.79.10", "STUB_BICEP_VERSION": "0.40.2"}, wantOK: "ok: azd 1.31.2"},
		{name: "no azd", missing: []string{"azd"}, want: "missing azd 1.20.0 or later (https://aka.ms/azd-install): install"},
		{name: "no az", missing: []string{"az"}, want: "missing the Azure CLI az 2.60.0 or later"},
		{name: "old azd", change: map[string]string{"STUB_AZD_VERSION": "1.19.3"}, want: "azd 1.19.3 is older than 1.20.0 (language: custom): upgrade azd"},
		{name: "old az", change: map[string]string{"STUB_AZ_VERSION": "2.59.0"}, want: "az 2.59.0 is older than 2.60.0 (az functionapp list-flexconsumption-locations): run az upgrade"},
		{name: "old Bicep", change: map[string]string{"STUB_BICEP_VERSION": "0.35.99"}, want: "Bicep 0.35.99 at AZD_BICEP_TOOL_PATH=bicep is older than 0.36.1"},
		{name: "Bicep path wrong", change: map[string]string{"AZD_BICEP_TOOL_PATH": "/nowhere/bicep"}, want: "AZD_BICEP_TOOL_PATH=/nowhere/bicep is not a program"},
		{name: "azd's own Bicep", change: map[string]string{"AZD_BICEP_TOOL_PATH": ""}, wantOK: "ok: Bicep: azd's own"},
		{name: "alpha off", change: map[string]string{"STUB_AZD_ALPHA": ""}, want: "language.custom is off, and azure.yaml's services use language: custom: run: azd config set alpha.language.custom on"},
		{name: "alpha.all on", change: map[string]string{"STUB_AZD_ALPHA": "all"}, wantOK: "ok: azd alpha feature language.custom (alpha.all on)"},
		{name: "alpha by environment", change: map[string]string{"STUB_AZD_ALPHA": "", "AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM": "true"}, wantOK: "(AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=true)"},
		{name: "alpha environment on is ignored", change: map[string]string{"STUB_AZD_ALPHA": "", "AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM": "on"}, want: "AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=on is ignored by azd (it takes true or false)"},
		{name: "alpha environment false wins", change: map[string]string{"AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM": "false"}, want: "AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=false turns off language: custom"},
		{name: "az signed out", change: map[string]string{"STUB_AZ_SIGNED_IN": ""}, want: "the Azure CLI is not signed in (the hooks use it): run az login"},
		{name: "az without the subscription", change: map[string]string{"STUB_AZ_SIGNED_IN": "", "AZURE_SUBSCRIPTION_ID": "sub-1"}, want: "cannot use subscription sub-1 (AZURE_SUBSCRIPTION_ID): run az login, then az account set --subscription sub-1"},
		{name: "azd signed out", change: map[string]string{"STUB_AZD_SIGNED_IN": ""}, want: "azd is not signed in: run azd auth login"},
		{name: "region without Flex", change: map[string]string{"AZURE_LOCATION": "West Central US"}, want: "region West Central US (AZURE_LOCATION) does not offer Flex Consumption: choose one of eastus, northeurope, swedencentral"},
		{name: "region display name", change: map[string]string{"AZURE_LOCATION": "North Europe"}, wantOK: "ok: region northeurope offers Flex Consumption"},
		{name: "region from the azd environment", change: map[string]string{"AZURE_LOCATION": "", "STUB_ENV_LOCATION": "eastus"}, wantOK: "ok: region eastus offers"},
		{name: "no region yet", change: map[string]string{"AZURE_LOCATION": ""}, wantOK: "ok: region: none chosen yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookRun(t)
			for name, body := range map[string]string{"azd": azdStub, "az": azStub, "bicep": bicepStub} {
				if !slices.Contains(tc.missing, name) {
					h.tool(name, body)
				}
			}
			env := []string{"AZD_BICEP_TOOL_PATH=bicep"}
			for k, v := range good {
				if c, ok := tc.change[k]; ok {
					v = c
				}
				env = append(env, k+"="+v)
			}
			for k, v := range tc.change {
				if _, ok := good[k]; !ok {
					env = append(env, k+"="+v)
				}
			}
			out, code := h.run("preflight.sh", "", env...)
			var fails []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(line, "preflight: ok: ") {
					fails = append(fails, line)
				}
			}
			if tc.want == "" {
				if code != 0 || len(fails) != 0 || !strings.Contains(out, tc.wantOK) {
					t.Fatalf("exit %d, want 0 and %q:\n%s", code, tc.wantOK, out)
				}
				return
			}
			if code != 1 || len(fails) != 1 || !strings.HasPrefix(fails[0], "preflight: FAIL: ") || !strings.Contains(fails[0], tc.want) {
				t.Fatalf("exit %d, want 1 and one line with %q:\n%s", code, tc.want, out)
			}
			if tc.missing != nil && strings.Count(out, "\n") != 1 {
				t.Errorf("a missing tool: want one line, got:\n%s", out)
			}
		})
	}
}
