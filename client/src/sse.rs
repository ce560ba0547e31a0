//! A reader of a Server-Sent Events stream (`/api/v1/events`): named events with JSON data.

use serde_json::Value;

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// The `event:` name (`execution_started`, `node_ready`, …).
    pub(crate) name: String,
    /// The `data:` JSON.
    pub(crate) data: Value,
}

/// Splits a byte stream into events.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    buffer: String,
}

impl Parser {
    /// Adds bytes; returns the events they complete. Comments (keep-alives) and events without JSON
    /// data are skipped.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buffer.push_str(&String::from_utf8_lossy(bytes));
        if self.buffer.contains('\r') {
            self.buffer = self.buffer.replace("\r\n", "\n").replace('\r', "\n");
        }
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut name = "message".to_string();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_string();
                } else if let Some(value) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            if let Ok(data) = serde_json::from_str(&data) {
                events.push(Event { name, data });
            }
        }
        events
    }
}

/// The events of an open response.
pub(crate) struct Stream {
    response: reqwest::Response,
    parser: Parser,
    ready: std::collections::VecDeque<Event>,
}

impl Stream {
    pub(crate) fn open(response: reqwest::Response) -> Stream {
        Stream { response, parser: Parser::default(), ready: Default::default() }
    }

    /// The next event; `None` when the stream ends.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, String> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            match self.response.chunk().await.map_err(|e| e.to_string())? {
                Some(bytes) => self.ready.extend(self.parser.feed(&bytes)),
                None => return Ok(None),
            }
        }
    }
}
