terraform {
  required_version = ">= 1.5.0"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = ">= 6.0.0, < 8.0.0"
    }
  }
}

provider "oci" {
  region = var.region
  # Credentials come from the usual OCI sources (~/.oci/config profile, instance principal,
  # or TF_VAR_/OCI_ environment variables); none are kept here.
  config_file_profile = var.oci_config_profile
}
