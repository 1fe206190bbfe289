// Log Analytics and one workspace-based Application Insights component for
// the three apps (one application map, end-to-end transactions across the
// token journey). Local (instrumentation-key) authentication is off: the
// apps send telemetry with their managed identities, which need Monitoring
// Metrics Publisher on the component (granted in functionapp.bicep).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Suffix that makes the names unique.')
param resourceToken string

@minValue(30)
@maxValue(730)
@description('Days Log Analytics keeps data.')
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

@description('The Application Insights component\'s name, for role assignments.')
output appInsightsName string = appInsights.name
