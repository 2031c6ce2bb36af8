//! Validated identifiers, parsed at the edge (libcnb-data's `buildpack_id`,
//! `layer_name`, `process_type`).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind} {value:?}: {rule}")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub rule: &'static str,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $rule:literal, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                let valid: fn(&str) -> bool = $valid;
                if valid(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError { kind: $kind, value, rule: $rule })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A buildpack id such as `cascade/procfile` (CNB: letters, digits, `.`,
    /// `/`, `-`, `_`; not `app`, `config`, `sbom`).
    BuildpackId,
    "buildpack id",
    "use lowercase letters, digits, '.', '/', '-' or '_', and not app, config or sbom",
    |s| !s.is_empty()
        && s.len() <= 253
        && !matches!(s, "app" | "config" | "sbom")
        && !s.starts_with('/')
        && !s.ends_with('/')
        && !s.contains("//")
        && !s.split('/').any(|part| part == "." || part == "..")
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '/' | '-' | '_'))
);

id_type!(
    /// A layer name: a single path component, not `build`, `launch`, `store`.
    LayerName,
    "layer name",
    "use letters, digits, '-', '_' or '.', and not build, launch or store",
    |s| !s.is_empty()
        && !matches!(s, "." | ".." | "build" | "launch" | "store")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
);

id_type!(
    /// A process type (CNB: letters, digits, `.`, `_`, `-`).
    ProcessType,
    "process type",
    "use letters, digits, '.', '_' or '-'",
    |s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
);

impl BuildpackId {
    /// The id as one path component (CNB escapes `/` as `_`).
    pub fn escaped(&self) -> String {
        self.0.replace('/', "_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildpack_ids_are_validated_and_escaped() {
        let id = BuildpackId::new("cascade/procfile").unwrap();
        assert_eq!(id.escaped(), "cascade_procfile");
        for bad in ["", "app", "Caps", "a//b", "/a", "a/../b", "a b"] {
            assert!(BuildpackId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn layer_names_reject_reserved_names_and_paths() {
        assert!(LayerName::new("site").is_ok());
        for bad in ["build", "launch", "store", "..", "a/b", ""] {
            assert!(LayerName::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
