//! Forwards a committed provider stream to the caller. Past the first token there is no
//! retry and no failover (the caller has already shown text): a failure ends the stream
//! with an error item, and the breaker learns of it.

use crate::breaker::{Outcome as BreakerOutcome, Permit};
use crate::failover::Outcome;
use crate::provider::{ProviderEvent, ProviderStream};
use crate::service::{Model, bump};
use crate::{Error, Result};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use triage_proto::pb;
use triage_proto::pb::generate_chunk::Chunk;

fn chunk(c: Chunk) -> Result<pb::GenerateChunk> {
    Ok(pb::GenerateChunk { chunk: Some(c) })
}

/// Runs until the provider's `Done`, an error, the deadline, or the caller going away
/// (then the provider stream is dropped, which closes its connection).
pub(crate) async fn forward(
    m: Arc<Model>,
    mut stream: ProviderStream,
    first: ProviderEvent,
    permit: Permit,
    out: Outcome,
    deadline: Instant,
    tx: mpsc::Sender<Result<pb::GenerateChunk>>,
) {
    let mut text = String::new();
    let mut next = Some(Ok(first));
    loop {
        let item = match next.take() {
            Some(i) => i,
            None => {
                let next = tokio::time::timeout_at(deadline.into(), stream.next());
                tokio::select! {
                    // The caller went away while the provider was quiet: stop now rather
                    // than at the next token or the deadline.
                    () = tx.closed() => {
                        permit.finish(BreakerOutcome::Neutral);
                        return;
                    }
                    r = next => match r {
                        Ok(Some(i)) => i,
                        Ok(None) => Err(Error::StreamCut {
                            model: m.spec.name.clone(),
                            message: "stream ended without completion".into(),
                        }),
                        Err(_) => Err(Error::Timeout {
                            model: m.spec.name.clone(),
                            what: "request",
                            after: m.timeout,
                        }),
                    },
                }
            }
        };
        match item {
            Ok(ProviderEvent::Delta(d)) => {
                text.push_str(&d);
                if tx.send(chunk(Chunk::Delta(d))).await.is_err() {
                    permit.finish(BreakerOutcome::Neutral);
                    return;
                }
            }
            Ok(ProviderEvent::Done(finish)) => {
                permit.finish(BreakerOutcome::Success);
                let resp = m.response(text, finish, out);
                let _ = tx.send(chunk(Chunk::Done(resp))).await;
                return;
            }
            Err(e) => {
                permit.finish(if e.counts_for_breaker() { BreakerOutcome::Failure } else { BreakerOutcome::Neutral });
                bump(&m.counters.failures);
                tracing::warn!(
                    model = %m.spec.name,
                    outcome = e.outcome(),
                    error = %e,
                    "stream failed after the first token; not retried"
                );
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}
