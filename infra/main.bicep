// handoff on Azure: the Task API, the Notification Service and the Audit
// Service, each a Go custom handler on its own Flex Consumption plan, with
// their Entra ID app registrations (Microsoft Graph Bicep extension),
// identity-based storage, Application Insights and a Key Vault; and the SPA
// (web/) on Azure Static Web Apps, built from the VITE_* outputs. Deployed by
// `azd up` (azure.yaml), or `az deployment sub create` with
// main.parameters.json's values. docs/deploy.md explains what gets created
// and why.
//
// Each app's settings are one object below (taskApiSettings,
// notificationSettings, auditSettings): exactly the names its Settings list
// reads (internal/*api/routes.go), checked by infra_test.go.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and, with the subscription and location, every resource.')
param environmentName string

@minLength(1)
@description('Azure region of every resource: one that offers the Flex Consumption plan.')
param location string

@description('Object id of the deploying user or service principal (azd sets AZURE_PRINCIPAL_ID): made an owner of the app registrations and, with taskApiCredential keyvault-secret, Key Vault Secrets Officer so the postprovision hook can store the client secret. Empty: neither.')
param principalId string = ''

@allowed([
  'managed-identity'
  'keyvault-secret'
])
@description('How the Task API authenticates to Entra ID (AZURE_API_CREDENTIAL): managed-identity, a federated credential trusting its user-assigned identity and no secret anywhere (the default); or keyvault-secret, a client secret the postprovision hook creates and keeps in Key Vault.')
param taskApiCredential string = 'managed-identity'

@description('Name of the Key Vault secret that holds the Task API\'s client secret (keyvault-secret).')
param taskApiSecretName string = 'task-api-client-secret'

@description('Comma-separated ids of the other tenants whose users may use the Task API and the Notification Service (ALLOWED_TENANT_IDS); the home tenant is always allowed.')
param allowedTenantIds string = ''

@description('Accept users of every tenant (ALLOW_ANY_TENANT); leave false and list tenants in allowedTenantIds.')
param allowAnyTenant bool = false

@description('Another origin of the SPA (https://host, no path), e.g. a custom domain of the Static Web App; empty: only the Static Web App\'s own (SPA_URL) and spaDevOrigins.')
param spaOrigin string = ''

@description('Origins of SPAs in development: with the Static Web App\'s origin and spaOrigin, the SPA\'s redirect URIs and the Task API\'s CORS origins.')
param spaDevOrigins array = [
  'http://localhost:3000'
]

@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
@description('Azure region of the SPA\'s Static Web App (SPA_LOCATION): Static Web Apps is offered in fewer regions than location, so it has its own.')
param spaLocation string = 'westeurope'

// Sized from measurement: docs/performance.md, Sizing on Flex Consumption.
@allowed([
  512
  2048
  4096
])
@description('Memory of each Flex Consumption instance, in MB: 512 (each handler peaks at about 35 MB), 2048 or 4096.')
param instanceMemoryMB int = 512

// Flex Consumption accepts 1 to 1000; 4 on 512 MB is the CPU per request
// of Flex's own default (16 on 2048 MB).
@minValue(1)
@maxValue(1000)
@description('HTTP requests in flight on one instance of each app before Flex Consumption adds an instance.')
param perInstanceConcurrency int = 4

// Flex Consumption refuses a maximum below 40 (the Flex samples declare
// the same bounds); 1000 is the plan's highest.
@minValue(40)
@maxValue(1000)
@description('Most instances each app scales out to: 40 (Flex Consumption\'s lowest maximum) to 1000.')
param maximumInstanceCount int = 100

@description('OTLP/HTTP endpoint every app exports its spans and metrics to (OTEL_EXPORTER_OTLP_ENDPOINT: a collector, say; docs/telemetry.md); empty (the default): no app exports anything.')
param otlpEndpoint string = ''


var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var services = [
  'task'
  'notification'
  'audit'
]
// The SPA's origins: its redirect URIs and the Task API's CORS origins.
var spaOrigins = concat(spaDevOrigins, [spa.outputs.url], empty(spaOrigin) ? [] : [spaOrigin])

