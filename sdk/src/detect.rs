//! Detect results and the build plan (CNB `[[provides]]`, `[[requires]]`, `[[or]]`).

use crate::bindings::cascade::buildpack::types as wit;

/// Something this buildpack needs from itself or an earlier buildpack.
#[derive(Debug, Clone, PartialEq)]
pub struct Require {
    name: String,
    metadata: toml::Table,
}

impl Require {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            metadata: toml::Table::new(),
        }
    }

    /// Set one metadata key, handed to the provider in its plan entry.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// One build plan: what this buildpack provides and requires.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildPlan {
    provides: Vec<String>,
    requires: Vec<Require>,
}

impl BuildPlan {
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn provides(mut self, name: impl Into<String>) -> Self {
        self.provides.push(name.into());
        self
    }

    #[must_use]
    pub fn requires(mut self, require: impl Into<Require>) -> Self {
        self.requires.push(require.into());
        self
    }

    fn into_record(self) -> wit::BuildPlan {
        wit::BuildPlan {
            provides: self.provides,
            requires: self
                .requires
                .into_iter()
                .map(|r| wit::Require {
                    name: r.name,
                    metadata: r.metadata.to_string(),
                })
                .collect(),
        }
    }
}

impl From<&str> for Require {
    fn from(name: &str) -> Self {
        Require::new(name)
    }
}

/// The outcome of `detect`.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectResult {
    /// The buildpack applies; the first plan is primary, the rest are `or`
    /// alternatives tried left to right.
    Pass(Vec<BuildPlan>),
    /// The buildpack does not apply; the reason is shown when no group passes.
    Fail(String),
}

impl DetectResult {
    /// Pass with an empty build plan.
    pub fn pass() -> Self {
        DetectResult::Pass(vec![BuildPlan::new()])
    }

    /// Pass with a build plan.
    pub fn pass_with(plan: BuildPlan) -> Self {
        DetectResult::Pass(vec![plan])
    }

    pub fn fail(reason: impl Into<String>) -> Self {
        DetectResult::Fail(reason.into())
    }

    /// Pass with an empty plan when `applies`, else fail with `reason`: the
    /// usual detect ("the app has a `go.mod`").
    pub fn pass_if(applies: bool, reason: impl Into<String>) -> Self {
        if applies {
            Self::pass()
        } else {
            Self::fail(reason)
        }
    }

    /// Add an `or` alternative plan (CNB `[[or]]`). No effect on a fail.
    #[must_use]
    pub fn or(mut self, plan: BuildPlan) -> Self {
        if let DetectResult::Pass(plans) = &mut self {
            plans.push(plan);
        }
        self
    }

    pub(crate) fn into_record(self) -> wit::DetectOutcome {
        match self {
            DetectResult::Pass(plans) => {
                wit::DetectOutcome::Pass(plans.into_iter().map(BuildPlan::into_record).collect())
            }
            DetectResult::Fail(reason) => wit::DetectOutcome::Fail(reason),
        }
    }
}
