//! Typed assertions on the rendered Deployments, StatefulSets and Services: one image per
//! service, the rendered triage.yaml, zero-downtime rollouts, probes, GPU scheduling, model
//! volumes, Redis and mounted Secrets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, PodSpec, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::path::PathBuf;
use triage_core::Config;
use triage_deploy::{Rendered, chart_dir, duration_secs, repo_root, values_files};

const SERVICES: [&str; 6] = ["gateway", "classifier", "policy", "backends", "context", "ledger"];

fn render(file: Option<&str>) -> Rendered {
    let paths: Vec<PathBuf> = file.iter().map(|f| chart_dir().join("ci").join(f)).collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    Rendered::render(&refs, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn every_rendering() -> Vec<(String, Rendered)> {
    let mut out = vec![("defaults".to_string(), render(None))];
    for f in values_files().unwrap() {
        let r = Rendered::render(&[f.as_path()], &[]).unwrap_or_else(|e| panic!("{e}"));
        out.push((f.display().to_string(), r));
    }
    out
}

fn spec(d: &Deployment) -> &PodSpec {
    d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

fn container(d: &Deployment) -> &Container {
    &spec(d).containers[0]
}

fn config(r: &Rendered) -> Config {
    let cm: ConfigMap = r.get("triage-config").unwrap();
    let text = cm.data.unwrap().remove("triage.yaml").unwrap();
    Config::from_yaml(&text, std::path::Path::new("rendered triage.yaml")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn grpc_port(c: &Container) -> i32 {
    c.ports.as_ref().unwrap().iter().find(|p| p.name.as_deref() == Some("grpc")).unwrap().container_port
}

fn port_of(addr: &str) -> i32 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn one_deployment_per_service_from_one_image() {
    let r = render(None);
    let deployments: Vec<Deployment> = r.all().unwrap();
    let mut names: Vec<String> = deployments.iter().map(|d| d.metadata.name.clone().unwrap()).collect();
    names.sort();
    let mut want: Vec<String> = SERVICES.iter().chain(["operator"].iter()).map(|s| format!("triage-{s}")).collect();
    want.sort();
    assert_eq!(names, want);
    let image = container(&deployments[0]).image.clone().unwrap();
    for d in &deployments {
        let c = container(d);
        let svc = d.metadata.name.as_ref().unwrap().strip_prefix("triage-").unwrap();
        assert_eq!(c.image.as_ref(), Some(&image), "{svc}: one image for every service");
        assert_eq!(
            c.args.clone().unwrap(),
            ["serve", "--target", svc, "--config", "/etc/triage/triage.yaml"].map(String::from).to_vec()
        );
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert!(mounts.iter().any(|m| m.mount_path == "/etc/triage"), "{svc}: config mounted");
    }
}

#[test]
fn the_rendered_config_passes_triage_validation_for_every_values_file() {
    for (name, r) in every_rendering() {
        let cfg = config(&r);
        assert!(cfg.redis.url.is_some() || name.contains("external-redis"), "{name}: redis.url");
        assert_eq!(cfg.policy.file.as_deref(), Some(std::path::Path::new("/etc/triage/policy.yaml")), "{name}");
    }
}

#[test]
fn config_endpoints_are_the_in_cluster_services() {
    let r = render(None);
    let cfg = config(&r);
    for svc in SERVICES {
        let ep = cfg.services.get(svc).unwrap();
        let service: Service = r.get(&format!("triage-{svc}")).unwrap();
        let ports = service.spec.as_ref().unwrap().ports.as_ref().unwrap();
        let grpc = ports.iter().find(|p| p.name.as_deref() == Some("grpc")).unwrap();
        assert_eq!(ep.connect, format!("http://triage-{svc}:{}", grpc.port), "{svc}: connect");
        assert!(ep.listen.starts_with("0.0.0.0:"), "{svc}: listens on every interface");
        let d: Deployment = r.get(&format!("triage-{svc}")).unwrap();
        assert_eq!(port_of(&ep.listen), grpc_port(container(&d)), "{svc}: listen = containerPort");
        let selector = service.spec.as_ref().unwrap().selector.clone().unwrap();
        let labels = d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().labels.clone().unwrap();
        assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)), "{svc}: Service selects its pods");
    }
    // The gateway also serves the OpenAI-compatible HTTP port, on its Service too.
    let gw: Deployment = r.get("triage-gateway").unwrap();
    let http = container(&gw).ports.as_ref().unwrap().iter().find(|p| p.name.as_deref() == Some("http")).unwrap();
    assert_eq!(port_of(&cfg.server.http_listen), http.container_port);
    let svc: Service = r.get("triage-gateway").unwrap();
    assert!(svc.spec.unwrap().ports.unwrap().iter().any(|p| p.name.as_deref() == Some("http")));
}

#[test]
fn rollouts_and_shutdowns_drop_nothing() {
    for (name, r) in every_rendering() {
        let cfg = config(&r);
        let drain =
            cfg.server.drain_delay.as_secs_f64().ceil() as i64 + cfg.server.grace_period.as_secs_f64().ceil() as i64;
        for d in r.all::<Deployment>().unwrap() {
            let dn = d.metadata.name.clone().unwrap();
            let strategy = d.spec.as_ref().unwrap().strategy.clone().unwrap();
            assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"), "{name} {dn}");
            assert_eq!(strategy.rolling_update.unwrap().max_unavailable, Some(IntOrString::Int(0)), "{name} {dn}");
            let c = container(&d);
            let pre_stop =
                c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).unwrap_or_else(|| panic!("{dn}: preStop"));
            let cmd = pre_stop.exec.as_ref().unwrap().command.clone().unwrap();
            assert_eq!(cmd[0], "sleep", "{name} {dn}");
            let sleep: i64 = cmd[1].parse().unwrap();
            assert!(sleep >= 1, "{name} {dn}: preStop sleeps");
            let grace = spec(&d).termination_grace_period_seconds.unwrap();
            if c.args.as_ref().is_some_and(|a| a.first().map(String::as_str) == Some("serve")) {
                assert!(
                    grace > sleep + drain,
                    "{name} {dn}: terminationGracePeriodSeconds {grace} <= preStop {sleep} + drain {drain}"
                );
            } else {
                assert!(grace > sleep, "{name} {dn}");
            }
        }
    }
}

#[test]
fn grace_follows_the_configured_drain() {
    // gpu-off-values.yaml sets grace_period 45s, drain_delay 3s and an explicit 60 s.
    let r = render(Some("gpu-off-values.yaml"));
    let d: Deployment = r.get("triage-gateway").unwrap();
    assert_eq!(spec(&d).termination_grace_period_seconds, Some(60));
    // Defaults: preStop 5 + drain 2 + grace 20 + margin 5.
    let r = render(None);
    let d: Deployment = r.get("triage-ledger").unwrap();
    assert_eq!(spec(&d).termination_grace_period_seconds, Some(32));
    assert_eq!(duration_secs("1m30s").unwrap(), 90);
    assert_eq!(duration_secs("1500ms").unwrap(), 2);
}

#[test]
fn every_deployment_with_more_than_one_replica_has_a_pdb() {
    for (name, r) in every_rendering() {
        let pdbs: Vec<PodDisruptionBudget> = r.all().unwrap();
        let hpas: Vec<HorizontalPodAutoscaler> = r.all().unwrap();
        for d in r.all::<Deployment>().unwrap() {
            let dn = d.metadata.name.clone().unwrap();
            let replicas = match hpas.iter().find(|h| h.spec.as_ref().unwrap().scale_target_ref.name == dn) {
                Some(h) => h.spec.as_ref().unwrap().min_replicas.unwrap_or(1),
                None => d.spec.as_ref().unwrap().replicas.unwrap_or(1),
            };
            if replicas <= 1 {
                continue;
            }
            let labels = d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().labels.clone().unwrap();
            let covered = pdbs.iter().any(|p| {
                let sel = p.spec.as_ref().unwrap().selector.as_ref().unwrap().match_labels.clone().unwrap();
                sel.iter().all(|(k, v)| labels.get(k) == Some(v))
            });
            assert!(covered, "{name}: {dn} has {replicas} replicas and no PodDisruptionBudget");
        }
    }
}

#[test]
fn the_gateway_autoscales() {
    let r = render(None);
    let hpa: HorizontalPodAutoscaler = r.get("triage-gateway").unwrap();
    let s = hpa.spec.unwrap();
    assert_eq!(s.scale_target_ref.kind, "Deployment");
    assert_eq!(s.scale_target_ref.name, "triage-gateway");
    assert!(s.min_replicas.unwrap() >= 2 && s.max_replicas > s.min_replicas.unwrap());
    let d: Deployment = r.get("triage-gateway").unwrap();
    assert_eq!(d.spec.unwrap().replicas, None, "the HPA owns the replica count");
}

#[test]
fn every_container_has_probes() {
    for (name, r) in every_rendering() {
        let mut pods: Vec<(String, PodSpec)> = r
            .all::<Deployment>()
            .unwrap()
            .into_iter()
            .map(|d| (d.metadata.name.clone().unwrap(), d.spec.unwrap().template.spec.unwrap()))
            .collect();
        for s in r.all::<StatefulSet>().unwrap() {
            pods.push((s.metadata.name.clone().unwrap(), s.spec.unwrap().template.spec.unwrap()));
        }
        assert!(!pods.is_empty());
        for (pn, p) in pods {
            for c in &p.containers {
                assert!(c.liveness_probe.is_some(), "{name} {pn}/{}: livenessProbe", c.name);
                assert!(c.readiness_probe.is_some(), "{name} {pn}/{}: readinessProbe", c.name);
                assert!(c.startup_probe.is_some(), "{name} {pn}/{}: startupProbe", c.name);
            }
        }
    }
}

#[test]
fn triage_probes_are_native_grpc_health_checks_without_tls() {
    let r = render(None);
    for d in r.all::<Deployment>().unwrap() {
        let c = container(&d);
        let port = grpc_port(c);
        for p in [&c.liveness_probe, &c.readiness_probe, &c.startup_probe] {
            let grpc = p.as_ref().unwrap().grpc.as_ref().unwrap_or_else(|| panic!("{:?}: grpc probe", d.metadata.name));
            assert_eq!(grpc.port, port);
        }
    }
    assert_eq!(config(&r).server.health_listen, None, "no plain-text health port without TLS");
    // The kubelet's gRPC probe cannot speak TLS: with TLS on, every Triage process also serves
    // health in plain text on probes.healthPort, and its TLS port is probed there.
    let r = render(Some("tls-values.yaml"));
    let health_listen = config(&r).server.health_listen.expect("server.health_listen under TLS");
    assert_eq!(health_listen, "0.0.0.0:8086");
    for d in r.all::<Deployment>().unwrap().iter().filter(|d| d.metadata.name.as_deref() != Some("triage-operator")) {
        let c = container(d);
        let ports = c.ports.as_ref().unwrap();
        let health = ports.iter().find(|p| p.name.as_deref() == Some("health")).expect("a health container port");
        assert_eq!(health.container_port, port_of(&health_listen));
        for p in [&c.liveness_probe, &c.readiness_probe, &c.startup_probe] {
            let p = p.as_ref().unwrap();
            let grpc = p.grpc.as_ref().unwrap_or_else(|| panic!("{:?}: grpc probe under TLS", d.metadata.name));
            assert_eq!(grpc.port, health.container_port, "{:?}", d.metadata.name);
            assert!(p.tcp_socket.is_none());
        }
    }
    // A health port that is also a service port is refused at render time.
    let clash = Rendered::render(&[], &["probes.healthPort=8080"]).map(|_| ()).unwrap_err();
    assert!(clash.contains("probes.healthPort 8080 is components.gateway.httpPort too"), "{clash}");
}

fn gpu_limit(c: &Container) -> Option<Quantity> {
    c.resources.as_ref()?.limits.as_ref()?.get("nvidia.com/gpu").cloned()
}

fn on_gpu_pool(s: &PodSpec) -> bool {
    let selected =
        s.node_selector.as_ref().is_some_and(|n| n.get("triage.dev/pool").map(String::as_str) == Some("gpu"));
    let tolerated = s.tolerations.as_ref().is_some_and(|ts| {
        ts.iter().any(|t| t.key.as_deref() == Some("nvidia.com/gpu") && t.effect.as_deref() == Some("NoSchedule"))
    });
    selected && tolerated
}

#[test]
fn the_classifier_runs_on_the_gpu_pool_with_a_generous_startup_probe() {
    let r = render(None);
    let d: Deployment = r.get("triage-classifier").unwrap();
    assert!(on_gpu_pool(spec(&d)), "classifier: GPU nodeSelector and nvidia.com/gpu toleration");
    let c = container(&d);
    assert_eq!(gpu_limit(c), Some(Quantity("1".into())));
    let sp = c.startup_probe.as_ref().unwrap();
    assert!(sp.grpc.is_some(), "startup waits for SERVING (after model load and warm-up)");
    let budget = sp.period_seconds.unwrap() * sp.failure_threshold.unwrap();
    assert!(budget >= 600, "startupProbe allows {budget} s for model load");
    for svc in ["gateway", "policy", "backends", "context", "ledger", "operator"] {
        let d: Deployment = r.get(&format!("triage-{svc}")).unwrap();
        assert!(!on_gpu_pool(spec(&d)) && gpu_limit(container(&d)).is_none(), "{svc} stays off the GPU pool");
    }
    // GPU off: a CPU pod with the embedded classifier.
    let r = render(Some("gpu-off-values.yaml"));
    let d: Deployment = r.get("triage-classifier").unwrap();
    assert!(!on_gpu_pool(spec(&d)) && gpu_limit(container(&d)).is_none());
}

#[test]
fn model_servers_and_model_volumes() {
    let r = render(Some("model-servers-values.yaml"));
    let d: Deployment = r.get("triage-classifier").unwrap();
    assert_eq!(container(&d).image.as_deref(), Some("ghcr.io/triage-router/triage:0.1.0-cuda"));
    let vol = spec(&d).volumes.as_ref().unwrap().iter().find(|v| v.name == "models").unwrap();
    let claim = vol.persistent_volume_claim.as_ref().unwrap().claim_name.clone();
    let pvc: PersistentVolumeClaim = r.get(&claim).unwrap();
    let pv: PersistentVolume = r.get(pvc.spec.as_ref().unwrap().volume_name.as_ref().unwrap()).unwrap();
    assert_eq!(pv.spec.as_ref().unwrap().csi.as_ref().unwrap().driver, "s3.csi.aws.com", "object storage via CSI");
    let mount = container(&d).volume_mounts.as_ref().unwrap().iter().find(|m| m.name == "models").unwrap();
    assert_eq!(mount.mount_path, "/models");
    for (server, replicas) in [("mistral-small", 2), ("vllm-llama", 1)] {
        let d: Deployment = r.get(&format!("triage-{server}")).unwrap();
        assert!(on_gpu_pool(spec(&d)), "{server} on the GPU pool");
        assert_eq!(gpu_limit(container(&d)), Some(Quantity("1".into())));
        assert_eq!(d.spec.as_ref().unwrap().replicas, Some(replicas));
        let _: Service = r.get(&format!("triage-{server}")).unwrap();
    }
    let pvc: PersistentVolumeClaim = r.get("triage-mistral-small-models").unwrap();
    assert_eq!(pvc.spec.unwrap().storage_class_name.as_deref(), Some("oci-bv"));
    let d: Deployment = r.get("triage-vllm-llama").unwrap();
    let vol = spec(&d).volumes.as_ref().unwrap().iter().find(|v| v.name == "models").unwrap();
    assert_eq!(vol.host_path.as_ref().unwrap().path, "/mnt/models");
}

#[test]
fn redis_bundled_with_persistence_or_external() {
    let r = render(None);
    let s: StatefulSet = r.get("triage-redis").unwrap();
    let vct = s.spec.as_ref().unwrap().volume_claim_templates.clone().unwrap();
    assert_eq!(vct[0].metadata.name.as_deref(), Some("data"));
    assert_eq!(config(&r).redis.url.as_deref(), Some("redis://triage-redis:6379/0"));
    let _: Service = r.get("triage-redis").unwrap();
    // No persistence: an emptyDir, no claims.
    let r = render(Some("gpu-off-values.yaml"));
    let s: StatefulSet = r.get("triage-redis").unwrap();
    assert!(s.spec.as_ref().unwrap().volume_claim_templates.is_none());
    // External: no StatefulSet; every Triage container reads the URL from the Secret.
    let r = render(Some("external-redis-values.yaml"));
    assert!(r.all::<StatefulSet>().unwrap().is_empty());
    assert!(config(&r).redis.url.is_none());
    for d in r.all::<Deployment>().unwrap() {
        let env = container(&d).env.clone().unwrap();
        let url = env.iter().find(|e| e.name == "TRIAGE_REDIS_URL").unwrap_or_else(|| panic!("{:?}", d.metadata.name));
        let key = url.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!((key.name.as_str(), key.key.as_str()), ("triage-redis", "url"));
    }
}

fn mount_of<'a>(d: &'a Deployment, path: &str) -> Option<(&'a str, String)> {
    let m = container(d).volume_mounts.as_ref()?.iter().find(|m| m.mount_path == path)?;
    let v = spec(d).volumes.as_ref()?.iter().find(|v| v.name == m.name)?;
    Some((m.name.as_str(), v.secret.as_ref()?.secret_name.clone()?))
}

