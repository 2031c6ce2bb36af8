//! Processes (CNB `launch.toml` `[[processes]]`).

use crate::bindings::cascade::buildpack::types as wit;

/// A process the image can run. The default one becomes the image's
/// Entrypoint; it is exec'd directly, with no shell and no launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    kind: String,
    command: Vec<String>,
    args: Vec<String>,
    default: bool,
    working_dir: Option<String>,
}

impl Process {
    /// A valid process type made from a program's name: CNB allows letters,
    /// digits, `.`, `_` and `-`; anything else becomes `_`.
    pub fn type_from_name(name: &str) -> String {
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// A process of type `kind` (`web`, `worker`...) running `command`.
    pub fn new<I, S>(kind: impl Into<String>, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            kind: kind.into(),
            command: command.into_iter().map(Into::into).collect(),
            args: Vec::new(),
            default: false,
            working_dir: None,
        }
    }

    /// Arguments a user may override when running the image.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    #[must_use]
    pub fn default(mut self, yes: bool) -> Self {
        self.default = yes;
        self
    }

    #[must_use]
    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub(crate) fn into_record(self) -> wit::Process {
        wit::Process {
            type_: self.kind,
            command: self.command,
            args: self.args,
            default: self.default,
            working_dir: self.working_dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_types_from_names_keep_only_what_cnb_allows() {
        assert_eq!(Process::type_from_name("a+b"), "a_b");
        assert_eq!(Process::type_from_name("go-web.v2_x"), "go-web.v2_x");
    }
}
