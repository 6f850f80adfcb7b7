//! The Kubernetes and gRPC side: watch the resources (and the Triage pods), and on any change
//! run one reconcile pass over the whole namespace, because a model set is pushed whole and
//! one resource's validity depends on the others (fallbacks, tiers, the policy's targets).

use crate::crd::{LlmModel, LlmModelStatus, RoutingPolicy, RoutingPolicyStatus};
use crate::plan::{self, LastGood, ModelInput, PolicyInput};
use crate::push::{GrpcPusher, PushError, PushOutcome, Pusher, ensure_models, ensure_policy};
use crate::{Error, Result};
use futures::{Stream, StreamExt};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use triage_core::Config;
use triage_core::config::ModelSet;

/// Field manager of every status the operator writes.
pub const FIELD_MANAGER: &str = "triage-operator";

/// How the operator finds the Triage processes to push to.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Label selector of the EndpointSlices of Triage services
    /// (`app.kubernetes.io/part-of=triage`); `None` uses `static_endpoints` only.
    pub label_selector: Option<String>,
    /// Name of the port that serves `triage.v1.Admin` in those slices.
    pub port_name: String,
    /// Admin URLs always pushed to (`http://127.0.0.1:50051`), e.g. in tests.
    pub static_endpoints: Vec<String>,
}

impl Default for Discovery {
    fn default() -> Self {
        Self {
            label_selector: Some("app.kubernetes.io/part-of=triage".into()),
            port_name: "grpc".into(),
            static_endpoints: Vec::new(),
        }
    }
}

/// mTLS towards the Triage processes (the services' `services.tls`).
#[derive(Debug, Clone)]
pub struct OperatorTls {
    /// CA that signs the processes' server certificates (PEM).
    pub ca: PathBuf,
    /// Client certificate and key (PEM), when the processes require mTLS.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Name to verify the server certificates against; pods are reached by IP, so this is
    /// usually the service's DNS name in the certificate.
    pub domain_name: Option<String>,
}

/// Everything the operator needs.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Namespace watched (resources and Triage pods).
    pub namespace: String,
    /// The Triage config file whose models the resources overlay; `None` is the embedded default.
    pub base_config: Option<PathBuf>,
    /// Where the Triage processes are.
    pub discovery: Discovery,
    /// TLS towards them; plain TCP when absent.
    pub tls: Option<OperatorTls>,
    /// Full pass even without events, so restarted processes get the set again.
    pub resync: Duration,
    /// Wait after an event before a pass, so a `kubectl apply` of many resources is one push.
    pub debounce: Duration,
    /// Deadline of each Admin call.
    pub push_timeout: Duration,
    /// Bearer token of the processes' Admin service (`server.admin_token`).
    pub admin_token: Option<String>,
}

impl OperatorConfig {
    /// Defaults for `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            base_config: None,
            discovery: Discovery::default(),
            tls: None,
            resync: Duration::from_secs(60),
            debounce: Duration::from_millis(500),
            push_timeout: Duration::from_secs(10),
            admin_token: None,
        }
    }
}

/// What one pass needs.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Namespace.
    pub namespace: String,
    /// Base config (the file's models and everything the validation checks them against).
    pub base: Config,
    /// Discovery.
    pub discovery: Discovery,
    /// Admin calls.
    pub pusher: Arc<dyn Pusher>,
}

/// Memory between passes: the last accepted form of each resource, and the last good policy.
#[derive(Debug, Default)]
pub struct State {
    /// By LlmModel name.
    pub last_good: BTreeMap<String, LastGood>,
    /// `(policy_yaml, revision)`.
    pub last_policy: Option<(String, String)>,
}

/// Runs the operator until `shutdown`: in-cluster (or kubeconfig) client, gRPC pusher.
pub async fn run(cfg: OperatorConfig, shutdown: CancellationToken) -> Result<()> {
    let client = Client::try_default().await.map_err(|e| Error::KubeConfig(e.to_string()))?;
    let tls = match &cfg.tls {
        Some(t) => {
            let identity = t.identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            let mut tls = triage_core::grpc::client_tls(&t.ca, identity)?;
            if let Some(d) = &t.domain_name {
                tls = tls.domain_name(d.clone());
            }
            Some(tls)
        }
        None => None,
    };
    let mut pusher = GrpcPusher::new(tls, cfg.push_timeout);
    if let Some(t) = &cfg.admin_token {
        pusher = pusher.with_token(t).map_err(|e| Error::KubeConfig(format!("admin token: {e}")))?;
    }
    let pusher = Arc::new(pusher);
    run_with(client, cfg, pusher, shutdown).await
}

