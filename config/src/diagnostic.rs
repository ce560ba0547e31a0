//! Problems found in a configuration, each with where it is, what is wrong and how to fix it.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// JSON pointer of the offending value (`/flow/0/node/1/after/0`); empty for the whole document.
    pub pointer: String,
    /// Byte range in the source text, when the source is text with positions (TOML).
    pub span: Option<Range<usize>>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl Diagnostic {
    /// A problem at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>, help: impl Into<String>) -> Diagnostic {
        Diagnostic { pointer: pointer.into(), span: None, message: message.into(), help: help.into() }
    }
}

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
}

impl LineCol {
    /// The position of byte `offset` in `text`.
    pub fn of(text: &str, offset: usize) -> LineCol {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        LineCol { line, col: before[line_start..].chars().count() + 1 }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// All problems of one configuration source, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// Name of the source as shown to users (the file path).
    pub origin: String,
    /// The source text (used to turn spans into lines and columns).
    pub text: String,
    /// The problems, in source order.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Line and column of a diagnostic (1:1 when it has no span).
    pub fn position(&self, d: &Diagnostic) -> LineCol {
        d.span.as_ref().map_or(LineCol { line: 1, col: 1 }, |s| LineCol::of(&self.text, s.start))
    }

    /// Sorts by position so the output reads top to bottom.
    pub(crate) fn sort(&mut self) {
        let text = &self.text;
        self.items.sort_by_key(|d| d.span.as_ref().map(|s| LineCol::of(text, s.start)));
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            let LineCol { line, col } = self.position(d);
            writeln!(f, "{}:{line}:{col}: error: {}", self.origin, d.message)?;
            writeln!(f, "  help: {}", d.help)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(LineCol::of(text, 0), LineCol { line: 1, col: 1 });
        assert_eq!(LineCol::of(text, 6), LineCol { line: 2, col: 1 });
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(LineCol::of(text, 7 + 5), LineCol { line: 2, col: 6 });
    }
}
