package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestPrintConfigValidatesSchema: what -print-config writes, for the
// built-in directory and for the docs example, is valid under the schema
// -print-schema writes; and the schema refuses what the loader refuses.
func TestPrintConfigValidatesSchema(t *testing.T) {
	schemaJSON, _, err := runQuick(t, "-print-schema")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(schemaJSON)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("directory.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("directory.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	validate := func(name, data string) error {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(data)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return schema.Validate(inst)
	}
	printed, _, err := runQuick(t, "-print-config")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate("-print-config", printed); err != nil {
		t.Errorf("-print-config output is not valid under the schema: %v", err)
	}
	example, _, err := runQuick(t, "-config", "../../docs/emulator-example.json", "-print-config")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate("example", example); err != nil {
		t.Errorf("the docs example, printed, is not valid under the schema: %v", err)
	}
	bad := `{"tenants": [{"id": "10000000-0000-4000-8000-000000000001", "tenant_id": "x"}]}`
	if err := validate("bad", bad); err == nil {
		t.Error("the schema accepts an unknown field")
	}
	file := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runQuick(t, "-config", file, "-print-config"); err == nil {
		t.Error("the loader accepts an unknown field")
	}
}
