//! Build plan resolution (CNB buildpack.md §Order Resolution): pick one plan
//! alternative per passing buildpack, left to right, and accept the first
//! trial in which every require has an earlier-or-same provider and every
//! provide a later-or-same requirer, dropping optional buildpacks that
//! break those rules.

use crate::api::{BuildPlan, PlanEntry};

/// One passing buildpack: its index in the group, whether it is optional,
/// and its plan alternatives (primary first).
pub struct Candidate<'a> {
    pub index: usize,
    pub optional: bool,
    pub plans: &'a [BuildPlan],
}

/// Most trials tried before giving up; alternatives multiply.
const MAX_TRIALS: usize = 4096;

/// The members that take part (group indices) with their plan entries, or
/// `None` when no trial resolves.
pub fn resolve(candidates: &[Candidate<'_>]) -> Option<Vec<(usize, Vec<PlanEntry>)>> {
    let empty = [BuildPlan::default()];
    let options: Vec<&[BuildPlan]> = candidates
        .iter()
        .map(|c| {
            if c.plans.is_empty() {
                &empty[..]
            } else {
                c.plans
            }
        })
        .collect();
    let mut choice = vec![0usize; candidates.len()];
    for _ in 0..MAX_TRIALS {
        let trial: Vec<(usize, bool, &BuildPlan)> = candidates
            .iter()
            .zip(&choice)
            .enumerate()
            .map(|(i, (c, &k))| (c.index, c.optional, &options[i][k]))
            .collect();
        if let Some(resolved) = run_trial(trial) {
            return Some(resolved);
        }
        // Next trial: advance the rightmost alternative first, so the
        // earlier buildpacks keep their preferred plans longest.
        let mut pos = choice.len();
        loop {
            if pos == 0 {
                return None;
            }
            pos -= 1;
            choice[pos] += 1;
            if choice[pos] < options[pos].len() {
                break;
            }
            choice[pos] = 0;
        }
    }
    None
}

fn run_trial(mut trial: Vec<(usize, bool, &BuildPlan)>) -> Option<Vec<(usize, Vec<PlanEntry>)>> {
    loop {
        let unmet = (0..trial.len()).find(|&i| {
            let plan = trial[i].2;
            plan.requires.iter().any(|r| {
                !trial[..=i]
                    .iter()
                    .any(|(_, _, p)| p.provides.contains(&r.name))
            }) || plan.provides.iter().any(|name| {
                !trial[i..]
                    .iter()
                    .any(|(_, _, p)| p.requires.iter().any(|r| &r.name == name))
            })
        });
        match unmet {
            None => break,
            Some(i) if trial[i].1 => {
                trial.remove(i);
            }
            Some(_) => return None,
        }
    }
    if trial.is_empty() {
        return None;
    }
    let entries = trial
        .iter()
        .map(|(index, _, plan)| {
            let mut entries = Vec::new();
            for name in &plan.provides {
                for (_, _, other) in &trial {
                    for r in other.requires.iter().filter(|r| &r.name == name) {
                        entries.push(PlanEntry {
                            name: r.name.clone(),
                            metadata: r.metadata.clone(),
                        });
                    }
                }
            }
            (*index, entries)
        })
        .collect();
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Require;

    fn plan(provides: &[&str], requires: &[&str]) -> BuildPlan {
        BuildPlan {
            provides: provides.iter().map(|s| (*s).into()).collect(),
            requires: requires
                .iter()
                .map(|s| Require {
                    name: (*s).into(),
                    metadata: toml::Table::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn provider_before_requirer_resolves_and_gets_the_entry() {
        let (a, b) = ([plan(&["node"], &[])], [plan(&[], &["node"])]);
        let got = resolve(&[
            Candidate {
                index: 0,
                optional: false,
                plans: &a,
            },
            Candidate {
                index: 1,
                optional: false,
                plans: &b,
            },
        ])
        .unwrap();
        assert_eq!(got[0].1.len(), 1);
        assert_eq!(got[0].1[0].name, "node");
        assert!(got[1].1.is_empty());
    }

    #[test]
    fn requirer_before_provider_fails() {
        let (a, b) = ([plan(&[], &["node"])], [plan(&["node"], &[])]);
        assert!(
            resolve(&[
                Candidate {
                    index: 0,
                    optional: false,
                    plans: &a
                },
                Candidate {
                    index: 1,
                    optional: false,
                    plans: &b
                },
            ])
            .is_none()
        );
    }

    #[test]
    fn an_optional_buildpack_with_unmet_requires_is_dropped() {
        let (a, b) = ([plan(&[], &["jdk"])], [plan(&[], &[])]);
        let got = resolve(&[
            Candidate {
                index: 0,
                optional: true,
                plans: &a,
            },
            Candidate {
                index: 1,
                optional: false,
                plans: &b,
            },
        ])
        .unwrap();
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn or_alternatives_are_tried_in_order() {
        let a = [plan(&["x"], &[]), plan(&[], &[])];
        let b = [plan(&[], &[])];
        let got = resolve(&[
            Candidate {
                index: 0,
                optional: false,
                plans: &a,
            },
            Candidate {
                index: 1,
                optional: false,
                plans: &b,
            },
        ])
        .unwrap();
        assert_eq!(
            got.len(),
            2,
            "second alternative of a (provides nothing) resolves"
        );
    }
}
