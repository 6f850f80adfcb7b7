output "cluster_id" {
  description = "OKE cluster OCID (created or referenced)."
  value       = local.cluster_id
}

output "cpu_node_pool_id" {
  description = "CPU node pool OCID."
  value       = oci_containerengine_node_pool.cpu.id
}

output "gpu_node_pool_id" {
  description = "A10 GPU node pool OCID."
  value       = oci_containerengine_node_pool.gpu.id
}

output "gpu_node_selector" {
  description = "What the chart's gpuNodePool.nodeSelector must match (deploy/oke/values-oke.yaml)."
  value       = { (var.node_label_key) = "gpu", "node.kubernetes.io/instance-type" = var.gpu_shape }
}

output "gpu_taint" {
  description = "Taint of the GPU nodes (the chart's gpuNodePool.tolerations tolerate it)."
  value       = "nvidia.com/gpu=present:NoSchedule"
}

output "kubeconfig_command" {
  description = "Writes a kubeconfig entry for the cluster."
  value       = "oci ce cluster create-kubeconfig --cluster-id ${local.cluster_id} --region ${var.region} --file $HOME/.kube/config --token-version 2.0.0 --kube-endpoint ${var.public_api_endpoint ? "PUBLIC_ENDPOINT" : "PRIVATE_ENDPOINT"}"
}

output "helm_install_command" {
  description = "Installs Triage with the OKE overlay."
  value       = "helm upgrade --install triage helm/triage -n triage --create-namespace -f deploy/oke/values-oke.yaml"
}
