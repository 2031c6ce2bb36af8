//! The error a buildpack reports to the user.

use std::fmt;

use crate::bindings::cascade::buildpack::types as wit;

/// A failure shown to the app developer, with an optional hint.
///
/// Any `std::error::Error` converts into it with its whole source chain
/// (`a: b: c`), so `?` works on any call; add what was being done with
/// [`ResultExt::context`]. `std::fs` errors do not say which file they
/// failed on: call [`crate::fs`]'s functions of the same names instead
/// (`cascade_sdk::fs::read_to_string(path)?`), whose errors do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildpackError {
    message: String,
    hint: Option<String>,
}

pub type Result<T, E = BuildpackError> = std::result::Result<T, E>;

impl BuildpackError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    /// What the user should do about it.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn into_record(self) -> wit::BuildpackError {
        wit::BuildpackError {
            message: self.message,
            hint: self.hint,
        }
    }
}

impl fmt::Display for BuildpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// No `impl Error for BuildpackError`: that keeps this blanket impl coherent
// (the same trick as anyhow).
impl<E: std::error::Error> From<E> for BuildpackError {
    fn from(e: E) -> Self {
        BuildpackError::new(chain(&e))
    }
}

/// `e` and each of its sources, `: `-separated; a source whose text its
/// error already quotes is not said twice.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Add context to any error on its way into a [`BuildpackError`].
pub trait ResultExt<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<BuildpackError>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| {
            let e: BuildpackError = e.into();
            BuildpackError {
                message: format!("{what}: {}", e.message),
                hint: e.hint,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("reading the lockfile")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_error_keeps_its_source_chain() {
        let e: BuildpackError = Outer(std::io::Error::other("disk full")).into();
        assert_eq!(e.message(), "reading the lockfile: disk full");
    }

    #[test]
    fn the_fs_wrappers_name_the_path_that_failed() {
        let r: Result<String> = crate::fs::read_to_string("/no/such/file.toml").map_err(Into::into);
        let e = r.context("loading the inventory").unwrap_err();
        assert!(e.message().starts_with("loading the inventory: "), "{e}");
        assert!(e.message().contains("/no/such/file.toml"), "{e}");
    }

    #[test]
    fn context_keeps_the_hint() {
        let r: Result<()> = Err(BuildpackError::new("no go.mod").hint("run go mod init"));
        let e = r.context("detecting").unwrap_err();
        assert_eq!(e.to_string(), "detecting: no go.mod");
        assert_eq!(e.hint.as_deref(), Some("run go mod init"));
    }
}
