//! Stop-sequence detection over streamed text.

/// Accumulates generated text and releases only what can no longer turn out to be the start
/// of a stop sequence, so streamed pieces never include text the final answer drops.
#[derive(Debug)]
pub(crate) struct StopMatcher<'a> {
    stops: Vec<&'a str>,
    max_stop_len: usize,
    text: String,
    emitted: usize,
}

/// What one [`StopMatcher::push`] released.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Released {
    pub(crate) text: String,
    pub(crate) stopped: bool,
}

impl<'a> StopMatcher<'a> {
    pub(crate) fn new(stops: &'a [String]) -> Self {
        let stops: Vec<&str> = stops.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        let max_stop_len = stops.iter().map(|s| s.len()).max().unwrap_or(0);
        Self { stops, max_stop_len, text: String::new(), emitted: 0 }
    }

    pub(crate) fn push(&mut self, piece: &str) -> Released {
        self.text.push_str(piece);
        // Everything before `emitted` was checked to start no stop sequence, so a match can
        // only begin inside the held-back tail.
        let tail = &self.text[self.emitted..];
        let hit = self.stops.iter().filter_map(|s| tail.find(s)).min();
        if let Some(at) = hit {
            let end = self.emitted + at;
            let text = self.text[self.emitted..end].to_owned();
            self.text.truncate(end);
            self.emitted = end;
            return Released { text, stopped: true };
        }
        let hold = self.partial_match_len();
        let end = self.text.len() - hold;
        let text = self.text[self.emitted..end].to_owned();
        self.emitted = end;
        Released { text, stopped: false }
    }

    /// Releases the held-back tail once generation is over.
    pub(crate) fn finish(&mut self) -> String {
        let rest = self.text[self.emitted..].to_owned();
        self.emitted = self.text.len();
        rest
    }

    pub(crate) fn into_text(self) -> String {
        self.text
    }

    /// Length of the longest unreleased suffix that is a proper prefix of some stop sequence.
    fn partial_match_len(&self) -> usize {
        let tail = &self.text[self.emitted..];
        let longest = tail.len().min(self.max_stop_len.saturating_sub(1));
        (1..=longest)
            .rev()
            .filter(|&k| tail.is_char_boundary(tail.len() - k))
            .find(|&k| {
                let suffix = &tail[tail.len() - k..];
                self.stops.iter().any(|s| s.starts_with(suffix))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, bool, String) {
        let stops: Vec<String> = stops.iter().map(|s| (*s).to_owned()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = Vec::new();
        let mut stopped = false;
        for p in pieces {
            let r = m.push(p);
            out.push(r.text);
            if r.stopped {
                stopped = true;
                break;
            }
        }
        if !stopped {
            out.push(m.finish());
        }
        (out, stopped, m.into_text())
    }

    #[test]
    fn no_stops_passes_through() {
        let (out, stopped, text) = run(&[], &["a", "b"]);
        assert_eq!(out, ["a", "b", ""]);
        assert!(!stopped);
        assert_eq!(text, "ab");
    }

    #[test]
    fn stop_split_across_pieces_is_never_streamed() {
        let (out, stopped, text) = run(&["\n\nUser:"], &["Hi", " there\n", "\nUs", "er: x"]);
        assert!(stopped);
        assert_eq!(text, "Hi there");
        assert_eq!(out.concat(), "Hi there");
    }

    #[test]
    fn false_alarm_is_released() {
        let (out, stopped, text) = run(&["END"], &["EN", "D?", "x"]);
        assert!(stopped);
        assert_eq!(text, "");
        assert_eq!(out.concat(), "");
        let (out, stopped, text) = run(&["END"], &["EN", "x", "E"]);
        assert!(!stopped);
        assert_eq!(out, ["", "ENx", "", "E"]);
        assert_eq!(text, "ENxE");
    }

    #[test]
    fn earliest_stop_wins_and_multibyte_is_safe() {
        let (_, stopped, text) = run(&["é!", "b"], &["aé", "!b"]);
        assert!(stopped);
        assert_eq!(text, "a");
        let (out, _, _) = run(&["éé"], &["xé", "y"]);
        assert_eq!(out, ["x", "éy", ""]);
    }
}
