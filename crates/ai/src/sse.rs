//! Framing for streamed bodies: server-sent events (OpenAI, Anthropic, Gemini) and
//! newline-delimited JSON (Ollama).
//!
//! Chunks from the network split lines anywhere, even inside a `\r\n` pair or a
//! multi-byte character, so bytes are buffered until a whole line is in and only
//! then decoded.

/// One dispatched server-sent event, or one NDJSON line (with no event name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub event: Option<String>,
    pub data: String,
}

/// Splits bytes into lines ending in `\n`, `\r\n` or `\r`.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting this one belongs to it.
    skip_lf: bool,
}

impl Lines {
    fn feed(&mut self, mut chunk: &[u8], mut on_line: impl FnMut(&str)) {
        if self.skip_lf {
            self.skip_lf = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.partial.extend_from_slice(&chunk[..end]);
            on_line(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
            let crlf = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if crlf {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
        }
        self.partial.extend_from_slice(chunk);
    }

    /// What is left after the body ended without a final newline.
    fn rest(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| {
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            line
        })
    }
}

/// An incremental parser for `text/event-stream`, following the WHATWG rules that
/// matter here: `event` and `data` fields, several `data` lines joined with `\n`,
/// comments ignored, an event dispatched at the blank line that ends it.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    lines: Lines,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        let Self {
            lines,
            event,
            data,
            has_data,
        } = self;
        lines.feed(chunk, |line| {
            if line.is_empty() {
                if *has_data {
                    out.push(Frame {
                        event: event.take(),
                        data: std::mem::take(data),
                    });
                } else {
                    data.clear();
                }
                *event = None;
                *has_data = false;
                return;
            }
            if line.starts_with(':') {
                return;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "data" => {
                    if *has_data {
                        data.push('\n');
                    }
                    data.push_str(value);
                    *has_data = true;
                }
                "event" => *event = Some(value.to_owned()),
                // `id` and `retry` only matter for reconnecting, which a model
                // call never does.
                _ => {}
            }
        });
        out
    }
}

/// How a streamed body is cut into frames.
#[derive(Debug)]
pub(crate) enum Framing {
    Sse(SseParser),
    NdJson(NdJsonParser),
}

impl Framing {
    pub fn sse() -> Self {
        Framing::Sse(SseParser::default())
    }

    pub fn ndjson() -> Self {
        Framing::NdJson(NdJsonParser::default())
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Frame> {
        match self {
            Framing::Sse(p) => p.feed(chunk),
            Framing::NdJson(p) => p.feed(chunk),
        }
    }

    /// Frames still pending when the body ends. An SSE event without its closing
    /// blank line is incomplete and dropped, as the standard says; a last NDJSON
    /// line without a newline is still a whole JSON value.
    pub fn finish(&mut self) -> Vec<Frame> {
        match self {
            Framing::Sse(_) => Vec::new(),
            Framing::NdJson(p) => p.finish(),
        }
    }
}

/// One JSON value per line, blank lines skipped.
#[derive(Debug, Default)]
pub(crate) struct NdJsonParser {
    lines: Lines,
}

impl NdJsonParser {
    fn feed(&mut self, chunk: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        self.lines.feed(chunk, |line| {
            if !line.trim().is_empty() {
                out.push(Frame {
                    event: None,
                    data: line.to_owned(),
                });
            }
        });
        out
    }

    fn finish(&mut self) -> Vec<Frame> {
        self.lines
            .rest()
            .filter(|l| !l.trim().is_empty())
            .map(|data| Frame { event: None, data })
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = ": keep-alive comment\r\n\
        event: message_start\r\n\
        data: {\"a\":1}\r\n\
        \r\n\
        data: first line\n\
        data:second line\n\
        \n\
        event: ping\r\
        data: {}\r\
        \r\
        data: caf\u{e9} \u{1f600}\n\
        id: 7\n\
        retry: 100\n\
        \n\
        event: lonely\n\
        \n\
        data: [DONE]\n\n";

    fn expected() -> Vec<Frame> {
        vec![
            Frame {
                event: Some("message_start".into()),
                data: "{\"a\":1}".into(),
            },
            Frame {
                event: None,
                data: "first line\nsecond line".into(),
            },
            Frame {
                event: Some("ping".into()),
                data: "{}".into(),
            },
            Frame {
                event: None,
                data: "caf\u{e9} \u{1f600}".into(),
            },
            Frame {
                event: None,
                data: "[DONE]".into(),
            },
        ]
    }

    #[test]
    fn parses_a_whole_body() {
        let mut p = SseParser::default();
        assert_eq!(p.feed(BODY.as_bytes()), expected());
    }

    #[test]
    fn any_split_into_two_or_three_chunks_gives_the_same_events() {
        let bytes = BODY.as_bytes();
        for i in 0..=bytes.len() {
            let mut p = SseParser::default();
            let mut got = p.feed(&bytes[..i]);
            got.extend(p.feed(&bytes[i..]));
            assert_eq!(got, expected(), "split at {i}");
        }
        // Three pieces, with a cheap deterministic walk over the second cut.
        for i in (0..bytes.len()).step_by(3) {
            let j = i + (i * 7919) % (bytes.len() - i + 1);
            let mut p = SseParser::default();
            let mut got = p.feed(&bytes[..i]);
            got.extend(p.feed(&bytes[i..j]));
            got.extend(p.feed(&bytes[j..]));
            assert_eq!(got, expected(), "split at {i} and {j}");
        }
    }

    #[test]
    fn byte_by_byte_gives_the_same_events() {
        let mut p = SseParser::default();
        let got: Vec<Frame> = BODY.as_bytes().iter().flat_map(|b| p.feed(&[*b])).collect();
        assert_eq!(got, expected());
    }

    #[test]
    fn an_event_cut_off_by_the_end_of_the_body_is_dropped() {
        let mut f = Framing::sse();
        assert!(f.feed(b"data: half").is_empty());
        assert!(f.finish().is_empty());
    }

    #[test]
    fn ndjson_lines_split_anywhere() {
        let body = "{\"n\":1}\r\n\n{\"n\":2}\n{\"n\":3}";
        for i in 0..=body.len() {
            let mut f = Framing::ndjson();
            let mut got = f.feed(&body.as_bytes()[..i]);
            got.extend(f.feed(&body.as_bytes()[i..]));
            got.extend(f.finish());
            let data: Vec<_> = got.into_iter().map(|f| f.data).collect();
            assert_eq!(
                data,
                ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"],
                "split at {i}"
            );
        }
    }
}
