//! Detect: walk the builder's order and choose the first group whose
//! non-optional members pass and whose build plan resolves.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use super::plan::{self, Candidate};
use crate::api::{BuildpackRunner, DetectInput, DetectOutcome, PlanEntry};
use crate::builder::GroupMember;
use crate::ids::BuildpackId;
use crate::report::Reporter;

/// A buildpack of the chosen group with its resolved plan entries.
#[derive(Clone)]
pub struct Chosen {
    pub runner: Arc<dyn BuildpackRunner>,
    pub plan: Vec<PlanEntry>,
}

pub struct Detected {
    pub group: Vec<Chosen>,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("the order names buildpack {id}{} but no such buildpack was given", version.as_ref().map(|v| format!("@{v}")).unwrap_or_default())]
    UnknownBuildpack {
        id: BuildpackId,
        version: Option<String>,
    },
    #[error("no buildpack group passed detection:\n{summary}")]
    NoGroup { summary: String },
    #[error("buildpack {id} failed during detect: {message}\n{summary}")]
    Errored {
        id: BuildpackId,
        message: String,
        summary: String,
    },
}

/// What each buildpack said, kept as text so it can be shown and reused
/// across groups (a buildpack in several groups is detected once).
#[derive(Debug, Clone)]
enum Said {
    Pass(DetectOutcome),
    Fail(String),
    Error(String),
}

pub struct Detect<'a> {
    pub order: &'a [Vec<GroupMember>],
    pub buildpacks: &'a [Arc<dyn BuildpackRunner>],
    pub input: &'a DetectInput,
    pub reporter: &'a dyn Reporter,
}

