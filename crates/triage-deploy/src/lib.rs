//! Checks of the Kubernetes packaging
//!
//! Helpers for the tests in `tests/`: find the real `helm`, `kubectl` and
//! `kubernetes-validate` that `scripts/setup.sh` installs, render the chart in `helm/triage`
//! with a values file, and read the rendered objects back as `k8s-openapi` types. A missing
//! tool is an error that says to run `scripts/setup.sh`; nothing is skipped.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use triage_testkit::repo_root;

/// The chart directory, `helm/triage`.
pub fn chart_dir() -> PathBuf {
    repo_root().join("helm/triage")
}

/// Every alternative values file the chart is checked with: `deploy/oke/values-oke.yaml`
/// and `helm/triage/ci/*.yaml`, sorted.
pub fn values_files() -> Result<Vec<PathBuf>, String> {
    let ci = chart_dir().join("ci");
    let mut out = vec![repo_root().join("deploy/oke/values-oke.yaml")];
    let entries = std::fs::read_dir(&ci).map_err(|e| format!("{}: {e}", ci.display()))?;
    let mut ci_files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    ci_files.sort();
    out.extend(ci_files);
    Ok(out)
}

/// A tool installed by `scripts/setup.sh`: `$HOME/.cache/triage/bin/NAME`, else on `PATH`.
pub fn tool(name: &str) -> Result<PathBuf, String> {
    let mut dirs = Vec::new();
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME") {
        dirs.push(PathBuf::from(cache).join("triage/bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(&home).join(".cache/triage/bin"));
        dirs.push(PathBuf::from(&home).join(".local/bin"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).ok_or_else(|| {
        format!(
            "`{name}` not found in ~/.cache/triage/bin or on PATH: run scripts/setup.sh (it installs helm, \
             kubectl and kubernetes-validate for these checks)"
        )
    })
}

/// Output of a finished command.
#[derive(Debug)]
pub struct Run {
    /// Exit status was 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `program args`, feeding `stdin` when given.
pub fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<Run, String> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", program.display()))?;
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes()).map_err(|e| format!("{} stdin: {e}", program.display()))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("{}: {e}", program.display()))?;
    Ok(Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `helm ARGS` in the chart directory's parent; `Err` carries stderr.
pub fn helm(args: &[&str]) -> Result<String, String> {
    let helm = tool("helm")?;
    let out = run(&helm, args, None)?;
    if out.ok { Ok(out.stdout) } else { Err(format!("helm {}: {}{}", args.join(" "), out.stdout, out.stderr)) }
}

/// The smallest Kubernetes version the chart supports (`kubeVersion: ">=1.29.0-0"` gives
/// `1.29.0`).
pub fn chart_min_kube_version() -> Result<String, String> {
    let path = chart_dir().join("Chart.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let chart: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let kv = chart.get("kubeVersion").and_then(|v| v.as_str()).ok_or("Chart.yaml has no kubeVersion")?;
    let v = kv.trim().strip_prefix(">=").ok_or_else(|| format!("kubeVersion `{kv}` is not `>=X.Y.Z-0`"))?;
    Ok(v.trim().trim_end_matches("-0").to_string())
}

/// The objects `helm template` rendered.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The manifest text as helm printed it.
    pub text: String,
    /// Each non-empty document.
    pub docs: Vec<serde_json::Value>,
}

/// The release name every rendering uses (objects are `triage-<component>`).
pub const RELEASE: &str = "triage";

impl Rendered {
    /// `helm template triage helm/triage --namespace triage-test [-f FILE]... [--set S]...`.
    pub fn render(values: &[&Path], sets: &[&str]) -> Result<Rendered, String> {
        let chart = chart_dir();
        let chart = chart.to_string_lossy().into_owned();
        let mut args: Vec<String> =
            vec!["template".into(), RELEASE.into(), chart, "--namespace".into(), "triage-test".into()];
        for v in values {
            args.push("-f".into());
            args.push(v.to_string_lossy().into_owned());
        }
        for s in sets {
            args.push("--set".into());
            args.push((*s).to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = helm(&args)?;
        let docs = parse_docs(&text)?;
        Ok(Rendered { text, docs })
    }

    /// Documents of a kind.
    pub fn of_kind(&self, kind: &str) -> Vec<&serde_json::Value> {
        self.docs.iter().filter(|d| d.get("kind").and_then(|k| k.as_str()) == Some(kind)).collect()
    }

    /// Every object of type `T` (matched by apiVersion and kind), typed.
    pub fn all<T: k8s_openapi::Resource + DeserializeOwned>(&self) -> Result<Vec<T>, String> {
        self.docs
            .iter()
            .filter(|d| {
                d.get("kind").and_then(|k| k.as_str()) == Some(T::KIND)
                    && d.get("apiVersion").and_then(|k| k.as_str()) == Some(T::API_VERSION)
            })
            .map(|d| serde_json::from_value(d.clone()).map_err(|e| format!("{} {}: {e}", T::KIND, name_of(d))))
            .collect()
    }

    /// The object of type `T` named `name`.
    pub fn get<
        T: k8s_openapi::Resource
            + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
            + DeserializeOwned,
    >(
        &self,
        name: &str,
    ) -> Result<T, String> {
        self.all::<T>()?
            .into_iter()
            .find(|o| o.metadata().name.as_deref() == Some(name))
            .ok_or_else(|| format!("no {} named {name} in the rendered chart", T::KIND))
    }
}

fn name_of(doc: &serde_json::Value) -> String {
    doc.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("?").to_string()
}

/// Parses a multi-document YAML stream, dropping empty documents.
pub fn parse_docs(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = serde_json::Value::deserialize(doc).map_err(|e| format!("rendered YAML: {e}"))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// A humantime duration such as `20s`, `1m30s` or `500ms`, in whole seconds rounded up.
pub fn duration_secs(text: &str) -> Result<u64, String> {
    let mut total_ms: u64 = 0;
    let mut num = String::new();
    let mut unit = String::new();
    let mut flush = |num: &mut String, unit: &mut String| -> Result<(), String> {
        if num.is_empty() {
            return Err(format!("duration `{text}`"));
        }
        let n: u64 = num.parse().map_err(|_| format!("duration `{text}`"))?;
        let ms = match unit.as_str() {
            "ms" => 1,
            "s" | "sec" | "secs" => 1000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hrs" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(format!("duration `{text}`: unit `{unit}`")),
        };
        total_ms += n * ms;
        num.clear();
        unit.clear();
        Ok(())
    };
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            if !unit.is_empty() {
                flush(&mut num, &mut unit)?;
            }
            num.push(c);
        } else if c.is_ascii_alphabetic() {
            unit.push(c);
        } else if !c.is_whitespace() {
            return Err(format!("duration `{text}`"));
        }
    }
    flush(&mut num, &mut unit)?;
    Ok(total_ms.div_ceil(1000))
}
