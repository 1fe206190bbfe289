// The built-in Azure role definitions the deployment assigns, by name. These
// ids are the same in every tenant (see "Azure built-in roles" in the Azure
// RBAC documentation); infra_test.go checks each against its documented name
// and that no other role id appears in the templates.

@export()
@description('Built-in role definition ids (GUIDs), keyed by role.')
var builtInRoles = {
  // Blob data, including the Flex Consumption deployment container and the host's leases.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Table data: the apps' store (STORAGE_BACKEND=table), which also creates its tables.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Queue data: the Functions host's own queues.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Entra-authenticated ingestion into Application Insights (local auth is off).
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // Read secrets: the Task API's identity, for AZURE_API_CREDENTIAL=keyvault-secret.
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  // Write secrets: the deploying principal, so the postprovision hook can store the client secret.
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}
