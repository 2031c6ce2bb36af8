//! Procfile parsing: `<type>: <command>` per line, `#` comments, blank lines.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: String,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Parse a Procfile. Process types follow CNB: letters, digits, `.`, `_`, `-`.
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |reason: String| ParseError { line, reason };
        let Some((kind, command)) = trimmed.split_once(':') else {
            return Err(err(format!(
                "expected `<type>: <command>`, found {trimmed:?}"
            )));
        };
        let (kind, command) = (kind.trim(), command.trim());
        if kind.is_empty()
            || !kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(err(format!(
                "invalid process type {kind:?}: use letters, digits, '.', '_' or '-'"
            )));
        }
        if command.is_empty() {
            return Err(err(format!("process {kind:?} has no command")));
        }
        if entries.iter().any(|e| e.kind == kind) {
            return Err(err(format!("process {kind:?} is declared twice")));
        }
        entries.push(Entry {
            kind: kind.to_owned(),
            command: command.to_owned(),
        });
    }
    Ok(entries)
}

/// The argv for a Procfile command: split on whitespace when the command has
/// no shell syntax; a command that already is `sh -c '…'` (or bash) as its
/// own words, so it is not wrapped in a second shell; else
/// `/bin/sh -c <command>`.
pub fn to_argv(command: &str) -> Vec<String> {
    const SHELL: &[char] = &[
        '$', '`', '\\', '"', '\'', '|', '&', ';', '<', '>', '(', ')', '*', '?', '[', ']', '#', '~',
        '{', '}', '=', '!', '\n',
    ];
    const SHELLS: &[&str] = &["sh", "/bin/sh", "bash", "/bin/bash", "/usr/bin/bash"];
    if let Some(words) = shlex::split(command)
        && words.len() >= 3
        && SHELLS.contains(&words[0].as_str())
        && words[1] == "-c"
    {
        return words;
    }
    if command.contains(SHELL) {
        vec!["/bin/sh".into(), "-c".into(), command.into()]
    } else {
        command.split_whitespace().map(str::to_owned).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_comments_and_blank_lines() {
        let entries = parse("# app\nweb: ./server -p 80\n\nworker:  ./work\n").unwrap();
        assert_eq!(
            entries,
            vec![
                Entry {
                    kind: "web".into(),
                    command: "./server -p 80".into()
                },
                Entry {
                    kind: "worker".into(),
                    command: "./work".into()
                },
            ]
        );
    }

    #[test]
    fn reports_the_line_of_a_bad_entry() {
        let err = parse("web: ok\n\nthis is not an entry\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().starts_with("line 3:"), "{err}");
    }

    #[test]
    fn rejects_bad_types_empty_commands_and_duplicates() {
        assert_eq!(parse("we b: x").unwrap_err().line, 1);
        assert_eq!(parse("web:").unwrap_err().line, 1);
        assert_eq!(parse("web: a\nweb: b").unwrap_err().line, 2);
    }

    #[test]
    fn simple_commands_are_execd_and_shell_lines_use_sh() {
        assert_eq!(to_argv("/bin/echo hi  there"), ["/bin/echo", "hi", "there"]);
        assert_eq!(to_argv("echo $PORT"), ["/bin/sh", "-c", "echo $PORT"]);
    }

    #[test]
    fn a_command_that_is_already_a_shell_is_not_wrapped_again() {
        assert_eq!(
            to_argv(r#"sh -c "echo \"$PORT\" && ./serve""#),
            ["sh", "-c", r#"echo "$PORT" && ./serve"#]
        );
        assert_eq!(
            to_argv("/bin/bash -c 'exec ./web'"),
            ["/bin/bash", "-c", "exec ./web"]
        );
        assert_eq!(
            to_argv("sh ./start.sh"),
            ["sh", "./start.sh"],
            "not -c: a plain command"
        );
    }
}
