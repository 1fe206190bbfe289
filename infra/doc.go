// Package infra holds the Bicep that deploys handoff to Azure: main.bicep
// (subscription scope: the resource group and everything in it) with its
// modules in modules/, the azd parameters (main.parameters.json), the Bicep
// configuration that enables the Microsoft Graph extension
// (bicepconfig.json) and the azd hooks in hooks/; azure.yaml at the
// repository root ties them to the three Function Apps.
//
// No Bicep compiler runs offline, so the package's tests read the templates
// with a small parser of the Bicep they use and check them against the code:
// each Function App's settings against its Settings list, the app
// registrations against the Entra emulator's default directory, the role
// ids against Azure's documented built-in roles, and the Flex Consumption,
// storage and Key Vault settings docs/deploy.md promises. The hooks run
// against stand-in azd, az and bicep programs (hooks_test.go).
package infra
