// One Function App of the system on its own Flex Consumption plan: a Go
// custom handler (runtime custom), deployed from a blob container with its
// user-assigned identity, with identity-based host storage and
// Entra-authenticated Application Insights. Its settings are exactly
// hostSettings below (the Functions host's own), otlpSettings (the
// OpenTelemetry export, only when an endpoint is given) and the appSettings
// the caller passes (the app's Settings list, internal/*api/routes.go):
// infra_test.go checks them. Never FUNCTIONS_WORKER_RUNTIME or
// FUNCTIONS_EXTENSION_VERSION (Flex Consumption refuses them: the runtime is
// functionAppConfig.runtime), and never FUNCTIONS_CUSTOMHANDLER_PORT (the
// host sets it).

import { builtInRoles } from 'roles.bicep'

@description('Azure region.')
param location string

@description('Tags for every resource; the app also gets azd-service-name.')
param tags object

@description('The service name in azure.yaml (task, notification, audit): names the resources and tags the app for azd.')
param serviceName string

@description('Suffix that makes the names unique.')
param resourceToken string

@description('The app\'s user-assigned managed identity (identities.bicep).')
param identityName string

@description('The shared storage account (storage.bicep).')
param storageAccountName string

@description('The blob container of this app\'s deployment packages.')
param deploymentContainer string

@description('The shared Application Insights component (monitoring.bicep).')
param appInsightsName string

@description('The app\'s own settings: every name in its Settings list, and nothing else.')
param appSettings object

@description('Browser origins the platform answers CORS for (the SPA\'s); empty: none.')
param corsAllowedOrigins array = []

// Sizing from measurement (docs/performance.md, Sizing on Flex
// Consumption): each handler peaks at about 35 MB under load, so the
// smallest instance is enough, and 4 requests in flight per instance keep
// the CPU per request of a 512 MB instance the same as Flex's default of 16
// on a 2048 MB one, at a quarter of the GB-seconds when instances are not full.
@allowed([
  512
  2048
  4096
])
@description('Memory of each instance, in MB (Flex Consumption offers 512, 2048 and 4096).')
param instanceMemoryMB int = 512

@minValue(1)
@maxValue(1000)
@description('Most HTTP requests in flight on one instance before the platform adds another (scaleAndConcurrency.triggers.http.perInstanceConcurrency).')
param perInstanceConcurrency int = 4

@minValue(1)
@maxValue(1000)
@description('Most instances the app scales out to.')
param maximumInstanceCount int = 100

@description('A Key Vault the app reads secrets from (Key Vault Secrets User on it); empty: none.')
param keyVaultName string = ''

@description('OTLP/HTTP endpoint the app exports its spans and metrics to (OTEL_EXPORTER_OTLP_ENDPOINT, docs/telemetry.md); empty: the setting is not set and the app exports nothing.')
param otlpEndpoint string = ''

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = if (!empty(keyVaultName)) {
  name: keyVaultName
}

// The Functions host's own settings: its storage through the app's
// identity (store.TableConfigFromEnv reads the same ones), and telemetry
// authenticated with Entra ID.
var hostSettings = {
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
}

// OpenTelemetry export (docs/telemetry.md): the standard variable, set
// only when an endpoint is given, so that by default it is absent and the
// apps install no exporter. The Go SDK reads it; so would the Functions
// host, were host.json's telemetryMode OpenTelemetry. No
// OTEL_EXPORTER_OTLP_HEADERS: the deployment takes no secret (an API key
// goes in as a Key Vault reference, docs/telemetry.md).
var otlpSettings = empty(otlpEndpoint) ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint }

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${serviceName}-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-${serviceName}-${resourceToken}'
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: perInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }

  // All the app's settings, replaced as a whole on every deployment; set
  // once the identity can reach what they name, so the host starts once.
  resource settings 'config' = {
    name: 'appsettings'
    properties: union(hostSettings, otlpSettings, appSettings)
    dependsOn: [
      blobDataOwner
      tableDataContributor
      queueDataContributor
      metricsPublisher
      secretsUser
    ]
  }
}

// Host storage and the deployment container (blob), the Functions host's
// queues, and the apps' store (tables, which it may create).
resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, builtInRoles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.storageBlobDataOwner)
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, builtInRoles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.storageTableDataContributor)
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, builtInRoles.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.storageQueueDataContributor)
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, builtInRoles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.monitoringMetricsPublisher)
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(keyVaultName)) {
  name: guid(vault.id, identity.id, builtInRoles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.keyVaultSecretsUser)
  }
}

@description('The app\'s name.')
output name string = site.name

@description('The app\'s default host name.')
output defaultHostName string = site.properties.defaultHostName

@description('The app\'s base URL, https://<defaultHostName> (its routes are under /api).')
output url string = 'https://${site.properties.defaultHostName}'
