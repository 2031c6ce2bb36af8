//! The stack contract: what an app needs from its run image — the sonames
//! its ELF files and its processes' programs load from the base, and the
//! programs and loaders of the base its processes run — worked out at
//! build from the image's listings, recorded in the label
//! `dev.cascade.stack-contract`, and checked against a new base before a
//! rebase moves the app onto it. A base bump that keeps every one of them
//! needs no `--force`, whatever its tag; one that drops one is refused,
//! naming it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::reach::{Reached, Start, Walk, Why};
use crate::elf::ElfFacts;
use crate::image_files::{Facts, Files, Kind};

/// What an app needs of its base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// Sonames loaded from the base where any program would look for them
    /// (`libc.so.6`, `libexpat.so.1`), with the machine and class of the
    /// object that needs them: a library of another machine does not
    /// satisfy them.
    pub sonames: BTreeMap<String, Class>,
    /// Paths of the base's files the app runs or maps by their own path:
    /// process programs, `#!` interpreters, dynamic loaders, preloaded
    /// libraries, and libraries found through a base object's own
    /// `RPATH`/`RUNPATH` (`/usr/lib/jvm/.../libjli.so`).
    pub interpreters: BTreeSet<String>,
}

/// An ELF `e_machine` and class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Class {
    pub machine: u16,
    pub is_64: bool,
}

/// What the app of an image needs, and what it needs that the image does
/// not hold.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    pub contract: Contract,
    /// Libraries an app ELF file (or a program it runs) needs that neither
    /// the run image nor a launch layer provides: (soname, needed by).
    pub unresolved: Vec<(String, String)>,
}

/// Work out the contract of an image: `files` is the whole image, `base`
/// its run image's layers, `app_objects` the ELF files of its own layers
/// (launch layers and app), `starts` its processes.
pub fn needs(files: &Files, base: &Files, env: &[String], starts: &[Start]) -> Needs {
    let mut walk = Walk::new(files, env);
    for start in starts {
        walk.start(start);
    }
    super::load_app_objects(&mut walk, files, base);
    let Reached { paths, missing, .. } = walk.reached;
    let mut contract = Contract::default();
    for (path, why) in &paths {
        if !super::from_base(files, base, path) {
            continue;
        }
        match why {
            Why::Library {
                soname,
                own_path: false,
                ..
            } => {
                let class = match files.facts(path) {
                    Some((_, Facts::Elf(elf))) => Class {
                        machine: elf.machine,
                        is_64: elf.is_64,
                    },
                    _ => Class::default(),
                };
                contract.sonames.insert(soname.clone(), class);
            }
            Why::Library { own_path: true, .. }
            | Why::Program { .. }
            | Why::Interpreter { .. }
            | Why::Loader { .. }
            | Why::Preload => {
                contract.interpreters.insert(path.clone());
            }
            Why::StandardLibrary { .. } | Why::AppObject => {}
        }
    }
    Needs {
        contract,
        unresolved: missing,
    }
}

/// What of `contract` the base `files` (with its image `Env`) lacks: each
/// soname it cannot load and each program it does not hold, by name.
pub fn missing(contract: &Contract, files: &Files, env: &[String]) -> Vec<String> {
    let mut walk = Walk::new(files, env);
    let mut out: Vec<String> = Vec::new();
    for (soname, class) in &contract.sonames {
        let probe = ElfFacts {
            machine: class.machine,
            is_64: class.is_64,
            ..ElfFacts::default()
        };
        if walk.library(soname, "/", &probe).is_none() {
            out.push(soname.clone());
        }
    }
    out.extend(
        contract
            .interpreters
            .iter()
            .filter(|p| !matches!(files.resolve(p), Some((_, Kind::File { .. }))))
            .cloned(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_files::Listing;

    fn elf(interp: Option<&str>, needed: &[&str], soname: Option<&str>) -> Kind {
        Kind::File {
            exec: true,
            facts: Some(Box::new(Facts::Elf(ElfFacts {
                interpreter: interp.map(str::to_owned),
                needed: needed.iter().map(|n| (*n).to_owned()).collect(),
                soname: soname.map(str::to_owned),
                machine: object::elf::EM_X86_64,
                is_64: true,
                ..ElfFacts::default()
            }))),
        }
    }

    const LD: &str = "/lib64/ld-linux-x86-64.so.2";

    fn base(with_expat: bool) -> Listing {
        let mut l: Listing = vec![
            ("lib64/ld-linux-x86-64.so.2".into(), elf(None, &[], None)),
            (
                "lib/x86_64-linux-gnu/libc.so.6".into(),
                elf(None, &[], Some("libc.so.6")),
            ),
            (
                "usr/bin/python3.11".into(),
                elf(Some(LD), &["libexpat.so.1", "libc.so.6"], None),
            ),
            ("usr/bin/bash".into(), elf(Some(LD), &["libc.so.6"], None)),
        ];
        if with_expat {
            l.push((
                "usr/lib/x86_64-linux-gnu/libexpat.so.1".into(),
                elf(None, &["libc.so.6"], Some("libexpat.so.1")),
            ));
        }
        l
    }

    fn files(layers: &[&Listing]) -> Files {
        let mut f = Files::default();
        for l in layers {
            f.apply(l);
        }
        f
    }

    #[test]
    fn the_contract_is_what_the_app_loads_from_the_base_and_a_base_without_it_is_named() {
        let app: Listing = vec![
            (
                "workspace/app.py".into(),
                Kind::File {
                    exec: false,
                    facts: None,
                },
            ),
            (
                "layers/x/lib/libmine.so".into(),
                elf(None, &["libc.so.6", "libgone.so.2"], None),
            ),
        ];
        let old = base(true);
        let (image, base_files) = (files(&[&old, &app]), files(&[&old]));
        let start = Start {
            process: "web".into(),
            argv: vec!["/usr/bin/python3.11".into(), "app.py".into()],
            working_dir: "/workspace".into(),
        };
        let needs = needs(&image, &base_files, &[], &[start]);
        let sonames: Vec<&str> = needs.contract.sonames.keys().map(String::as_str).collect();
        assert_eq!(sonames, ["libc.so.6", "libexpat.so.1"]);
        let programs: Vec<&str> = needs
            .contract
            .interpreters
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(programs, [LD, "/usr/bin/python3.11"]);
        assert_eq!(
            needs.unresolved,
            [(
                "libgone.so.2".to_owned(),
                "/layers/x/lib/libmine.so".to_owned()
            )]
        );
        // A patched base keeping every soname passes; one without expat
        // is named.
        assert!(missing(&needs.contract, &files(&[&base(true)]), &[]).is_empty());
        assert_eq!(
            missing(&needs.contract, &files(&[&base(false)]), &[]),
            ["libexpat.so.1"]
        );
        let no_python: Listing = base(true)
            .into_iter()
            .filter(|(p, _)| !p.contains("python"))
            .collect();
        assert_eq!(
            missing(&needs.contract, &files(&[&no_python]), &[]),
            ["/usr/bin/python3.11"]
        );
    }
}