// AZURE_AUTHORITY_HOST without the trailing slash the environment has.
var loginEndpoint = environment().authentication.loginEndpoint
var authorityHost = endsWith(loginEndpoint, '/') ? substring(loginEndpoint, 0, length(loginEndpoint) - 1) : loginEndpoint

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identities 'modules/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    services: services
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    deploymentContainers: [for service in services: 'deploy-${service}']
  }
}

// The SPA's host. It depends on nothing; the app registrations and the Task
// API take its origin.
module spa 'modules/spa.bicep' = {
  name: 'spa'
  scope: rg
  params: {
    location: spaLocation
    tags: tags
    name: 'swa-${resourceToken}'
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'kv-${resourceToken}'
    secretsOfficerPrincipalId: taskApiCredential == 'keyvault-secret' ? principalId : ''
  }
}

module entra 'modules/entra.bicep' = {
  name: 'entra'
  scope: rg
  params: {
    namePrefix: 'handoff-${resourceToken}'
    displayNameSuffix: 'handoff ${environmentName}'
    taskApiIdentityPrincipalId: identities.outputs.identities[0].principalId
    spaRedirectUris: spaOrigins
    ownerIds: empty(principalId) ? [] : [principalId]
  }
}

var commonSettings = {
  AZURE_HOME_TENANT_ID: tenant().tenantId
  AZURE_AUTHORITY_HOST: authorityHost
  // The platform answers CORS (siteConfig.cors); the handler's own stays off.
  ALLOWED_ORIGINS: ''
  STORAGE_BACKEND: 'table'
  // Unused with the table backend; instance disks are not shared or kept.
  DATA_DIR: '/tmp'
  // Development only: the emulators' CA.
  EXTRA_CA_FILE: ''
}

var notificationSettings = {
  AZURE_HOME_TENANT_ID: commonSettings.AZURE_HOME_TENANT_ID
  AZURE_NOTIFICATION_CLIENT_ID: entra.outputs.notificationAppId
  AZURE_AUTHORITY_HOST: commonSettings.AZURE_AUTHORITY_HOST
  ALLOW_ANY_TENANT: allowAnyTenant ? 'true' : 'false'
  ALLOWED_TENANT_IDS: allowedTenantIds
  ALLOWED_ORIGINS: commonSettings.ALLOWED_ORIGINS
  AZURE_API_CLIENT_ID: entra.outputs.taskApiAppId
  ALLOWED_CALLER_APP_IDS: entra.outputs.taskApiAppId
  DATA_DIR: commonSettings.DATA_DIR
  STORAGE_BACKEND: commonSettings.STORAGE_BACKEND
  EXTRA_CA_FILE: commonSettings.EXTRA_CA_FILE
}

var auditSettings = {
  AZURE_HOME_TENANT_ID: commonSettings.AZURE_HOME_TENANT_ID
  AZURE_AUDIT_CLIENT_ID: entra.outputs.auditAppId
  AZURE_AUTHORITY_HOST: commonSettings.AZURE_AUTHORITY_HOST
  ALLOWED_ORIGINS: commonSettings.ALLOWED_ORIGINS
  AZURE_API_CLIENT_ID: entra.outputs.taskApiAppId
  ALLOWED_CALLER_APP_IDS: entra.outputs.taskApiAppId
  DATA_DIR: commonSettings.DATA_DIR
  STORAGE_BACKEND: commonSettings.STORAGE_BACKEND
  EXTRA_CA_FILE: commonSettings.EXTRA_CA_FILE
}

