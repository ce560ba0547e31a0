//! A small typed model of the line-based configuration languages LeanNodes renders. nginx, the Caddyfile
//! and HAProxy all read as directives — a name, arguments and, for some, a block of further directives —
//! and differ only in syntax: how a directive ends (`;` or the line), how blocks are written (`{ }` or
//! an indented section) and how arguments are quoted. Renderers build [`Directive`] trees; [`Conf`]
//! prints one in a [`Syntax`], quoting arguments where that language needs it; `parse` (tests) reads
//! such text back into the tree, so tests check what the gateway will read.

use std::fmt::{self, Write as _};

use super::comment_lines;

/// One directive: `name args…;`, or `name args… { block }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Directive {
    /// The directive's name (nginx `location`, Caddy `reverse_proxy`, HAProxy `acl`; a Caddy site's first
    /// address, an HAProxy section keyword).
    pub(super) name: String,
    /// Its arguments, unquoted.
    pub(super) args: Vec<String>,
    /// The directives inside it, for a block.
    pub(super) block: Option<Vec<Directive>>,
}

impl Directive {
    /// A simple directive.
    pub(super) fn new<S: Into<String>>(name: &str, args: impl IntoIterator<Item = S>) -> Directive {
        Directive { name: name.to_string(), args: args.into_iter().map(Into::into).collect(), block: None }
    }

    /// A block directive.
    pub(super) fn block<S: Into<String>>(name: &str, args: impl IntoIterator<Item = S>, block: Vec<Directive>) -> Directive {
        Directive { block: Some(block), ..Directive::new(name, args) }
    }

    /// The directives of its block called `name`.
    #[cfg(test)]
    pub(super) fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Directive> + 'a {
        self.block.iter().flatten().filter(move |d| d.name == name)
    }
}

/// Which language a [`Conf`] is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syntax {
    /// nginx: `name args;` and `name args { … }`, four-space indents.
    Nginx,
    /// The Caddyfile: one directive a line, `{ … }` blocks, tab indents; a site block's addresses are
    /// separated by commas.
    Caddyfile,
    /// HAProxy: unindented section lines (`frontend name`), each followed by its indented directives.
    Haproxy,
}

/// A configuration file: comment lines, then directives.
#[derive(Debug, Clone)]
pub(super) struct Conf {
    /// The language.
    pub(super) syntax: Syntax,
    /// The opening comment (one comment line per line).
    pub(super) comment: String,
    /// The top-level directives.
    pub(super) directives: Vec<Directive>,
}

impl fmt::Display for Conf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&comment_lines("#", &self.comment))?;
        write_block(f, self.syntax, &self.directives, 0)
    }
}

fn write_block(f: &mut fmt::Formatter<'_>, syntax: Syntax, directives: &[Directive], depth: usize) -> fmt::Result {
    let indent = match syntax {
        Syntax::Nginx | Syntax::Haproxy => "    ",
        Syntax::Caddyfile => "\t",
    }
    .repeat(depth);
    for (i, d) in directives.iter().enumerate() {
        // Top-level directives, and blocks inside them, stand apart (an empty line between).
        let apart = |before: &Directive| depth == 0 || (syntax != Syntax::Haproxy && (d.block.is_some() || before.block.is_some()));
        if i > 0 && apart(&directives[i - 1]) {
            f.write_char('\n')?;
        }
        let mut line = format!("{indent}{}", quote(syntax, &d.name));
        // A Caddy site lists its addresses with commas.
        let separator = if syntax == Syntax::Caddyfile && depth == 0 { ", " } else { " " };
        for arg in &d.args {
            let _ = write!(line, "{separator}{}", quote(syntax, arg));
        }
        match (&d.block, syntax) {
            (None, Syntax::Nginx) => writeln!(f, "{line};")?,
            (None, _) => writeln!(f, "{line}")?,
            (Some(block), Syntax::Haproxy) => {
                writeln!(f, "{line}")?;
                write_block(f, syntax, block, depth + 1)?;
            }
            (Some(block), _) => {
                writeln!(f, "{line} {{")?;
                write_block(f, syntax, block, depth + 1)?;
                writeln!(f, "{indent}}}")?;
            }
        }
    }
    Ok(())
}