impl Detect<'_> {
    pub fn run(&self) -> Result<Detected, DetectError> {
        let mut said: BTreeMap<BuildpackId, Said> = BTreeMap::new();
        for group in self.order {
            let runners = group
                .iter()
                .map(|m| self.find(m).map(|r| (m, r)))
                .collect::<Result<Vec<_>, _>>()?;
            self.detect_missing(&runners, &mut said);
            if let Some(chosen) = Self::try_group(&runners, &said) {
                let ids: Vec<String> = chosen.iter().map(|c| c.runner.id().to_string()).collect();
                self.reporter
                    .note(&format!("chose group: {}", ids.join(", ")));
                return Ok(Detected { group: chosen });
            }
        }
        let summary = summary(&said);
        if let Some((id, Said::Error(message))) =
            said.iter().find(|(_, s)| matches!(s, Said::Error(_)))
        {
            return Err(DetectError::Errored {
                id: id.clone(),
                message: message.clone(),
                summary,
            });
        }
        Err(DetectError::NoGroup { summary })
    }

    fn find(&self, member: &GroupMember) -> Result<Arc<dyn BuildpackRunner>, DetectError> {
        self.buildpacks
            .iter()
            .find(|b| {
                b.id() == &member.id
                    && member
                        .version
                        .as_ref()
                        .is_none_or(|v| v == &b.manifest().buildpack.version)
            })
            .cloned()
            .ok_or_else(|| DetectError::UnknownBuildpack {
                id: member.id.clone(),
                version: member.version.clone(),
            })
    }

    /// Run detect for the group's members not seen yet, in parallel
    /// (detect calls are independent, CNB allows it).
    fn detect_missing(
        &self,
        runners: &[(&GroupMember, Arc<dyn BuildpackRunner>)],
        said: &mut BTreeMap<BuildpackId, Said>,
    ) {
        let todo: Vec<&Arc<dyn BuildpackRunner>> = runners
            .iter()
            .map(|(_, r)| r)
            .filter(|r| !said.contains_key(r.id()))
            .fold(Vec::new(), |mut v, r| {
                if !v
                    .iter()
                    .any(|x: &&Arc<dyn BuildpackRunner>| x.id() == r.id())
                {
                    v.push(r);
                }
                v
            });
        let target = &self.input.target;
        let results: Vec<Said> = std::thread::scope(|scope| {
            let handles: Vec<_> = todo
                .iter()
                .map(|runner| {
                    scope.spawn(move || {
                        if !runner.manifest().supports(&target.os, &target.arch) {
                            return Said::Fail(format!(
                                "does not support {}/{}",
                                target.os, target.arch
                            ));
                        }
                        match runner.detect(self.input) {
                            Ok(DetectOutcome::Fail(reason)) => Said::Fail(reason),
                            Ok(pass) => Said::Pass(pass),
                            Err(e) => Said::Error(e.to_string()),
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Said::Error("detect panicked".into()))
                })
                .collect()
        });
        for (runner, result) in todo.iter().zip(results) {
            let line = match &result {
                Said::Pass(_) => "pass".to_string(),
                Said::Fail(reason) => format!("fail: {reason}"),
                Said::Error(e) => format!("error: {e}"),
            };
            self.reporter.note(&format!(
                "{}@{}: {line}",
                runner.id(),
                runner.manifest().buildpack.version
            ));
            said.insert(runner.id().clone(), result);
        }
    }

    fn try_group(
        runners: &[(&GroupMember, Arc<dyn BuildpackRunner>)],
        said: &BTreeMap<BuildpackId, Said>,
    ) -> Option<Vec<Chosen>> {
        let mut candidates = Vec::new();
        for (index, (member, runner)) in runners.iter().enumerate() {
            match &said[runner.id()] {
                Said::Pass(DetectOutcome::Pass(plans)) => {
                    candidates.push(Candidate {
                        index,
                        optional: member.optional,
                        plans,
                    });
                }
                _ if member.optional => {}
                _ => return None,
            }
        }
        let resolved = plan::resolve(&candidates)?;
        Some(
            resolved
                .into_iter()
                .map(|(index, plan)| Chosen {
                    runner: runners[index].1.clone(),
                    plan,
                })
                .collect(),
        )
    }
}

fn summary(said: &BTreeMap<BuildpackId, Said>) -> String {
    let mut out = String::new();
    for (id, s) in said {
        let line = match s {
            Said::Pass(_) => "pass".to_string(),
            Said::Fail(reason) => format!("fail: {reason}"),
            Said::Error(e) => format!("error: {e}"),
        };
        let _ = writeln!(out, "  {id}: {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BuildInput, BuildOutput, BuildPlan, RunError, Target};
    use crate::manifest::BuildpackManifest;
    use crate::report::Silent;

    /// A buildpack whose detect answer is fixed: phase logic without wasm.
    struct Fixed(BuildpackManifest, Result<DetectOutcome, String>);

    impl BuildpackRunner for Fixed {
        fn manifest(&self) -> &BuildpackManifest {
            &self.0
        }
        fn detect(&self, _: &DetectInput) -> Result<DetectOutcome, RunError> {
            self.1.clone().map_err(RunError::Trap)
        }
        fn build(&self, _: &BuildInput) -> Result<BuildOutput, RunError> {
            unreachable!()
        }
    }

    fn bp(id: &str, outcome: Result<DetectOutcome, String>) -> Arc<dyn BuildpackRunner> {
        let text = format!("api = \"0.12\"\n[buildpack]\nid = \"{id}\"\nversion = \"1\"\n");
        Arc::new(Fixed(BuildpackManifest::parse(&text, id).unwrap(), outcome))
    }

    fn member(id: &str, optional: bool) -> GroupMember {
        GroupMember {
            id: BuildpackId::new(id).unwrap(),
            version: None,
            optional,
        }
    }

    fn run(
        order: &[Vec<GroupMember>],
        bps: &[Arc<dyn BuildpackRunner>],
    ) -> Result<Detected, DetectError> {
        let input = DetectInput {
            app: Arc::new(
                crate::guest_tree::GuestTree::open_named(std::path::Path::new(".")).unwrap(),
            ),
            platform_env: BTreeMap::new(),
            target: Target::new("linux", "amd64"),
        };
        Detect {
            order,
            buildpacks: bps,
            input: &input,
            reporter: &Silent,
        }
        .run()
    }

    #[allow(clippy::unnecessary_wraps)] // an outcome of `Fixed`, which may be an error
    fn pass() -> Result<DetectOutcome, String> {
        Ok(DetectOutcome::Pass(vec![BuildPlan::default()]))
    }

    #[test]
    fn failed_optional_members_are_dropped_and_the_next_group_is_tried() {
        let bps = [
            bp("a/opt", Ok(DetectOutcome::Fail("no".into()))),
            bp("a/req", Ok(DetectOutcome::Fail("nope".into()))),
            bp("a/ok", pass()),
        ];
        let order = [
            vec![member("a/opt", true), member("a/req", false)],
            vec![member("a/opt", true), member("a/ok", false)],
        ];
        let got = run(&order, &bps).unwrap();
        assert_eq!(
            got.group
                .iter()
                .map(|c| c.runner.id().as_str())
                .collect::<Vec<_>>(),
            ["a/ok"]
        );
    }

    #[test]
    fn no_group_names_what_each_buildpack_said() {
        let bps = [bp("a/x", Ok(DetectOutcome::Fail("no Procfile".into())))];
        let err = run(&[vec![member("a/x", false)]], &bps)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("a/x: fail: no Procfile"), "{err}");
    }

    #[test]
    fn a_detect_error_is_reported_with_the_buildpack_id() {
        let bps = [bp("a/x", Err("boom".into()))];
        let err = run(&[vec![member("a/x", false)]], &bps).err().unwrap();
        assert!(
            matches!(&err, DetectError::Errored { id, .. } if id.as_str() == "a/x"),
            "{err}"
        );
    }

    #[test]
    fn an_all_optional_group_with_no_pass_fails() {
        let bps = [bp("a/x", Ok(DetectOutcome::Fail("no".into())))];
        assert!(run(&[vec![member("a/x", true)]], &bps).is_err());
    }
}