var taskApiSettings = {
  AZURE_HOME_TENANT_ID: commonSettings.AZURE_HOME_TENANT_ID
  AZURE_API_CLIENT_ID: entra.outputs.taskApiAppId
  AZURE_AUTHORITY_HOST: commonSettings.AZURE_AUTHORITY_HOST
  ALLOW_ANY_TENANT: allowAnyTenant ? 'true' : 'false'
  ALLOWED_TENANT_IDS: allowedTenantIds
  ALLOWED_ORIGINS: commonSettings.ALLOWED_ORIGINS
  AZURE_API_CREDENTIAL: taskApiCredential
  // Never a secret in app settings: keyvault-secret reads it from the vault.
  AZURE_API_CLIENT_SECRET: ''
  AZURE_KEYVAULT_URL: keyVault.outputs.uri
  AZURE_API_CLIENT_SECRET_NAME: taskApiSecretName
  AZURE_API_CLIENT_CERTIFICATE_NAME: 'task-api-client-certificate'
  AZURE_API_CLIENT_CERTIFICATE_PATH: ''
  AZURE_API_CREDENTIAL_REFRESH: '5m'
  AZURE_CLIENT_ID: identities.outputs.identities[0].clientId
  AZURE_NOTIFICATION_CLIENT_ID: entra.outputs.notificationAppId
  NOTIFICATION_URL: notificationApp.outputs.url
  NOTIFICATION_SCOPE: '${entra.outputs.notificationIdentifierUri}/.default'
  AZURE_AUDIT_CLIENT_ID: entra.outputs.auditAppId
  AUDIT_URL: auditApp.outputs.url
  AUDIT_SCOPE: '${entra.outputs.auditIdentifierUri}/.default'
  DOWNSTREAM_TIMEOUT: '3s'
  AUDIT_SWEEP_SCHEDULE: '0 */1 * * * *'
  AUDIT_RETRY_DELAY: '30s'
  AUDIT_MAX_ATTEMPTS: '60'
  OBO_CACHE_SIZE: '1000'
  MAX_TENANT_CLIENTS: '100'
  DATA_DIR: commonSettings.DATA_DIR
  STORAGE_BACKEND: commonSettings.STORAGE_BACKEND
  EXTRA_CA_FILE: commonSettings.EXTRA_CA_FILE
}

module taskApp 'modules/functionapp.bicep' = {
  name: 'app-task'
  scope: rg
  params: {
    location: location
    tags: tags
    serviceName: 'task'
    resourceToken: resourceToken
    identityName: identities.outputs.identities[0].name
    storageAccountName: storage.outputs.name
    deploymentContainer: 'deploy-task'
    appInsightsName: monitoring.outputs.appInsightsName
    appSettings: taskApiSettings
    corsAllowedOrigins: spaOrigins
    instanceMemoryMB: instanceMemoryMB
    perInstanceConcurrency: perInstanceConcurrency
    maximumInstanceCount: maximumInstanceCount
    otlpEndpoint: otlpEndpoint
    keyVaultName: taskApiCredential == 'keyvault-secret' ? keyVault.outputs.name : ''
  }
}

module notificationApp 'modules/functionapp.bicep' = {
  name: 'app-notification'
  scope: rg
  params: {
    location: location
    tags: tags
    serviceName: 'notification'
    resourceToken: resourceToken
    identityName: identities.outputs.identities[1].name
    storageAccountName: storage.outputs.name
    deploymentContainer: 'deploy-notification'
    appInsightsName: monitoring.outputs.appInsightsName
    appSettings: notificationSettings
    instanceMemoryMB: instanceMemoryMB
    perInstanceConcurrency: perInstanceConcurrency
    maximumInstanceCount: maximumInstanceCount
    otlpEndpoint: otlpEndpoint
  }
}

module auditApp 'modules/functionapp.bicep' = {
  name: 'app-audit'
  scope: rg
  params: {
    location: location
    tags: tags
    serviceName: 'audit'
    resourceToken: resourceToken
    identityName: identities.outputs.identities[2].name
    storageAccountName: storage.outputs.name
    deploymentContainer: 'deploy-audit'
    appInsightsName: monitoring.outputs.appInsightsName
    appSettings: auditSettings
    instanceMemoryMB: instanceMemoryMB
    perInstanceConcurrency: perInstanceConcurrency
    maximumInstanceCount: maximumInstanceCount
    otlpEndpoint: otlpEndpoint
  }
}

