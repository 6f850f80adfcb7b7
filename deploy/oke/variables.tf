variable "region" {
  description = "OCI region, e.g. eu-frankfurt-1."
  type        = string
}

variable "oci_config_profile" {
  description = "Profile of ~/.oci/config used by the provider."
  type        = string
  default     = "DEFAULT"
}

variable "tenancy_ocid" {
  description = "Tenancy OCID (availability domains are listed from it)."
  type        = string
}

variable "compartment_ocid" {
  description = "Compartment of the cluster and node pools."
  type        = string
}

# --- Cluster: reference an existing one, or create one. -------------------------------------

variable "cluster_id" {
  description = "OCID of an existing OKE cluster. Null creates a new enhanced cluster (needs vcn_id, api_subnet_id, lb_subnet_id)."
  type        = string
  default     = null
}

variable "cluster_name" {
  description = "Name of the created cluster."
  type        = string
  default     = "triage"
}

variable "kubernetes_version" {
  description = "Kubernetes version of the cluster and node pools (the chart needs >= 1.29)."
  type        = string
  default     = "v1.31.1"

  validation {
    condition     = can(regex("^v1\\.(29|[3-9][0-9])\\.", var.kubernetes_version))
    error_message = "The Triage chart needs Kubernetes v1.29 or later."
  }
}

variable "vcn_id" {
  description = "VCN of a created cluster."
  type        = string
  default     = null
}

variable "api_subnet_id" {
  description = "Subnet of the Kubernetes API endpoint of a created cluster."
  type        = string
  default     = null
}

variable "public_api_endpoint" {
  description = "Give a created cluster's API endpoint a public IP."
  type        = bool
  default     = false
}

variable "lb_subnet_id" {
  description = "Subnet of the service load balancers (the gateway's NLB) of a created cluster."
  type        = string
  default     = null
}

variable "node_subnet_id" {
  description = "Subnet of the worker nodes (both pools)."
  type        = string
}

variable "ssh_public_key" {
  description = "SSH public key installed on the nodes (empty: none)."
  type        = string
  default     = ""
}

# --- CPU pool: gateway, policy, backends, context, ledger, operator, Redis. ----------------

variable "cpu_shape" {
  description = "Shape of the CPU pool."
  type        = string
  default     = "VM.Standard.E5.Flex"
}

variable "cpu_ocpus" {
  description = "OCPUs per CPU node (flex shapes)."
  type        = number
  default     = 4
}

variable "cpu_memory_gbs" {
  description = "Memory per CPU node, GB (flex shapes)."
  type        = number
  default     = 32
}

variable "cpu_pool_size" {
  description = "Nodes in the CPU pool (3 spreads the 2-replica services and a rollout surge)."
  type        = number
  default     = 3
}

variable "cpu_image_id" {
  description = "OKE worker image OCID for the CPU pool (an Oracle Linux OKE image matching kubernetes_version)."
  type        = string
}

# --- GPU pool: the classifier (and model servers). ------------------------------------------

variable "gpu_shape" {
  description = "Shape of the GPU pool."
  type        = string
  default     = "VM.GPU.A10.1"
}

variable "gpu_pool_size" {
  description = "Nodes in the GPU pool: classifier replicas (2) plus one for the rollout surge (maxUnavailable 0)."
  type        = number
  default     = 3
}

variable "gpu_image_id" {
  description = "OKE GPU worker image OCID (Oracle Linux GPU image with the NVIDIA driver, matching kubernetes_version)."
  type        = string
}

variable "gpu_availability_domains" {
  description = "Availability domains (names) that have A10 capacity; empty uses every AD of the region."
  type        = list(string)
  default     = []
}

variable "boot_volume_gbs" {
  description = "Boot volume of every node, GB (images and the baked-in model files)."
  type        = number
  default     = 100
}

variable "node_label_key" {
  description = "Node label the chart selects pools by (values gpuNodePool.nodeSelector)."
  type        = string
  default     = "triage.dev/pool"
}
