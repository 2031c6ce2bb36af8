//! The error a buildpack reports to the user.

use std::fmt;

use crate::bindings::cascade::buildpack::types as wit;

/// A failure shown to the app developer, with an optional hint.
///
/// Any `std::error::Error` converts into it, so `?` works on `std::fs` calls;
/// add what was being done with [`ResultExt::context`].
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
        BuildpackError::new(e.to_string())
    }
}

/// Add context to any error on its way into a [`BuildpackError`].
pub trait ResultExt<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| BuildpackError::new(format!("{what}: {e}")))
    }
}