/// `arg` as `syntax` reads it back as one word.
fn quote(syntax: Syntax, arg: &str) -> String {
    let special = |c: char| {
        c.is_whitespace()
            || matches!(c, '"' | '\'' | '\\')
            || (syntax == Syntax::Nginx && matches!(c, ';' | '{' | '}'))
            || (syntax != Syntax::Caddyfile && c == '#')
    };
    let structural = syntax == Syntax::Caddyfile && matches!(arg, "{" | "}");
    if !arg.is_empty() && !arg.contains(special) && !structural && !arg.starts_with('#') {
        return arg.to_string();
    }
    // HAProxy expands environment variables between double quotes, never between single ones.
    if syntax == Syntax::Haproxy && !arg.contains('\'') {
        return format!("'{arg}'");
    }
    let mut out = String::from('"');
    for c in arg.chars() {
        if matches!(c, '"' | '\\') || (syntax == Syntax::Haproxy && c == '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Why text could not be read back as directives.
#[cfg(test)]
#[derive(Debug, thiserror::Error)]
pub(super) enum ParseError {
    /// A quote that does not end.
    #[error("line {0}: unterminated quote")]
    Unterminated(usize),
    /// A `}` without a `{`, or a block left open.
    #[error("line {0}: unbalanced braces")]
    Unbalanced(usize),
    /// An nginx directive without its `;`, or an HAProxy directive outside a section.
    #[error("line {0}: a directive is not terminated or outside a section")]
    Stray(usize),
}

/// A word of a configuration: its text (unquoted), whether it was quoted, and its line.
#[cfg(test)]
struct Word {
    text: String,
    quoted: bool,
    line: usize,
}

#[cfg(test)]
impl Word {
    fn is(&self, punct: &str) -> bool {
        !self.quoted && self.text == punct
    }
}

/// The words of `text`, without comments; `punct` characters are words of their own.
#[cfg(test)]
fn words(text: &str, first_line: usize, punct: &[char]) -> Result<Vec<Word>, ParseError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = first_line;
    while let Some(&c) = chars.peek() {
        if c == '\n' {
            line += 1;
            chars.next();
        } else if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            while chars.next_if(|&c| c != '\n').is_some() {}
        } else if punct.contains(&c) {
            chars.next();
            out.push(Word { text: c.to_string(), quoted: false, line });
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err(ParseError::Unterminated(line)),
                    Some(q) if q == c => break,
                    Some('\\') if c == '"' => text.extend(chars.next()),
                    Some(other) => text.push(other),
                }
            }
            out.push(Word { text, quoted: true, line });
        } else {
            let mut text = String::new();
            while let Some(c) = chars.next_if(|&c| !c.is_whitespace() && !punct.contains(&c)) {
                text.push(c);
            }
            out.push(Word { text, quoted: false, line });
        }
    }
    Ok(out)
}

/// Reads `text` (as written by [`Conf`] in `syntax`, or by hand) back into directives.
#[cfg(test)]
pub(super) fn parse(syntax: Syntax, text: &str) -> Result<Vec<Directive>, ParseError> {
    match syntax {
        Syntax::Nginx => {
            let words = words(text, 1, &[';', '{', '}'])?;
            nginx_block(&mut words.into_iter(), 0)
        }
        Syntax::Caddyfile => {
            let mut stack: Vec<Directive> = vec![Directive::block("", Vec::<String>::new(), vec![])];
            for (i, line) in text.lines().enumerate() {
                let mut words = words(line, i + 1, &[])?;
                if words.is_empty() {
                    continue;
                }
                if words.len() == 1 && words[0].is("}") {
                    let done = stack.pop().filter(|_| !stack.is_empty()).ok_or(ParseError::Unbalanced(i + 1))?;
                    push(&mut stack, done);
                    continue;
                }
                let opens = words.last().is_some_and(|w| w.is("{"));
                if opens {
                    words.pop();
                }
                let mut texts = words.into_iter().map(|w| w.text);
                let name = texts.next().unwrap_or_default();
                let mut directive = Directive::new(&name, texts);
                if stack.len() == 1 {
                    // A site's addresses: `a, b {`.
                    directive.name = directive.name.trim_end_matches(',').to_string();
                    directive.args = directive.args.iter().map(|a| a.trim_end_matches(',').to_string()).filter(|a| !a.is_empty()).collect();
                }
                if opens {
                    directive.block = Some(Vec::new());
                    stack.push(directive);
                } else {
                    push(&mut stack, directive);
                }
            }
            match (stack.pop(), stack.is_empty()) {
                (Some(top), true) => Ok(top.block.unwrap_or_default()),
                _ => Err(ParseError::Unbalanced(text.lines().count())),
            }
        }
        Syntax::Haproxy => {
            let mut sections: Vec<Directive> = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let mut texts = words(line, i + 1, &[])?.into_iter().map(|w| w.text);
                let Some(name) = texts.next() else { continue };
                if line.starts_with(char::is_whitespace) {
                    let section = sections.last_mut().and_then(|s| s.block.as_mut()).ok_or(ParseError::Stray(i + 1))?;
                    section.push(Directive::new(&name, texts));
                } else {
                    sections.push(Directive::block(&name, texts, vec![]));
                }
            }
            Ok(sections)
        }
    }
}

/// Adds a finished directive to the innermost open block.
#[cfg(test)]
fn push(stack: &mut [Directive], directive: Directive) {
    if let Some(block) = stack.last_mut().and_then(|d| d.block.as_mut()) {
        block.push(directive);
    }
}

#[cfg(test)]
fn nginx_block(words: &mut std::vec::IntoIter<Word>, depth: usize) -> Result<Vec<Directive>, ParseError> {
    let mut out = Vec::new();
    while let Some(first) = words.next() {
        if first.is("}") {
            return if depth > 0 { Ok(out) } else { Err(ParseError::Unbalanced(first.line)) };
        }
        let mut args = Vec::new();
        loop {
            let word = words.next().ok_or(ParseError::Stray(first.line))?;
            if word.is(";") {
                out.push(Directive::new(&first.text, args));
                break;
            }
            if word.is("{") {
                let block = nginx_block(words, depth + 1)?;
                out.push(Directive::block(&first.text, args, block));
                break;
            }
            if word.is("}") {
                return Err(ParseError::Stray(word.line));
            }
            args.push(word.text);
        }
    }
    if depth > 0 { Err(ParseError::Unbalanced(0)) } else { Ok(out) }
}
