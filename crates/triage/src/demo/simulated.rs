//! Simulated providers for the demo: real HTTP servers on 127.0.0.1 speaking the Groq/OpenAI
//! and Anthropic wire formats (the testkit's fakes), so the demo exercises the real adapters,
//! prices, breakers and failover without API keys. Replies are canned and say so.

use anyhow::Result;
use std::path::PathBuf;
use triage_core::Config;
use triage_core::config::{ProviderConfig, SecretRef};
use triage_testkit::{FakeAnthropic, FakeOpenAi, Fault, Reply};

/// The three simulated providers and the key files the config points at.
pub struct Providers {
    groq: FakeOpenAi,
    openai: FakeOpenAi,
    anthropic: FakeAnthropic,
    _keys: tempfile::TempDir,
}

fn reply(provider: &str) -> Reply {
    Reply {
        text: format!(
            "[simulated {provider} reply] Thanks for the details; here is a considered answer to your request."
        ),
        input_tokens: 180,
        output_tokens: 48,
        model: None,
        stop_reason: None,
    }
}

impl Providers {
    /// Starts the providers and points every provider model of `config` at them.
    pub async fn start(config: &mut Config) -> Result<Providers> {
        let groq = FakeOpenAi::start().await?;
        let openai = FakeOpenAi::start().await?;
        let anthropic = FakeAnthropic::start().await?;
        let keys = tempfile::tempdir()?;
        let key_file = |name: &str| -> Result<PathBuf> {
            let p = keys.path().join(name);
            std::fs::write(&p, format!("demo-key-{name}"))?;
            Ok(p)
        };
        let (groq_key, openai_key, anthropic_key) = (key_file("groq")?, key_file("openai")?, key_file("anthropic")?);
        groq.set_reply(reply("groq"));
        openai.set_reply(reply("openai"));
        anthropic.set_reply(reply("anthropic"));
        groq.require_key("demo-key-groq");
        openai.require_key("demo-key-openai");
        anthropic.require_key("demo-key-anthropic");
        for m in config.models.values_mut() {
            match &mut m.provider {
                ProviderConfig::Openai { base_url, api_key, .. } => {
                    let (url, key) = if base_url.contains("groq") {
                        (groq.base_url(), groq_key.clone())
                    } else {
                        (openai.base_url(), openai_key.clone())
                    };
                    *base_url = url;
                    *api_key = Some(SecretRef { env: None, file: Some(key) });
                }
                ProviderConfig::Anthropic { base_url, api_key, .. } => {
                    *base_url = anthropic.base_url();
                    *api_key = SecretRef { env: None, file: Some(anthropic_key.clone()) };
                }
                ProviderConfig::Local { .. } | ProviderConfig::Mistralrs { .. } => {}
            }
        }
        Ok(Providers { groq, openai, anthropic, _keys: keys })
    }

    /// Starts or ends an outage of `provider` (anthropic, openai or groq): every call fails.
    pub fn outage(&self, provider: &str, on: bool) {
        let (server, status) = match provider {
            "anthropic" => (&*self.anthropic, 529),
            "openai" => (&*self.openai, 503),
            _ => (&*self.groq, 503),
        };
        server.set_mode(on.then(|| Fault::status(status)));
    }
}