/// [`run`] with a given client and pusher.
pub async fn run_with(
    client: Client,
    cfg: OperatorConfig,
    pusher: Arc<dyn Pusher>,
    shutdown: CancellationToken,
) -> Result<()> {
    let base = Config::load_or_default(cfg.base_config.as_deref())?;
    let ctx =
        Context { client: client.clone(), namespace: cfg.namespace.clone(), base, discovery: cfg.discovery, pusher };
    let wake = Arc::new(Notify::new());
    let ns = cfg.namespace.as_str();
    let mut watchers = vec![
        tokio::spawn(nudge(
            watcher(Api::<LlmModel>::namespaced(client.clone(), ns), watcher::Config::default()),
            wake.clone(),
        )),
        tokio::spawn(nudge(
            watcher(Api::<RoutingPolicy>::namespaced(client.clone(), ns), watcher::Config::default()),
            wake.clone(),
        )),
    ];
    if let Some(sel) = &ctx.discovery.label_selector {
        let wc = watcher::Config::default().labels(sel);
        watchers.push(tokio::spawn(nudge(watcher(Api::<EndpointSlice>::namespaced(client, ns), wc), wake.clone())));
    }
    let mut state = State::default();
    let mut backoff = Duration::from_secs(1);
    let mut next = Duration::ZERO;
    tracing::info!(namespace = %ctx.namespace, "operator started");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(cfg.debounce) => {}
                }
            }
            _ = tokio::time::sleep(next) => {}
        }
        next = match reconcile(&ctx, &mut state).await {
            Ok(after) => {
                backoff = Duration::from_secs(1);
                after.unwrap_or(cfg.resync).min(cfg.resync)
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "reconcile failed");
                let b = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(300));
                b
            }
        };
    }
    for w in watchers {
        w.abort();
    }
    tracing::info!("operator stopped");
    Ok(())
}

/// Wakes the loop on every change that matters: a new generation or a deletion of a
/// resource, any change of the pods' slices. Status writes (the operator's own) only bump
/// `resourceVersion`, so they do not loop.
async fn nudge<K>(stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send, wake: Arc<Notify>)
where
    K: Resource + Clone + Send + 'static,
{
    let mut seen: HashMap<String, Option<i64>> = HashMap::new();
    let mut stream = std::pin::pin!(stream.default_backoff());
    while let Some(ev) = stream.next().await {
        let fire = match ev {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                // EndpointSlices have no generation; every change of theirs counts.
                let generation = o.meta().generation;
                generation.is_none() || seen.insert(o.name_any(), generation) != Some(generation)
            }
            Ok(watcher::Event::Delete(o)) => {
                seen.remove(&o.name_any());
                true
            }
            Ok(watcher::Event::InitDone) => true,
            Ok(watcher::Event::Init) => false,
            Err(e) => {
                tracing::debug!(error = %e, "watch interrupted; retrying");
                false
            }
        };
        if fire {
            wake.notify_one();
        }
    }
}