#[test]
fn provider_keys_are_mounted_where_the_config_reads_them() {
    let r = render(None);
    let cfg = config(&r);
    let backends: Deployment = r.get("triage-backends").unwrap();
    let (_, secret) = mount_of(&backends, "/var/run/secrets/triage").expect("backends mounts the provider keys");
    assert_eq!(secret, "triage-provider-keys");
    for (name, m) in &cfg.models {
        if let Ok(v) = serde_json::to_value(&m.provider)
            && let Some(file) = v.pointer("/api_key/file").and_then(|f| f.as_str())
        {
            assert!(file.starts_with("/var/run/secrets/triage/"), "{name}: key file {file} outside the mount");
        }
    }
    for svc in ["gateway", "classifier", "policy", "context", "ledger", "operator"] {
        let d: Deployment = r.get(&format!("triage-{svc}")).unwrap();
        assert!(mount_of(&d, "/var/run/secrets/triage").is_none(), "{svc} must not see provider keys");
    }
    // An existing Secret replaces the chart's.
    let r = render(Some("tls-values.yaml"));
    let backends: Deployment = r.get("triage-backends").unwrap();
    assert_eq!(mount_of(&backends, "/var/run/secrets/triage").unwrap().1, "triage-provider-keys");
    // Only the operator's Admin token is the chart's own (generated once, kept by `lookup`).
    let own: Vec<&str> =
        r.of_kind("Secret").iter().filter_map(|s| s.pointer("/metadata/name").and_then(|n| n.as_str())).collect();
    assert_eq!(own, ["triage-admin"], "every other Secret is an existing one");
}

