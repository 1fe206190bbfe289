// The SPA's host: an Azure Static Web Apps site (Free) that serves web/'s
// static build. azd deploys web/dist to it (azure.yaml's web service, found
// by the azd-service-name tag); the build reads main.bicep's VITE_* outputs.
// Its origin, https://<defaultHostname>, is among the SPA registration's
// redirect URIs and the Task API's CORS origins (main.bicep).

@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
@description('Azure region of the site: one Static Web Apps offers (it serves from a global edge; the region holds its metadata).')
param location string = 'westeurope'

@description('Tags for every resource; the site also gets azd-service-name web.')
param tags object

@minLength(2)
@maxLength(40)
@description('The site\'s name.')
param name string

resource site 'Microsoft.Web/staticSites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'web' })
  sku: {
    name: 'Free'
    tier: 'Free'
  }
  properties: {
    // Deployed by azd (the SWA CLI with the deployment token), not from a repository.
    provider: 'Custom'
  }
}

@description('The site\'s name.')
output name string = site.name

@description('The site\'s default host name.')
output defaultHostname string = site.properties.defaultHostname

@description('The site\'s origin and base URL, https://<defaultHostname>.')
output url string = 'https://${site.properties.defaultHostname}'
