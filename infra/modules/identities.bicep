// One user-assigned managed identity per Function App. An identity made
// before its app lets role assignments and the Task API's federated
// credential name it before the app exists, and survives the app's
// re-creation.

@description('Azure region of the identities.')
param location string

@description('Tags for every resource.')
param tags object

@description('Suffix that makes the names unique (from the subscription, environment and location).')
param resourceToken string

@description('The apps, by service name (task, notification, audit).')
param services array

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for service in services: {
  name: 'id-${service}-${resourceToken}'
  location: location
  tags: tags
}]

@description('Each identity, in the order of services: resource id, client id (AZURE_CLIENT_ID), principal (object) id.')
output identities array = [for (service, i) in services: {
  service: service
  id: identity[i].id
  name: identity[i].name
  clientId: identity[i].properties.clientId
  principalId: identity[i].properties.principalId
}]
