package infra

// azure.yaml and the postprovision hook.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// parseYAML reads the YAML azure.yaml uses: nested mappings of plain or
// quoted scalars, block sequences whose items are one-key mappings of a
// scalar (workflows: up: - azd: provision), comments and blank lines.
// Anything else (other lists, block scalars, flow collections, anchors) is
// refused.
func parseYAML(src string) (map[string]any, error) {
	p := &yamlParser{root: map[string]any{}}
	p.stack = []yamlLevel{{-1, p.root}}
	for i, line := range strings.Split(src, "\n") {
		if err := p.line(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	if p.pendingKey != "" {
		return nil, fmt.Errorf("%s has no value", p.pendingKey)
	}
	return p.root, nil
}

type yamlLevel struct {
	indent int
	m      map[string]any
}

type yamlParser struct {
	root          map[string]any
	stack         []yamlLevel
	pendingKey    string // a key whose value is on the lines below
	pendingIndent int
	seqIndent     int // the indentation of the sequence being read, or -1
	seqKey        string
}

func (p *yamlParser) top() map[string]any { return p.stack[len(p.stack)-1].m }

func (p *yamlParser) line(line string) error {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return nil
	}
	indent := len(line) - len(strings.TrimLeft(line, " "))
	if strings.Contains(line[:indent], "\t") {
		return fmt.Errorf("tab indentation")
	}
	if strings.HasPrefix(trimmed, "- ") || trimmed == "-" {
		return p.seqItem(indent, trimmed)
	}
	if p.seqKey != "" {
		if indent > p.seqIndent {
			return fmt.Errorf("only one-key mappings of a scalar are supported as sequence items")
		}
		p.seqKey = ""
	}
	if p.pendingKey != "" {
		if indent <= p.pendingIndent {
			return fmt.Errorf("%s has no value", p.pendingKey)
		}
		child := map[string]any{}
		p.top()[p.pendingKey] = child
		p.stack = append(p.stack, yamlLevel{indent, child})
		p.pendingKey = ""
	}
	for indent < p.stack[len(p.stack)-1].indent {
		p.stack = p.stack[:len(p.stack)-1]
	}
	if indent != p.stack[len(p.stack)-1].indent && len(p.stack) > 1 {
		return fmt.Errorf("inconsistent indentation")
	}
	key, value, err := yamlPair(trimmed)
	if err != nil {
		return err
	}
	if _, dup := p.top()[key]; dup {
		return fmt.Errorf("duplicate key %s", key)
	}
	if len(p.stack) == 1 {
		p.stack[0].indent = indent
	}
	if value == "" {
		p.pendingKey, p.pendingIndent = key, indent
		return nil
	}
	p.top()[key] = value
	return nil
}

// seqItem reads "- key: value", the first item of the pending key's
// sequence or the next one.
func (p *yamlParser) seqItem(indent int, trimmed string) error {
	switch {
	case p.pendingKey != "" && indent > p.pendingIndent:
		p.seqKey, p.seqIndent = p.pendingKey, indent
		p.top()[p.seqKey] = []any{}
		p.pendingKey = ""
	case p.seqKey == "" || indent != p.seqIndent:
		return fmt.Errorf("a sequence item outside a sequence")
	}
	key, value, err := yamlPair(strings.TrimSpace(strings.TrimPrefix(trimmed, "-")))
	if err != nil || value == "" {
		return fmt.Errorf("only one-key mappings of a scalar are supported as sequence items")
	}
	p.top()[p.seqKey] = append(p.top()[p.seqKey].([]any), map[string]any{key: value})
	return nil
}

// yamlPair splits "key: value" (value "" when it is on the lines below),
// unquoting the value and dropping a trailing comment.
func yamlPair(trimmed string) (key, value string, err error) {
	key, value, ok := strings.Cut(trimmed, ":")
	if !ok || key == "" {
		return "", "", fmt.Errorf("want key: value")
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if j := strings.Index(value, " #"); j >= 0 {
		value = strings.TrimSpace(value[:j])
	}
	if value != "" && strings.ContainsAny(value[:1], "[{&*|>") {
		return "", "", fmt.Errorf("only plain scalars are supported")
	}
	if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
		value = value[1 : len(value)-1]
	}
	return key, value, nil
}

// lookup follows a path of keys.
func lookup(doc map[string]any, path ...string) any {
	var cur any = doc
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// checkAzureYAML reports how an azure.yaml differs from what the project
// needs: the three apps as custom-language functions deployed from the zip
// `make package` builds, the postprovision hook, and the web service
// (checkWebService).
func checkAzureYAML(doc map[string]any) []string {
	var problems []string
	want := func(path, value string) {
		keys := strings.Split(path, ".")
		if got, _ := lookup(doc, keys...).(string); got != value {
			problems = append(problems, fmt.Sprintf("%s = %q, want %q", path, got, value))
		}
	}
	want("infra.provider", "bicep")
	want("infra.path", "infra")
	want("infra.module", "main")
	want("hooks.postprovision.run", "./infra/hooks/postprovision.sh")
	want("hooks.postprovision.shell", "sh")
	want("hooks.preprovision.run", "./infra/hooks/preflight.sh")
	want("hooks.preprovision.shell", "sh")
	// Provision before packaging: the SPA's build reads the outputs.
	steps, _ := lookup(doc, "workflows", "up", "steps").([]any)
	wantSteps := []string{"provision", "package --all", "deploy --all"}
	var got []string
	for _, s := range steps {
		cmd, _ := s.(map[string]any)["azd"].(string)
		got = append(got, cmd)
	}
	if !slices.Equal(got, wantSteps) {
		problems = append(problems, fmt.Sprintf("workflows.up.steps = azd %q, want azd %q", got, wantSteps))
	}
	// The Function Apps, and the SPA (checkWebService).
	services, _ := lookup(doc, "services").(map[string]any)
	if len(services) != len(deployedApps)+1 {
		problems = append(problems, fmt.Sprintf("%d services, want %d", len(services), len(deployedApps)+1))
	}
	for _, app := range deployedApps {
		s := "services." + app.service
		if lookup(doc, "services", app.service) == nil {
			problems = append(problems, s+" is missing")
			continue
		}
		want(s+".host", "function")
		want(s+".language", "custom")
		want(s+".project", ".")
		want(s+".dist", "dist/"+app.service+".zip")
		want(s+".hooks.prepackage.run", "make package APPS="+app.service)
	}
	return append(problems, checkWebService(doc)...)
}

func TestAzureYAML(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "azure.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAML(string(b))
	if err != nil {
		t.Fatalf("azure.yaml: %v", err)
	}
	for _, p := range checkAzureYAML(doc) {
		t.Error("azure.yaml: " + p)
	}
	// make package APPS=<app> writes dist/<app>.zip: the Makefile's package
	// target passes APPS to cmd/funcpack -out dist.
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^package:\n\t\$\(GO\) run \./cmd/funcpack -out dist \$\(APPS\)$`).Match(mk) {
		t.Error("Makefile: package no longer runs cmd/funcpack -out dist $(APPS): azure.yaml's dist paths rely on it")
	}
	// make deploy-check is the preprovision hook's script.
	if !regexp.MustCompile(`(?m)^deploy-check:\n\t@bash infra/hooks/preflight\.sh$`).Match(mk) {
		t.Error("Makefile: deploy-check does not run infra/hooks/preflight.sh, azure.yaml's preprovision hook")
	}
	// The hook files exist and azd (or postprovision.sh) can run them.
	for _, hook := range hookScripts {
		fi, err := os.Stat(filepath.Join("hooks", hook))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&0o111 == 0 {
			t.Errorf("hooks/%s is not executable", hook)
		}
	}
}

// hookScripts are infra/hooks: azure.yaml's hooks and the steps
// postprovision.sh runs.
var hookScripts = []string{"preflight.sh", "postprovision.sh", "app-role-assignment.sh", "operator-roles.sh", "client-secret.sh"}

// hookLibraries are what hook scripts source from infra/hooks/lib: the
// Graph calls app-role-assignment.sh and operator-roles.sh share.
var hookLibraries = []string{"lib/approles.sh"}

func TestCheckAzureYAMLReports(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "azure.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, tc := range []struct{ name, from, to, want string }{
		{"no prepackage hook", "run: make package APPS=audit", "run: echo", "services.audit.hooks.prepackage.run"},
		{"wrong host", "    host: function\n    dist: dist/task.zip", "    host: appservice\n    dist: dist/task.zip", "services.task.host"},
		{"a service missing", "  notification:\n", "  notify:\n", "services.notification is missing"},
		{"no postprovision", "run: ./infra/hooks/postprovision.sh", "run: true", "hooks.postprovision.run"},
		{"no preprovision", "run: ./infra/hooks/preflight.sh", "run: true", "hooks.preprovision.run"},
		{"package before provision", "      - azd: provision\n      - azd: package --all\n", "      - azd: package --all\n      - azd: provision\n", "workflows.up.steps"},
		{"no workflow", "workflows:\n  up:\n", "workflowz:\n  up:\n", "workflows.up.steps"},
		{"web: wrong host", "host: staticwebapp", "host: appservice", "services.web.host"},
		{"web: no build", "run: npm ci --no-audit --no-fund && npm run build", "run: true", "services.web.hooks.prepackage.run"},
		{"web: missing", "  web:\n", "  site:\n", "services.web is missing"},
	} {
		mutated := strings.Replace(src, tc.from, tc.to, 1)
		if mutated == src {
			t.Fatalf("%s: %q is not in azure.yaml", tc.name, tc.from)
		}
		doc, err := parseYAML(mutated)
		if err != nil {
			t.Fatal(err)
		}
		problems := checkAzureYAML(doc)
		if len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), tc.want) {
			t.Errorf("%s: problems %q, want one about %s", tc.name, problems, tc.want)
		}
	}
	for _, bad := range []string{"a:\n  - b\n", "a: [b]\n", "a:\n", "a: 1\na: 2\n"} {
		if _, err := parseYAML(bad); err == nil {
			t.Errorf("parseYAML(%q) accepted it", bad)
		}
	}
}

// printing matches a command that writes to the output, and varRef a
// variable it expands.
var (
	printing = regexp.MustCompile(`^(echo|printf|cat)\b`)
	varRef   = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	// secretVar is a variable that holds a secret: its name ends in one of
	// these words (secret_name or secret_file name one, and are not).
	secretVar = regexp.MustCompile(`(?i)(^|_)(secret|password|passwd|pwd|token)$`)
)

// checkHookScript reports what in a hook script could leak or misbehave.
func checkHookScript(src string) []string {
	var problems []string
	lines := strings.Split(src, "\n")
	if lines[0] != "#!/usr/bin/env bash" {
		problems = append(problems, "the first line must be #!/usr/bin/env bash")
	}
	if !regexp.MustCompile(`(?m)^set -euo pipefail$`).MatchString(src) {
		problems = append(problems, "no set -euo pipefail")
	}
	return append(problems, checkHookCommands(src)...)
}

// checkHookLibrary reports the same of a file hook scripts source: it is
// no program (the scripts that source it set the shell's options), so it
// names its shell for shellcheck instead of a shebang.
func checkHookLibrary(src string) []string {
	var problems []string
	if strings.Split(src, "\n")[0] != "# shellcheck shell=bash" {
		problems = append(problems, "the first line must be # shellcheck shell=bash")
	}
	return append(problems, checkHookCommands(src)...)
}

// checkHookCommands reports the commands of a hook script or library that
// could leak or misbehave.
func checkHookCommands(src string) []string {
	var problems []string
	// Join continuation lines, so each command is one line.
	joined := strings.ReplaceAll(src, "\\\n", " ")
	for i, line := range strings.Split(joined, "\n") {
		code := strings.TrimSpace(line)
		if strings.HasPrefix(code, "#") {
			continue
		}
		isPrint := printing.MatchString(code)
		switch {
		case regexp.MustCompile(`\bset\s+-[a-z]*x`).MatchString(code) || strings.Contains(code, "set -o xtrace") || strings.Contains(code, "bash -x"):
			problems = append(problems, fmt.Sprintf("command %d turns on tracing: %s", i+1, code))
		case isPrint && slices.ContainsFunc(varRef.FindAllStringSubmatch(code, -1), func(m []string) bool { return secretVar.MatchString(m[1]) }):
			problems = append(problems, fmt.Sprintf("command %d prints a secret: %s", i+1, code))
		case isPrint:
		case strings.Contains(code, "az keyvault secret set") && (strings.Contains(code, "--value") || !strings.Contains(code, "--output none")):
			problems = append(problems, fmt.Sprintf("command %d: az keyvault secret set must read --file and print nothing (--output none): %s", i+1, code))
		case strings.Contains(code, "az keyvault secret show"):
			problems = append(problems, fmt.Sprintf("command %d reads the secret's value: %s", i+1, code))
		case strings.Contains(code, "az ad app credential reset") && !regexp.MustCompile(`--query password --output tsv \| tr -d '\\r\\n' >"\$secret_file"$`).MatchString(code):
			problems = append(problems, fmt.Sprintf("command %d: the new password must go straight to the private file: %s", i+1, code))
		}
	}
	return problems
}

func TestPostprovisionHookScript(t *testing.T) {
	for _, hook := range append(slices.Clone(hookScripts), hookLibraries...) {
		b, err := os.ReadFile(filepath.Join("hooks", hook))
		if err != nil {
			t.Fatal(err)
		}
		check := checkHookScript
		if slices.Contains(hookLibraries, hook) {
			check = checkHookLibrary
		}
		for _, p := range check(string(b)) {
			t.Errorf("hooks/%s: %s", hook, p)
		}
	}
	for _, tc := range []struct{ name, lib, want string }{
		{"library with a shebang", "#!/usr/bin/env bash\nf() { :; }\n", "shellcheck shell=bash"},
		{"library prints a secret", "# shellcheck shell=bash\nf() {\n\techo \"$client_secret\"\n}\n", "prints a secret"},
	} {
		got := checkHookLibrary(tc.lib)
		if len(got) != 1 || !strings.Contains(got[0], tc.want) {
			t.Errorf("%s: problems %q, want one about %s", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct{ name, script, want string }{
		{"echo", "#!/usr/bin/env bash\nset -euo pipefail\necho \"$SECRET\"\n", "prints a secret"},
		{"printf", "#!/usr/bin/env bash\nset -euo pipefail\nprintf '%s' \"${client_secret}\"\n", "prints a secret"},
		{"trace", "#!/usr/bin/env bash\nset -euo pipefail\nset -x\n", "tracing"},
		{"value on the command line", "#!/usr/bin/env bash\nset -euo pipefail\naz keyvault secret set --vault-name v --name n --value \"$s\" --output none\n", "--file"},
		{"printed by az", "#!/usr/bin/env bash\nset -euo pipefail\naz keyvault secret set --vault-name v --name n \\\n  --file f\n", "--output none"},
		{"password to stdout", "#!/usr/bin/env bash\nset -euo pipefail\naz ad app credential reset --id x --append\n", "private file"},
		{"no strict mode", "#!/usr/bin/env bash\necho hi\n", "pipefail"},
		{"sh", "#!/bin/sh\nset -euo pipefail\n", "first line"},
	} {
		got := checkHookScript(tc.script)
		if len(got) != 1 || !strings.Contains(got[0], tc.want) {
			t.Errorf("%s: problems %q, want one about %s", tc.name, got, tc.want)
		}
	}
}

// TestClientSecretHookRuns runs the hook's client secret step against a
// stand-in for az that records its arguments: the secret must reach the
// vault exactly, and never the output or a command line.
func TestClientSecretHookRuns(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	for _, tool := range []string{"date", "mktemp", "tr", "cut", "grep", "head", "cp", "rm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	const password = "Pa55~word.with-odd_chars"
	hook, err := filepath.Abs(filepath.Join("hooks", "client-secret.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// The stand-in: `secret list` answers $STUB_EXPIRES; `credential reset`
	// prints the password; `secret set --file F` copies F; `credential
	// list` answers $STUB_KEYS; `credential delete` records the key id.
	stub := `#!/usr/bin/env bash
printf '%s\n' "$*" >>"$STUB_DIR/calls"
case "$*" in
"keyvault secret list"*) printf '%s\n' "$STUB_EXPIRES" ;;
"ad app credential reset"*) printf '%s\n' "$STUB_PASSWORD" ;;
"keyvault secret set"*)
	while [ $# -gt 0 ]; do
		if [ "$1" = --file ]; then cp "$2" "$STUB_DIR/stored"; fi
		shift
	done ;;
"ad app credential list"*) printf '%s' "$STUB_KEYS" ;;
"ad app credential delete"*)
	while [ $# -gt 0 ]; do
		if [ "$1" = --key-id ]; then echo "$2" >>"$STUB_DIR/deleted"; fi
		shift
	done ;;
*) echo "unexpected az $*" >&2; exit 2 ;;
esac
`
	for _, tc := range []struct {
		name, credential, expires, keys string
		rotate                          bool
		wantStored                      bool
		wantDeleted                     string
	}{
		{name: "managed identity", credential: "managed-identity"},
		{name: "first secret", credential: "keyvault-secret", keys: "k1\n", wantStored: true},
		{name: "valid secret kept", credential: "keyvault-secret", expires: "2999-01-01T00:00:00+00:00"},
		{name: "expiring secret rotated", credential: "keyvault-secret", expires: "2000-01-01T00:00:00+00:00", keys: "k1\nk2\nk3\nk4\n", wantStored: true, wantDeleted: "k1\nk2\n"},
		{name: "forced rotation", credential: "keyvault-secret", expires: "2999-01-01T00:00:00+00:00", rotate: true, keys: "k1\nk2\n", wantStored: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bin, "az"), []byte(stub), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bash, hook)
			cmd.Env = append(os.Environ(),
				"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"STUB_DIR="+dir, "STUB_PASSWORD="+password, "STUB_EXPIRES="+tc.expires, "STUB_KEYS="+tc.keys,
				"TASK_API_CREDENTIAL="+tc.credential, "AZURE_TASK_API_CLIENT_ID=app-id", "AZURE_KEYVAULT_NAME=kv-test",
				"TASK_API_SECRET_NAME=task-api-client-secret", fmt.Sprintf("TASK_API_SECRET_ROTATE=%t", tc.rotate),
			)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("hook: %v\n%s", err, out.String())
			}
			if strings.Contains(out.String(), password) {
				t.Errorf("the hook printed the secret:\n%s", out.String())
			}
			calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
			if strings.Contains(string(calls), password) {
				t.Errorf("the secret was on an az command line:\n%s", calls)
			}
			if tc.credential != "keyvault-secret" && len(calls) != 0 {
				t.Errorf("with %s the hook called az:\n%s", tc.credential, calls)
			}
			stored, err := os.ReadFile(filepath.Join(dir, "stored"))
			switch {
			case tc.wantStored && string(stored) != password:
				t.Errorf("vault got %q (%v), want the password exactly", stored, err)
			case !tc.wantStored && err == nil:
				t.Errorf("the hook stored a secret; output:\n%s", out.String())
			}
			deleted, _ := os.ReadFile(filepath.Join(dir, "deleted"))
			if string(deleted) != tc.wantDeleted {
				t.Errorf("deleted credentials %q, want %q", deleted, tc.wantDeleted)
			}
			if tc.wantStored && !strings.Contains(string(calls), "ad app credential reset --id app-id --append") {
				t.Errorf("no appended credential:\n%s", calls)
			}
		})
	}
}
