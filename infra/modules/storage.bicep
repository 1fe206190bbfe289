// The storage account the three apps share: the Functions hosts'
// AzureWebJobsStorage (identity-based: shared keys are off), one Flex
// Consumption deployment container per app, and the tables of the apps'
// Table Storage backend (internal/store/table.go; each app opens all three
// and creates them if missing, so declaring them here only makes them exist
// before the first request).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@minLength(3)
@maxLength(24)
@description('Storage account name: 3 to 24 lowercase letters and digits.')
param name string

@description('Blob containers Flex Consumption deploys each app\'s package to, one per app.')
param deploymentContainers array

@description('Tables of the apps\' store: <prefix>tasks, <prefix>notifications, <prefix>audit with store.DefaultTablePrefix.')
param tableNames array = [
  'handofftasks'
  'handoffnotifications'
  'handoffaudit'
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'

    resource containers 'containers' = [for container in deploymentContainers: {
      name: container
      properties: {
        publicAccess: 'None'
      }
    }]
  }

  resource tableServices 'tableServices' = {
    name: 'default'

    resource tables 'tables' = [for table in tableNames: {
      name: table
    }]
  }
}

@description('The account\'s name (AzureWebJobsStorage__accountName).')
output name string = storage.name

@description('The blob endpoint, https://<name>.blob.core.windows.net/.')
output blobEndpoint string = storage.properties.primaryEndpoints.blob