#[test]
fn the_admin_token_reaches_every_triage_pod_and_the_config() {
    let r = render(None);
    assert_eq!(config(&r).server.admin_token.and_then(|t| t.env).as_deref(), Some("TRIAGE_ADMIN_TOKEN"));
    for svc in ["gateway", "classifier", "policy", "backends", "context", "ledger", "operator"] {
        let d: Deployment = r.get(&format!("triage-{svc}")).unwrap();
        let containers = d.spec.unwrap().template.spec.unwrap().containers;
        let env = containers[0].env.clone().unwrap_or_default();
        let token = env.iter().find(|e| e.name == "TRIAGE_ADMIN_TOKEN").unwrap_or_else(|| panic!("{svc}: no token"));
        let from = token.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).unwrap();
        assert_eq!((from.name.as_str(), from.key.as_str()), ("triage-admin", "token"), "{svc}");
    }
}

#[test]
fn every_runtime_gets_as_many_workers_as_its_cpu_limit() {
    let r = render(None);
    for svc in ["gateway", "classifier", "policy", "backends", "context", "ledger", "operator"] {
        let d: Deployment = r.get(&format!("triage-{svc}")).unwrap();
        let containers = d.spec.unwrap().template.spec.unwrap().containers;
        let env = containers[0].env.clone().unwrap_or_default();
        let workers = env.iter().find(|e| e.name == "TOKIO_WORKER_THREADS").unwrap_or_else(|| panic!("{svc}"));
        let from = workers.value_from.as_ref().and_then(|v| v.resource_field_ref.as_ref()).unwrap();
        assert_eq!(from.resource, "limits.cpu", "{svc}");
        assert_eq!(from.divisor.as_ref().map(|q| q.0.as_str()), Some("1"), "{svc}: whole cores");
        assert!(from.container_name.is_none(), "{svc}: its own container");
    }
}

