# OKE for Triage: an existing cluster (var.cluster_id) or a new enhanced cluster, a CPU node
# pool and an A10 GPU node pool labelled and tainted the way the chart expects:
#   CPU nodes: triage.dev/pool=cpu
#   GPU nodes: triage.dev/pool=gpu, taint nvidia.com/gpu=present:NoSchedule (only pods that
#              tolerate it, the classifier and model servers, land there).

data "oci_identity_availability_domains" "ads" {
  compartment_id = var.tenancy_ocid
}

locals {
  create_cluster = var.cluster_id == null
  cluster_id     = local.create_cluster ? oci_containerengine_cluster.triage[0].id : var.cluster_id
  all_ads        = [for ad in data.oci_identity_availability_domains.ads.availability_domains : ad.name]
  gpu_ads        = length(var.gpu_availability_domains) > 0 ? var.gpu_availability_domains : local.all_ads

  # OKE worker cloud-init: run the stock OKE bootstrap, registering the node with the GPU taint.
  gpu_cloud_init = <<-EOT
    #!/bin/bash
    set -euo pipefail
    curl --fail -H "Authorization: Bearer Oracle" -L0 \
      http://169.254.169.254/opc/v2/instance/metadata/oke_init_script | base64 --decode >/var/run/oke-init.sh
    bash /var/run/oke-init.sh --kubelet-extra-args "--register-with-taints=nvidia.com/gpu=present:NoSchedule"
  EOT
}

resource "oci_containerengine_cluster" "triage" {
  count = local.create_cluster ? 1 : 0

  compartment_id     = var.compartment_ocid
  name               = var.cluster_name
  kubernetes_version = var.kubernetes_version
  vcn_id             = var.vcn_id
  type               = "ENHANCED_CLUSTER"

  endpoint_config {
    subnet_id            = var.api_subnet_id
    is_public_ip_enabled = var.public_api_endpoint
  }

  cluster_pod_network_options {
    # Flannel overlay: NetworkPolicies are enforced once Calico is installed in policy-only
    # mode (see README); the VCN-native CNI does not enforce them.
    cni_type = "FLANNEL_OVERLAY"
  }

  options {
    service_lb_subnet_ids = [var.lb_subnet_id]
  }

  lifecycle {
    precondition {
      condition     = var.vcn_id != null && var.api_subnet_id != null && var.lb_subnet_id != null
      error_message = "Creating a cluster needs vcn_id, api_subnet_id and lb_subnet_id (or set cluster_id)."
    }
  }
}

resource "oci_containerengine_node_pool" "cpu" {
  cluster_id         = local.cluster_id
  compartment_id     = var.compartment_ocid
  name               = "${var.cluster_name}-cpu"
  kubernetes_version = var.kubernetes_version
  node_shape         = var.cpu_shape
  ssh_public_key     = var.ssh_public_key

  node_shape_config {
    ocpus         = var.cpu_ocpus
    memory_in_gbs = var.cpu_memory_gbs
  }

  node_source_details {
    source_type             = "IMAGE"
    image_id                = var.cpu_image_id
    boot_volume_size_in_gbs = var.boot_volume_gbs
  }

  node_config_details {
    size = var.cpu_pool_size

    dynamic "placement_configs" {
      for_each = local.all_ads
      content {
        availability_domain = placement_configs.value
        subnet_id           = var.node_subnet_id
      }
    }

    node_pool_pod_network_option_details {
      cni_type = "FLANNEL_OVERLAY"
    }
  }

  initial_node_labels {
    key   = var.node_label_key
    value = "cpu"
  }

  node_eviction_node_pool_settings {
    # Respect the chart's PodDisruptionBudgets when nodes are cycled.
    eviction_grace_duration              = "PT30M"
    is_force_delete_after_grace_duration = false
  }
}

resource "oci_containerengine_node_pool" "gpu" {
  cluster_id         = local.cluster_id
  compartment_id     = var.compartment_ocid
  name               = "${var.cluster_name}-gpu-a10"
  kubernetes_version = var.kubernetes_version
  node_shape         = var.gpu_shape
  ssh_public_key     = var.ssh_public_key

  node_source_details {
    source_type             = "IMAGE"
    image_id                = var.gpu_image_id
    boot_volume_size_in_gbs = var.boot_volume_gbs
  }

  node_config_details {
    size = var.gpu_pool_size

    dynamic "placement_configs" {
      for_each = local.gpu_ads
      content {
        availability_domain = placement_configs.value
        subnet_id           = var.node_subnet_id
      }
    }

    node_pool_pod_network_option_details {
      cni_type = "FLANNEL_OVERLAY"
    }
  }

  initial_node_labels {
    key   = var.node_label_key
    value = "gpu"
  }

  initial_node_labels {
    key   = "nvidia.com/gpu.present"
    value = "true"
  }

  node_metadata = {
    user_data = base64encode(local.gpu_cloud_init)
  }

  node_eviction_node_pool_settings {
    eviction_grace_duration              = "PT30M"
    is_force_delete_after_grace_duration = false
  }
}
