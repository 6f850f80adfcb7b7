//! Typed assertions on what surrounds the workloads: NetworkPolicies, the operator's RBAC,
//! the drift CronJob, the `helm test` pod and the ServiceMonitor.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::path::PathBuf;
use triage_deploy::{Rendered, chart_dir};

fn render(file: Option<&str>) -> Rendered {
    let paths: Vec<PathBuf> = file.iter().map(|f| chart_dir().join("ci").join(f)).collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    Rendered::render(&refs, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn release_selector() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "triage".to_string()),
        ("app.kubernetes.io/instance".to_string(), "triage".to_string()),
    ])
}

fn pod_labels(d: &Deployment) -> BTreeMap<String, String> {
    d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().labels.clone().unwrap()
}

fn selects(np: &NetworkPolicy, labels: &BTreeMap<String, String>) -> bool {
    let sel = np.spec.as_ref().unwrap().pod_selector.as_ref().and_then(|s| s.match_labels.clone()).unwrap_or_default();
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn only_the_gateway_is_reachable_from_outside_the_namespace() {
    let r = render(None);
    let policies: Vec<NetworkPolicy> = r.all().unwrap();
    for d in r.all::<Deployment>().unwrap() {
        let dn = d.metadata.name.clone().unwrap();
        let labels = pod_labels(&d);
        let mine: Vec<&NetworkPolicy> = policies.iter().filter(|p| selects(p, &labels)).collect();
        assert_eq!(mine.len(), 1, "{dn}: exactly one NetworkPolicy selects it");
        let spec = mine[0].spec.as_ref().unwrap();
        assert_eq!(spec.policy_types.clone().unwrap(), vec!["Ingress".to_string()], "{dn}");
        let rules = spec.ingress.clone().unwrap();
        if dn == "triage-gateway" {
            // Any source (load balancer, other namespaces) on the gRPC and HTTP ports.
            assert_eq!(rules.len(), 1);
            assert!(rules[0].from.is_none(), "gateway: no `from`, reachable from everywhere");
            let ports: Vec<IntOrString> = rules[0].ports.clone().unwrap().into_iter().filter_map(|p| p.port).collect();
            assert_eq!(ports, vec![IntOrString::String("grpc".into()), IntOrString::String("http".into())]);
        } else {
            for rule in &rules {
                for peer in rule.from.as_ref().expect("a peer list") {
                    assert!(peer.namespace_selector.is_none() && peer.ip_block.is_none(), "{dn}: same namespace only");
                    let sel = peer.pod_selector.as_ref().unwrap().match_labels.clone().unwrap();
                    assert_eq!(sel, release_selector(), "{dn}: only this release's pods");
                }
            }
        }
    }
}

#[test]
fn redis_is_reachable_only_from_triage_pods() {
    let r = render(None);
    let np: NetworkPolicy = r.get("triage-redis").unwrap();
    let spec = np.spec.unwrap();
    let sel = spec.pod_selector.unwrap().match_labels.unwrap();
    assert_eq!(sel.get("app.kubernetes.io/component").map(String::as_str), Some("redis"));
    let rules = spec.ingress.unwrap();
    assert_eq!(rules.len(), 1);
    let peers = rules[0].from.clone().unwrap();
    assert_eq!(peers.len(), 1);
    assert!(peers[0].namespace_selector.is_none() && peers[0].ip_block.is_none());
    assert_eq!(peers[0].pod_selector.as_ref().unwrap().match_labels.clone().unwrap(), release_selector());
    assert_eq!(rules[0].ports.clone().unwrap()[0].port, Some(IntOrString::String("redis".into())));
    // Every Triage pod (the operator included, which pushes to every pod) matches the peers.
    for d in r.all::<Deployment>().unwrap() {
        let labels = pod_labels(&d);
        assert!(release_selector().iter().all(|(k, v)| labels.get(k) == Some(v)), "{:?}", d.metadata.name);
    }
    // No NetworkPolicies when turned off.
    assert!(render(Some("gpu-off-values.yaml")).all::<NetworkPolicy>().unwrap().is_empty());
}

fn has_rule(rules: &[PolicyRule], group: &str, resource: &str, verbs: &[&str]) -> bool {
    rules.iter().any(|r| {
        r.api_groups.as_ref().is_some_and(|g| g.iter().any(|g| g == group))
            && r.resources.as_ref().is_some_and(|rs| rs.iter().any(|x| x == resource))
            && verbs.iter().all(|v| r.verbs.iter().any(|x| x == v))
    })
}

fn assert_operator_rules(rules: &[PolicyRule]) {
    for res in ["llmmodels", "routingpolicies"] {
        assert!(has_rule(rules, "triage.dev", res, &["get", "list", "watch", "patch"]), "{res}");
        assert!(has_rule(rules, "triage.dev", &format!("{res}/status"), &["get", "patch"]), "{res}/status");
    }
    assert!(has_rule(rules, "discovery.k8s.io", "endpointslices", &["get", "list", "watch"]));
    assert!(has_rule(rules, "", "events", &["create"]));
}

#[test]
fn the_operator_has_its_own_account_and_only_the_rights_it_needs() {
    let r = render(None);
    let role: Role = r.get("triage-operator").unwrap();
    assert_operator_rules(&role.rules.unwrap());
    let binding: RoleBinding = r.get("triage-operator").unwrap();
    assert_eq!(binding.role_ref.kind, "Role");
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!((subject.kind.as_str(), subject.name.as_str()), ("ServiceAccount", "triage-operator"));
    let d: Deployment = r.get("triage-operator").unwrap();
    let spec = d.spec.unwrap().template.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("triage-operator"));
    // The services get no API token.
    for svc in ["gateway", "classifier", "policy", "backends", "context", "ledger"] {
        let d: Deployment = r.get(&format!("triage-{svc}")).unwrap();
        let s = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(s.automount_service_account_token, Some(false), "{svc}");
        assert_ne!(s.service_account_name.as_deref(), Some("triage-operator"), "{svc}");
    }
    assert!(r.all::<ClusterRole>().unwrap().is_empty());
    // Watching every namespace: the same rules cluster-wide.
    let r = render(Some("external-redis-values.yaml"));
    let roles: Vec<ClusterRole> = r.all().unwrap();
    assert_eq!(roles.len(), 1);
    assert_operator_rules(roles[0].rules.as_ref().unwrap());
    let bindings: Vec<ClusterRoleBinding> = r.all().unwrap();
    assert_eq!(bindings[0].role_ref.name, roles[0].metadata.name.clone().unwrap());
}

