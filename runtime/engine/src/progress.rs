//! Progress events while buildpacks run: the engine reports through
//! [`Reporter`], and the platform decides where they go.

use serde::Serialize;

use crate::ids::BuildpackId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Where progress goes. The CLI prints it to stderr; tests collect it.
pub trait Reporter: Send + Sync {
    /// A phase starts (`detect`, `build`, `export`).
    fn phase(&self, name: &str);
    /// A phase ended after `seconds` of its own.
    fn phase_done(&self, _name: &str, _seconds: f64) {}
    /// A line of the platform's own progress.
    fn note(&self, message: &str);
    /// A buildpack's `log` call.
    fn buildpack_log(&self, id: &BuildpackId, level: LogLevel, message: &str);
    /// A buildpack's captured stdout or stderr.
    fn buildpack_output(&self, id: &BuildpackId, stream: &str, text: &str);
}

/// `text` safe to print on a terminal: control characters (ANSI escape
/// sequences, carriage returns that overwrite a line, C1 controls) are
/// shown as `\x1b`-style escapes instead of acting. Buildpack logs and tool
/// output are guest-controlled, so a buildpack cannot rewrite what the user
/// sees (fake a success, hide an error, set the terminal's title).
pub fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    let bad =
        |c: char| (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c);
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A reporter that drops everything.
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn phase(&self, _: &str) {}
    fn note(&self, _: &str) {}
    fn buildpack_log(&self, _: &BuildpackId, _: LogLevel, _: &str) {}
    fn buildpack_output(&self, _: &BuildpackId, _: &str, _: &str) {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_are_shown_not_acted_on() {
        assert_eq!(super::neutralise("plain\ttext"), "plain\ttext");
        assert_eq!(
            super::neutralise("\u{1b}[2K\rok\u{9b}31m"),
            "\\u{1b}[2K\\rok\\u{9b}31m"
        );
    }
}
