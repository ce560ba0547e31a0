//! A bounded log of a process's output lines.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

/// Keeps the last `capacity` lines, each cut to `MAX_LINE` bytes.
#[derive(Debug, Clone)]
pub(crate) struct LogRing {
    inner: Arc<Mutex<VecDeque<String>>>,
    capacity: usize,
}

const MAX_LINE: usize = 2048;

impl LogRing {
    pub(crate) fn new(capacity: usize) -> LogRing {
        LogRing { inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))), capacity }
    }

    pub(crate) fn push(&self, stream: &str, line: &str) {
        let mut end = line.len().min(MAX_LINE);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let entry = format!("[{stream}] {}", &line[..end]);
        let mut lines = self.inner.lock();
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(entry);
    }

    /// The last `n` lines, oldest first.
    pub(crate) fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.inner.lock();
        lines.iter().skip(lines.len().saturating_sub(n)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_lines() {
        let log = LogRing::new(3);
        for i in 0..5 {
            log.push("stdout", &format!("line {i}"));
        }
        assert_eq!(log.tail(10), ["[stdout] line 2", "[stdout] line 3", "[stdout] line 4"]);
        assert_eq!(log.tail(1), ["[stdout] line 4"]);
        log.push("stderr", &"é".repeat(MAX_LINE));
        assert!(log.tail(1)[0].len() <= MAX_LINE + "[stderr] ".len());
    }
}
