//! A hand-written Server-Sent Events parser (the WHATWG `text/event-stream` rules) and the
//! glue that turns a provider's SSE body into a stream of [`ProviderEvent`]s.
//!
//! Written by hand because provider bodies arrive in arbitrary network chunks: a chunk may
//! end in the middle of a line, of a UTF-8 sequence, or between the `\r` and `\n` of one
//! line break, and the parser must give the same events whatever the chunking.

use crate::provider::{ProviderEvent, ProviderStream};
use crate::{Error, Result};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::collections::VecDeque;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// `event:` field; `message` when the event named none.
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser: feed it bytes, get complete events.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// Bytes of the current, unfinished line. Kept as bytes so a UTF-8 sequence split
    /// across chunks is decoded only once whole.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds a chunk; pushes every event it completes onto `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..pos]);
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, out);
            if rest[pos] == b'\r' {
                match rest.get(pos + 1) {
                    Some(b'\n') => rest = &rest[pos + 2..],
                    Some(_) => rest = &rest[pos + 1..],
                    None => {
                        self.after_cr = true;
                        rest = &[];
                    }
                }
            } else {
                rest = &rest[pos + 1..];
            }
        }
        self.line.extend_from_slice(rest);
    }

    /// End of input: an event not closed by a blank line is dispatched all the same, since
    /// some servers close the body right after the last `data:` line.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, out);
        }
        self.dispatch(out);
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // comment (keep-alive)
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields do not matter to a one-shot client
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return; // an event with no data is not dispatched
        }
        self.has_data = false;
        out.push(SseEvent {
            event: event.unwrap_or_else(|| "message".to_string()),
            data: std::mem::take(&mut self.data),
        });
    }
}

/// Turns SSE events of one provider into [`ProviderEvent`]s.
pub(crate) trait Decoder: Send + 'static {
    /// Handles one event, pushing what it yields onto `out`. Returns `true` once the
    /// provider has said the reply is complete (`[DONE]`, `message_stop`).
    fn on_event(&mut self, ev: SseEvent, out: &mut VecDeque<ProviderEvent>) -> Result<bool>;
}

struct State<B, D> {
    body: B,
    parser: SseParser,
    decoder: D,
    pending: VecDeque<ProviderEvent>,
    scratch: Vec<SseEvent>,
    done: bool,
    eof: bool,
    model: String,
}

/// Decodes a provider's SSE body. A body that ends (or breaks) before the decoder saw the
/// end of the reply yields [`Error::StreamCut`]: a truncated answer must never pass for a
/// whole one.
pub(crate) fn decode<B, D>(body: B, decoder: D, model: String) -> ProviderStream
where
    B: Stream<Item = reqwest::Result<Bytes>> + Send + Unpin + 'static,
    D: Decoder,
{
    let state = State {
        body,
        parser: SseParser::default(),
        decoder,
        pending: VecDeque::new(),
        scratch: Vec::new(),
        done: false,
        eof: false,
        model,
    };
    futures::stream::unfold(Some(state), |st| async move {
        let mut st = st?;
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok(ev), Some(st)));
            }
            if st.done {
                return None;
            }
            if st.eof {
                let err = Error::StreamCut {
                    model: st.model.clone(),
                    message: "body ended before the provider marked the reply complete".into(),
                };
                return Some((Err(err), None));
            }
            match st.body.next().await {
                Some(Ok(chunk)) => st.parser.push(&chunk, &mut st.scratch),
                Some(Err(e)) => {
                    let err = Error::StreamCut { model: st.model.clone(), message: crate::provider::describe(&e) };
                    return Some((Err(err), None));
                }
                None => {
                    st.eof = true;
                    st.parser.finish(&mut st.scratch);
                }
            }
            let events = std::mem::take(&mut st.scratch);
            for ev in events {
                match st.decoder.on_event(ev, &mut st.pending) {
                    Ok(true) => {
                        st.done = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => return Some((Err(e), None)),
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out);
        }
        p.finish(&mut out);
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into() }
    }

    #[test]
    fn basic_events() {
        let got = parse_chunks(&[b"data: {\"a\":1}\n\ndata: [DONE]\n\n"]);
        assert_eq!(got, vec![ev("message", "{\"a\":1}"), ev("message", "[DONE]")]);
    }

    #[test]
    fn named_events_and_comments() {
        let got =
            parse_chunks(&[b": keep-alive\nevent: ping\ndata: {}\n\n:another\n\nevent: message_stop\ndata: x\n\n"]);
        assert_eq!(got, vec![ev("ping", "{}"), ev("message_stop", "x")]);
    }

    #[test]
    fn crlf_and_cr_line_breaks() {
        let got = parse_chunks(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]);
        assert_eq!(got, vec![ev("message", "a"), ev("message", "b"), ev("message", "c")]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_break() {
        // `\r` ends one chunk and `\n` starts the next: one break, not an empty line.
        let got = parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![ev("message", "a\nb")]);
    }

    #[test]
    fn multi_line_data_is_joined() {
        let got = parse_chunks(&[b"data: line1\ndata: line2\ndata:line3\n\n"]);
        assert_eq!(got, vec![ev("message", "line1\nline2\nline3")]);
    }

    #[test]
    fn fields_without_value_and_unknown_fields() {
        let got = parse_chunks(&[b"data\nid: 7\nretry: 10\nfoo: bar\n\n"]);
        assert_eq!(got, vec![ev("message", "")]);
    }

    #[test]
    fn events_without_data_are_not_dispatched() {
        let got = parse_chunks(&[b"event: ping\n\ndata: x\n\n"]);
        assert_eq!(got, vec![ev("message", "x")]);
    }

    #[test]
    fn utf8_split_mid_character() {
        let text = "data: héllo wörld ✓\n\n".as_bytes();
        for cut in 0..text.len() {
            let got = parse_chunks(&[&text[..cut], &text[cut..]]);
            assert_eq!(got, vec![ev("message", "héllo wörld ✓")], "cut at {cut}");
        }
    }

    #[test]
    fn trailing_event_without_blank_line_is_dispatched_at_end() {
        let got = parse_chunks(&[b"data: [DONE]"]);
        assert_eq!(got, vec![ev("message", "[DONE]")]);
    }

    #[test]
    fn every_chunking_gives_the_same_events() {
        let body: &[u8] = b"event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n: ping\n\
            event: content_block_delta\ndata: {\"t\":\"a\"}\n\ndata: one\ndata: two\r\rdata: [DONE]\n\n";
        let whole = parse_chunks(&[body]);
        assert_eq!(whole.len(), 4);
        for a in 0..body.len() {
            for b in a..body.len() {
                let got = parse_chunks(&[&body[..a], &body[a..b], &body[b..]]);
                assert_eq!(got, whole, "chunks cut at {a} and {b}");
            }
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(parse_chunks(&bytes), whole);
    }
}
