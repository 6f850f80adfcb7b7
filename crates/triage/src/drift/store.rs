//! Where drift runs live: in Redis under the configured key prefix when Redis is configured
//! (`PREFIX:drift:baseline:MODEL`, `PREFIX:drift:last`), else as JSON files in a directory
//! (`DIR/baselines/MODEL.json`, `DIR/last-run.json`). `--store DIR` forces the directory.

use super::compare::ModelDrift;
use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One answer of a model to one suite query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub id: String,
    pub text: String,
    /// Why the call failed, when it did (the text is then empty).
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub output_tokens: u32,
    pub refusal: bool,
}

/// A model's answers to the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRun {
    pub model: String,
    /// Pinned version that answered.
    pub version: String,
    pub at_unix_ms: i64,
    pub answers: Vec<Answer>,
}

/// What `drift report` prints: the last run's comparison and its answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub at_unix_ms: i64,
    pub suite: String,
    pub threshold: f64,
    /// Whether the encoder's similarity went into the scores.
    pub embeddings: bool,
    pub models: Vec<ModelDrift>,
    pub runs: Vec<ModelRun>,
}

/// The store of baselines and the last run.
pub enum Store {
    Dir(PathBuf),
    Redis { conn: redis::aio::ConnectionManager, prefix: String },
}

fn safe_name(model: &str) -> String {
    model.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect()
}

impl Store {
    /// `--store` when given, else Redis when a URL is configured, else `~/.cache/triage/drift`.
    pub async fn open(dir: Option<&Path>, redis_url: Option<&str>, prefix: &str) -> Result<Store> {
        if let Some(d) = dir {
            return Ok(Store::Dir(d.to_path_buf()));
        }
        if let Some(url) = redis_url {
            let client = redis::Client::open(url).with_context(|| format!("redis URL `{url}`"))?;
            let conn = client.get_connection_manager().await.with_context(|| format!("connecting to {url}"))?;
            return Ok(Store::Redis { conn, prefix: prefix.to_string() });
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).context("HOME is not set: pass --store DIR")?;
        Ok(Store::Dir(home.join(".cache/triage/drift")))
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Store::Dir(d) => d.display().to_string(),
            Store::Redis { prefix, .. } => format!("redis {prefix}:drift:*"),
        }
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        let text: Option<String> = match self {
            Store::Dir(d) => {
                let p = d.join(key);
                match std::fs::read_to_string(&p) {
                    Ok(t) => Some(t),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
                }
            }
            Store::Redis { conn, prefix } => {
                let mut c = conn.clone();
                let k = format!("{prefix}:drift:{}", key.trim_end_matches(".json").replace('/', ":"));
                redis::cmd("GET").arg(&k).query_async(&mut c).await.with_context(|| format!("reading {k}"))?
            }
        };
        text.map(|t| serde_json::from_str(&t).with_context(|| format!("drift store `{key}` is corrupt"))).transpose()
    }

    async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        match self {
            Store::Dir(d) => {
                let p = d.join(key);
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                // Written aside and renamed: a crash never leaves half a baseline.
                let tmp = p.with_extension("json.tmp");
                std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
                std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
            }
            Store::Redis { conn, prefix } => {
                let mut c = conn.clone();
                let k = format!("{prefix}:drift:{}", key.trim_end_matches(".json").replace('/', ":"));
                let _: () = redis::cmd("SET")
                    .arg(&k)
                    .arg(text)
                    .query_async(&mut c)
                    .await
                    .with_context(|| format!("writing {k}"))?;
            }
        }
        Ok(())
    }

    /// The baseline of `model`.
    pub async fn baseline(&self, model: &str) -> Result<Option<ModelRun>> {
        self.get(&format!("baselines/{}.json", safe_name(model))).await
    }

    /// Makes `run` its model's baseline.
    pub async fn save_baseline(&self, run: &ModelRun) -> Result<()> {
        self.put(&format!("baselines/{}.json", safe_name(&run.model)), run).await
    }

    /// The last run.
    pub async fn last(&self) -> Result<Option<LastRun>> {
        self.get("last-run.json").await
    }

    /// Records the last run.
    pub async fn save_last(&self, last: &LastRun) -> Result<()> {
        self.put("last-run.json", last).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(model: &str) -> ModelRun {
        ModelRun {
            model: model.into(),
            version: "v1".into(),
            at_unix_ms: 7,
            answers: vec![Answer { id: "q1".into(), text: "hi".into(), error: None, output_tokens: 1, refusal: false }],
        }
    }

    async fn round_trip(store: &Store) {
        assert_eq!(store.baseline("org/model:1").await.unwrap(), None);
        store.save_baseline(&run("org/model:1")).await.unwrap();
        assert_eq!(store.baseline("org/model:1").await.unwrap(), Some(run("org/model:1")));
        assert!(store.last().await.unwrap().is_none());
        let last = LastRun {
            at_unix_ms: 1,
            suite: "s".into(),
            threshold: 0.3,
            embeddings: false,
            models: vec![],
            runs: vec![run("a")],
        };
        store.save_last(&last).await.unwrap();
        assert_eq!(store.last().await.unwrap(), Some(last));
    }

    #[tokio::test]
    async fn directory_store_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path()), Some("redis://unused"), "p").await.unwrap();
        round_trip(&store).await;
        assert!(dir.path().join("baselines/org_model_1.json").exists());
    }

    #[tokio::test]
    async fn redis_store_round_trips_under_the_prefix() {
        let Ok(redis) = triage_testkit::RedisServer::start() else {
            eprintln!("skipped: no redis-server");
            return;
        };
        let store = Store::open(None, Some(&redis.url()), "dp").await.unwrap();
        round_trip(&store).await;
        let mut c = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("dp:drift:*").query_async(&mut c).await.unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
    }
}