#[test]
fn the_drift_cronjob_runs_the_suite_from_a_configmap() {
    let r = render(None);
    let cj: CronJob = r.get("triage-drift").unwrap();
    let spec = cj.spec.unwrap();
    assert!(!spec.schedule.is_empty());
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let job = spec.job_template.spec.unwrap();
    // Exit 3 (a model moved) fails the Job without a retry.
    let rule = &job.pod_failure_policy.as_ref().unwrap().rules[0];
    assert_eq!(rule.action, "FailJob");
    assert_eq!(rule.on_exit_codes.as_ref().unwrap().values, vec![3]);
    let pod = job.template.spec.unwrap();
    let c = &pod.containers[0];
    assert_eq!(
        c.args.clone().unwrap(),
        ["drift", "run", "--config", "/etc/triage/triage.yaml", "--suite", "/etc/triage/drift-suite.yaml"]
            .map(String::from)
            .to_vec()
    );
    let config = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "config").unwrap();
    let sources: Vec<String> = config
        .projected
        .as_ref()
        .unwrap()
        .sources
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|s| s.config_map.as_ref().map(|c| c.name.clone()))
        .collect();
    assert!(sources.contains(&"triage-drift-suite".to_string()) && sources.contains(&"triage-config".to_string()));
    let mounts = c.volume_mounts.as_ref().unwrap();
    assert!(mounts.iter().any(|m| m.name == "config" && m.mount_path == "/etc/triage"));
    assert!(mounts.iter().any(|m| m.mount_path == "/var/run/secrets/triage"), "provider keys");
    let cm: ConfigMap = r.get("triage-drift-suite").unwrap();
    let suite: serde_yaml::Value = serde_yaml::from_str(cm.data.unwrap().get("drift-suite.yaml").unwrap()).unwrap();
    let queries = suite.get("queries").and_then(|q| q.as_sequence()).expect("queries: [...]");
    assert!(!queries.is_empty());
    for q in queries {
        assert!(q.get("id").and_then(|v| v.as_str()).is_some() && q.get("query").and_then(|v| v.as_str()).is_some());
    }
    // Off: no CronJob, no suite.
    let r = render(Some("gpu-off-values.yaml"));
    assert!(r.all::<CronJob>().unwrap().is_empty() && r.get::<ConfigMap>("triage-drift-suite").is_err());
}

#[test]
fn helm_test_routes_one_turn_through_the_gateway() {
    let r = render(None);
    let pod: Pod = r.get("triage-test-route").unwrap();
    let ann = pod.metadata.annotations.clone().unwrap();
    assert_eq!(ann.get("helm.sh/hook").map(String::as_str), Some("test"));
    assert!(r.text.contains("templates/tests/"), "the test pod lives in templates/tests/");
    let spec = pod.spec.unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    let args = spec.containers[0].args.clone().unwrap();
    assert_eq!(args[0], "route");
    let addr = args.iter().position(|a| a == "--addr").map(|i| args[i + 1].clone()).unwrap();
    assert_eq!(addr, "http://triage-gateway:50051");
    // Under TLS it trusts the CA from the Secret and sends the API key.
    let r = render(Some("tls-values.yaml"));
    let pod: Pod = r.get("triage-test-route").unwrap();
    let c = &pod.spec.as_ref().unwrap().containers[0];
    let args = c.args.clone().unwrap();
    assert!(args.contains(&"https://triage-gateway:50051".to_string()) && args.contains(&"--ca".to_string()));
    let env = c.env.clone().unwrap();
    assert!(env.iter().any(|e| e.name == "TRIAGE_API_KEY"));
}

#[test]
fn service_monitors_scrape_every_service_port() {
    assert!(render(None).of_kind("ServiceMonitor").is_empty(), "off by default");
    let r = render(Some("tls-values.yaml"));
    let sms = r.of_kind("ServiceMonitor");
    assert_eq!(sms.len(), 2);
    for sm in sms {
        assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
        let ep = &sm["spec"]["endpoints"][0];
        assert_eq!((ep["port"].as_str(), ep["path"].as_str()), (Some("grpc"), Some("/metrics")));
        assert_eq!(ep["scheme"], "https");
    }
}