#[test]
fn tls_and_api_keys_come_from_mounted_secrets() {
    let r = render(Some("tls-values.yaml"));
    let cfg = config(&r);
    let server = cfg.server.tls.as_ref().expect("server.tls");
    let mtls = cfg.services.tls.as_ref().expect("services.tls");
    let keys_file = cfg.auth.keys_file.clone().expect("auth.keys_file");
    for d in r.all::<Deployment>().unwrap().iter().filter(|d| d.metadata.name.as_deref() != Some("triage-operator")) {
        let dn = d.metadata.name.clone().unwrap();
        let (_, secret) = mount_of(d, "/var/run/secrets/triage-tls").unwrap_or_else(|| panic!("{dn}: TLS mount"));
        assert_eq!(secret, "triage-tls");
        let (_, auth) = mount_of(d, "/var/run/secrets/triage-auth").unwrap_or_else(|| panic!("{dn}: auth mount"));
        assert_eq!(auth, "triage-api-keys");
    }
    let file =
        |p: &std::path::Path| p.strip_prefix("/var/run/secrets/triage-tls").unwrap().to_string_lossy().into_owned();
    assert_eq!((file(&server.cert), file(&server.key)), ("tls.crt".into(), "tls.key".into()));
    assert_eq!(
        (file(&mtls.ca), file(&mtls.cert), file(&mtls.key)),
        ("ca.crt".into(), "tls.crt".into(), "tls.key".into())
    );
    assert_eq!(keys_file, PathBuf::from("/var/run/secrets/triage-auth/keys.yaml"));
    // Without TLS nothing is mounted and the config has no TLS.
    let r = render(None);
    assert!(config(&r).server.tls.is_none() && config(&r).services.tls.is_none());
    let d: Deployment = r.get("triage-gateway").unwrap();
    assert!(mount_of(&d, "/var/run/secrets/triage-tls").is_none());
}

#[test]
fn the_chart_drift_suite_is_the_built_in_one() {
    let chart = std::fs::read_to_string(chart_dir().join("files/drift-suite.yaml")).unwrap();
    let repo = std::fs::read_to_string(repo_root().join("config/drift-suite.yaml")).unwrap();
    assert!(chart == repo, "helm/triage/files/drift-suite.yaml differs from config/drift-suite.yaml: copy it over");
    let r = render(None);
    let cm: ConfigMap = r.get("triage-drift-suite").unwrap();
    assert_eq!(cm.data.unwrap().get("drift-suite.yaml").map(|s| s.trim_end()), Some(repo.trim_end()));
}

#[test]
fn the_chart_policy_is_the_built_in_one() {
    let chart = std::fs::read_to_string(chart_dir().join("files/policy.yaml")).unwrap();
    let repo = std::fs::read_to_string(repo_root().join("config/policy.yaml")).unwrap();
    assert!(chart == repo, "helm/triage/files/policy.yaml differs from config/policy.yaml: copy it over");
    let r = render(None);
    let cm: ConfigMap = r.get("triage-policy").unwrap();
    assert_eq!(cm.data.unwrap().get("policy.yaml").map(|s| s.trim_end()), Some(repo.trim_end()));
}