/// Admin URLs of the ready endpoints of `slices` on the port named `port_name`.
pub fn endpoints_from_slices(slices: &[EndpointSlice], port_name: &str, scheme: &str) -> Vec<String> {
    let mut out = Vec::new();
    for s in slices {
        let port = s.ports.iter().flatten().find(|p| p.name.as_deref() == Some(port_name)).and_then(|p| p.port);
        let Some(port) = port else { continue };
        for ep in &s.endpoints {
            if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for a in &ep.addresses {
                let host = if a.contains(':') { format!("[{a}]") } else { a.clone() };
                out.push(format!("{scheme}://{host}:{port}"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

async fn endpoints(ctx: &Context) -> Result<Vec<String>> {
    let mut out = ctx.discovery.static_endpoints.clone();
    if let Some(sel) = &ctx.discovery.label_selector {
        let api = Api::<EndpointSlice>::namespaced(ctx.client.clone(), &ctx.namespace);
        let slices = api.list(&ListParams::default().labels(sel)).await?;
        // `http://` is upgraded to TLS by the channel when TLS is configured.
        out.extend(endpoints_from_slices(&slices.items, &ctx.discovery.port_name, "http"));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The config's own policy, read now (a mounted ConfigMap changes under the process): its
/// `policy.file`, or the built-in policy. Unreadable: logged, and nothing is reverted.
fn base_policy_text(config: &Config) -> Option<String> {
    let Some(file) = &config.policy.file else { return Some(triage_policy::DEFAULT_POLICY_YAML.to_string()) };
    let path = config.resolve_path(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "base policy unreadable; processes keep their policy");
            None
        }
    }
}

/// One pass: list, plan, push to every endpoint, write the statuses that changed. Returns
/// when to look again without an event (a drain ending, a failed push).
pub async fn reconcile(ctx: &Context, state: &mut State) -> Result<Option<Duration>> {
    let now = SystemTime::now();
    let models_api = Api::<LlmModel>::namespaced(ctx.client.clone(), &ctx.namespace);
    let policies_api = Api::<RoutingPolicy>::namespaced(ctx.client.clone(), &ctx.namespace);
    let mut models = models_api.list(&ListParams::default()).await?.items;
    models.retain(|m| m.meta().deletion_timestamp.is_none());
    models.sort_by_key(|m| m.name_any());
    let mut policies = policies_api.list(&ListParams::default()).await?.items;
    policies.retain(|p| p.meta().deletion_timestamp.is_none());
    let inputs: Vec<ModelInput> = models
        .iter()
        .map(|m| ModelInput {
            name: m.name_any(),
            generation: m.meta().generation.unwrap_or(0),
            spec: m.spec.clone(),
            status: m.status.clone(),
        })
        .collect();
    let mplan = plan::plan_models(&ctx.base, &inputs, &state.last_good, now);
    let yaml = plan::models_yaml(&mplan.models).map_err(Error::Serialize)?;
    let eps = endpoints(ctx).await?;
    ctx.pusher.retain(&eps);
    let mut retry = false;
    let mut rejected = None;
    for ep in &eps {
        match ensure_models(ctx.pusher.as_ref(), ep, &yaml, &mplan.revision).await {
            PushOutcome::Current => {}
            PushOutcome::Applied => tracing::info!(endpoint = %ep, revision = %mplan.revision, "models applied"),
            PushOutcome::Failed(PushError::Rejected(msg)) => {
                tracing::warn!(endpoint = %ep, error = %msg, "models refused");
                rejected = Some(format!("refused by {ep}: {msg}"));
            }
            PushOutcome::Failed(e) => {
                tracing::warn!(endpoint = %ep, error = %e, "models not pushed; retrying");
                retry = true;
            }
        }
    }
    let newly_accepted: Vec<String> = mplan
        .accepted
        .iter()
        .filter(|(n, g)| state.last_good.get(*n).map(|o| o.generation) != Some(g.generation))
        .map(|(n, _)| n.clone())
        .collect();
    if rejected.is_none() {
        state.last_good.extend(mplan.accepted.clone());
    }
    state.last_good.retain(|n, _| inputs.iter().any(|i| &i.name == n));

    let served_cfg = ctx
        .base
        .with_models(&ModelSet { models: mplan.models.clone(), tiers: None }, std::path::Path::new("<models>"))
        .unwrap_or_else(|_| ctx.base.clone());
    let pinputs: Vec<PolicyInput> = policies
        .iter()
        .map(|p| PolicyInput {
            name: p.name_any(),
            generation: p.meta().generation.unwrap_or(0),
            created: p.meta().creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
            spec: p.spec.clone(),
            status: p.status.clone(),
        })
        .collect();
    let base_policy = match pinputs.is_empty() {
        true => base_policy_text(&ctx.base),
        false => None,
    };
    let mut pplan = plan::plan_policy(&served_cfg, base_policy.as_deref(), &pinputs);
    if let Some((pyaml, prev)) = pplan.push.clone().or_else(|| state.last_policy.clone()) {
        let mut refused = None;
        for ep in &eps {
            match ensure_policy(ctx.pusher.as_ref(), ep, &pyaml, &prev).await {
                PushOutcome::Current | PushOutcome::Applied => {}
                PushOutcome::Failed(PushError::Rejected(msg)) => refused = Some(format!("refused by {ep}: {msg}")),
                PushOutcome::Failed(e) => {
                    tracing::warn!(endpoint = %ep, error = %e, "policy not pushed; retrying");
                    retry = true;
                }
            }
        }
        match (refused, &pplan.push) {
            (Some(msg), Some((_, rev))) => {
                if let Some(name) = rev.split('@').next() {
                    pplan.verdicts.insert(name.to_string(), (false, "Rejected".into(), msg));
                }
            }
            (None, Some(p)) => state.last_policy = Some(p.clone()),
            _ => {}
        }
    }

    for (m, input) in models.iter().zip(&inputs) {
        let verdict = mplan.verdicts.get(&input.name).cloned().unwrap_or(plan::Verdict::Accepted);
        let desired = match &rejected {
            Some(msg) if newly_accepted.contains(&input.name) => {
                plan::rejected_status(m.status.as_ref(), input.generation, msg.clone(), now)
            }
            _ => plan::model_status(m.status.as_ref(), input.generation, &verdict, mplan.serving.get(&input.name), now),
        };
        if m.status.as_ref() != Some(&desired) {
            retry |= !write_status::<LlmModel, LlmModelStatus>(&models_api, &input.name, &desired).await?;
        }
    }
    for (p, input) in policies.iter().zip(&pinputs) {
        let Some(v) = pplan.verdicts.get(&input.name) else { continue };
        let desired = plan::policy_status(p.status.as_ref(), input.generation, v, now);
        if p.status.as_ref() != Some(&desired) {
            retry |= !write_status::<RoutingPolicy, RoutingPolicyStatus>(&policies_api, &input.name, &desired).await?;
        }
    }
    let retry_after = retry.then_some(Duration::from_secs(10));
    Ok([mplan.requeue_after, retry_after].into_iter().flatten().min())
}

/// Server-side apply of the status subresource. A resource deleted since the list is not an
/// error; a conflict is retried a few times, then left to the next pass (`Ok(false)`).
async fn write_status<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api.patch_status(name, &params, &Patch::Apply(&body)).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                tracing::debug!(name, "gone before its status was written");
                return Ok(true);
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 3 => {
                tracing::debug!(name, attempt, "status conflict; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                tracing::warn!(name, "status conflict persists; next pass retries");
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
    }
}