// azd stores these in .azure/<environment>/.env; the postprovision hook reads
// them, and the SPA's build (azure.yaml's web service) the VITE_* ones.
@description('The resource group.')
output AZURE_RESOURCE_GROUP string = rg.name

@description('The home tenant of the app registrations.')
output AZURE_TENANT_ID string = tenant().tenantId

@description('The Task API\'s base URL.')
output TASK_API_URL string = taskApp.outputs.url

@description('The Notification Service\'s base URL.')
output NOTIFICATION_URL string = notificationApp.outputs.url

@description('The Audit Service\'s base URL.')
output AUDIT_URL string = auditApp.outputs.url

@description('The Task API\'s application (client) id.')
output AZURE_TASK_API_CLIENT_ID string = entra.outputs.taskApiAppId

@description('The Notification Service\'s application (client) id.')
output AZURE_NOTIFICATION_CLIENT_ID string = entra.outputs.notificationAppId

@description('The Audit Service\'s application (client) id.')
output AZURE_AUDIT_CLIENT_ID string = entra.outputs.auditAppId

@description('The SPA\'s application (client) id.')
output AZURE_SPA_CLIENT_ID string = entra.outputs.spaAppId

@description('The scope the SPA asks for: <Task API identifier URI>/access_as_user.')
output TASK_API_SCOPE string = entra.outputs.taskApiScope

@description('The Key Vault\'s URI.')
output AZURE_KEYVAULT_URL string = keyVault.outputs.uri

@description('The Key Vault\'s name (the postprovision hook writes the client secret there).')
output AZURE_KEYVAULT_NAME string = keyVault.outputs.name

// The postprovision hook's app role assignment (entra.bicep says why it is
// not a Bicep resource).
@description('Object id of the Task API\'s service principal: the principal of its AuditLog.Write.')
output AZURE_TASK_API_SP_ID string = entra.outputs.appRoleAssignment.principalId

@description('Object id of the Audit Service\'s service principal: the resource of the Task API\'s AuditLog.Write.')
output AZURE_AUDIT_SP_ID string = entra.outputs.appRoleAssignment.resourceId

@description('Id of the Audit Service\'s AuditLog.Write app role.')
output AUDIT_WRITE_ROLE_ID string = entra.outputs.appRoleAssignment.appRoleId

@description('Id of the Task API\'s Outbox.Replay.All app role: the postprovision hook assigns it to TASK_API_OPERATORS (on AZURE_TASK_API_SP_ID).')
output OUTBOX_REPLAY_ALL_ROLE_ID string = entra.outputs.outboxReplayAllRoleId

@description('The Task API\'s credential mode (the postprovision hook acts on keyvault-secret only).')
output TASK_API_CREDENTIAL string = taskApiCredential

@description('The Key Vault secret of the Task API\'s client secret (keyvault-secret).')
#disable-next-line outputs-should-not-contain-secrets // the secret's name, never its value
output TASK_API_SECRET_NAME string = taskApiSecretName

@description('The SPA\'s URL, https://<Static Web App host> (its origin).')
output SPA_URL string = spa.outputs.url

// The SPA's build configuration (web/src/config.ts): azd hands the
// environment to the web service's prepackage hook, and Vite reads VITE_*.
@description('The SPA\'s application (client) id (VITE_CLIENT_ID).')
output VITE_CLIENT_ID string = entra.outputs.spaAppId

@description('The SPA\'s authority: any organization\'s users sign in.')
output VITE_AUTHORITY string = '${authorityHost}/organizations'

@description('The authority\'s host, which MSAL trusts without instance discovery.')
output VITE_KNOWN_AUTHORITY string = replace(authorityHost, 'https://', '')

@description('The Task API\'s base URL, as the SPA calls it.')
output VITE_TASK_API string = taskApp.outputs.url

@description('The scope the SPA asks for: <Task API identifier URI>/access_as_user.')
output VITE_TASK_SCOPE string = '${entra.outputs.taskApiIdentifierUri}/access_as_user'

@description('Where Entra sends the browser back: the Static Web App\'s origin.')
output VITE_REDIRECT_URI string = spa.outputs.url
