//! Which of an image's files its processes can reach, statically: each
//! process's program found as `execvp` finds it (the image's `PATH`, the
//! first command of a `sh -c` script), the interpreter of a `#!` script
//! (through `/usr/bin/env`), then the ELF closure as the dynamic loader
//! walks it: `PT_INTERP`, and each `DT_NEEDED` looked for in `DT_RPATH`
//! (without `DT_RUNPATH`), `LD_LIBRARY_PATH` from the image's `Env`,
//! `DT_RUNPATH`, the directories `/etc/ld.so.conf` names, then the default
//! directories; a library of another machine or class is passed over, as
//! ld.so passes it over. An interpreter's own library tree (Python's
//! `lib/pythonX.Y`) counts as reached with it: an interpreter loads its
//! standard library at every start.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::elf::ElfFacts;
use crate::image_files::{DEFAULT_PATH, Facts, Files, Kind, Lookup, first_command};

/// One process to follow: its type (for messages) and what it runs.
#[derive(Debug, Clone)]
pub struct Start {
    pub process: String,
    pub argv: Vec<String>,
    pub working_dir: String,
}

/// Why a path was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "as")]
pub enum Why {
    /// A process's program (or the first command of its `sh -c`).
    Program { process: String },
    /// The `#!` interpreter of a script.
    Interpreter { of: String },
    /// The `PT_INTERP` dynamic loader of an ELF file.
    Loader { of: String },
    /// A `DT_NEEDED` library.
    Library { soname: String, by: String },
    /// A file of an interpreter's standard library.
    StandardLibrary { of: String },
    /// An ELF file of the app's own layers, loaded to see what it needs.
    AppObject,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Program { process } => write!(f, "program of process {process}"),
            Self::Interpreter { of } => write!(f, "interpreter of {of}"),
            Self::Loader { of } => write!(f, "loader of {of}"),
            Self::Library { soname, by } => write!(f, "{soname} needed by {by}"),
            Self::StandardLibrary { of } => write!(f, "standard library of {of}"),
            Self::AppObject => f.write_str("an ELF file of the app's layers"),
        }
    }
}

/// What the walk found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reached {
    /// Every path the processes touch (as the image holds it, directories
    /// resolved), with why.
    pub paths: BTreeMap<String, Why>,
    /// Libraries needed and found nowhere: (soname, needed by).
    pub missing: Vec<(String, String)>,
    /// Programs (commands, interpreters) not found: (program, process).
    pub missing_programs: Vec<(String, String)>,
}

/// Links, interpreters and libraries followed at most per walk: a
/// hostile image cannot make it loop.
const MAX_STEPS: usize = 100_000;

/// The walk over `files`, the image's filesystem, with its config `Env`.
pub struct Walk<'a> {
    files: &'a Files,
    path: String,
    ld_library_path: Vec<String>,
    conf_dirs: Vec<String>,
    pub reached: Reached,
    queue: VecDeque<(String, Why)>,
    seen: BTreeSet<String>,
}

impl<'a> Walk<'a> {
    pub fn new(files: &'a Files, env: &[String]) -> Self {
        let var = |name: &str| {
            env.iter()
                .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Self {
            files,
            path: var("PATH").unwrap_or_else(|| DEFAULT_PATH.to_owned()),
            ld_library_path: var("LD_LIBRARY_PATH")
                .map(|v| {
                    v.split([':', ';'])
                        .filter(|d| d.starts_with('/'))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            conf_dirs: ld_so_conf(files),
            reached: Reached::default(),
            queue: VecDeque::new(),
            seen: BTreeSet::new(),
        }
    }

    /// Follow a process from its argv.
    pub fn start(&mut self, start: &Start) {
        let search = self.path.clone();
        let lookup = Lookup {
            path: &search,
            working_dir: &start.working_dir,
        };
        let Some(program) = start.argv.first() else {
            return;
        };
        let mut programs = vec![program.clone()];
        let shell = std::path::Path::new(program)
            .file_name()
            .is_some_and(|n| matches!(n.to_str(), Some("sh" | "bash" | "dash" | "ash")));
        if shell
            && start.argv.get(1).map(String::as_str) == Some("-c")
            && let Some(first) = start.argv.get(2).and_then(|s| first_command(s))
        {
            programs.push(first);
        }
        for p in programs {
            match self.files.find(&p, &lookup) {
                Some(found) => self.push(
                    found,
                    Why::Program {
                        process: start.process.clone(),
                    },
                ),
                None => self
                    .reached
                    .missing_programs
                    .push((p, start.process.clone())),
            }
        }
        self.run();
    }

    /// Follow an ELF file or script from `path` (a library an app layer
    /// holds, say), as if a process had loaded it.
    pub fn load(&mut self, path: &str, why: Why) {
        self.push(path.to_owned(), why);
        self.run();
    }

    fn push(&mut self, path: String, why: Why) {
        self.queue.push_back((path, why));
    }

    fn run(&mut self) {
        let mut steps = 0;
        while let Some((path, why)) = self.queue.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                break;
            }
            // The path as named (a link, say: its package is reached too),
            // then what it resolves to.
            let named = self.files.parent_resolved(&path);
            let Some((resolved, kind)) = self.files.resolve(&path) else {
                continue;
            };
            self.reached
                .paths
                .entry(named)
                .or_insert_with(|| why.clone());
            if !self.seen.insert(resolved.clone()) {
                continue;
            }
            self.reached
                .paths
                .entry(resolved.clone())
                .or_insert_with(|| why.clone());
            let Kind::File {
                facts: Some(facts), ..
            } = kind
            else {
                continue;
            };
            match facts.as_ref() {
                Facts::Script { interpreter, arg } => {
                    self.script(&resolved, interpreter, arg.as_deref());
                }
                Facts::Elf(elf) => {
                    let elf = elf.clone();
                    self.elf(&resolved, &elf);
                }
                Facts::Text(_) => {}
            }
        }
    }

    fn script(&mut self, script: &str, interpreter: &str, arg: Option<&str>) {
        let of = Why::Interpreter {
            of: script.to_owned(),
        };
        self.push(interpreter.to_owned(), of.clone());
        // `#!/usr/bin/env python3`: env runs its argument from PATH.
        let env = std::path::Path::new(interpreter).file_name() == Some("env".as_ref());
        if env
            && let Some(program) =
                arg.and_then(|a| a.split_whitespace().find(|w| !w.starts_with('-')))
        {
            let search = self.path.clone();
            let lookup = Lookup {
                path: &search,
                working_dir: "/",
            };
            if let Some(found) = self.files.find(program, &lookup) {
                self.push(found, of);
            }
        }
    }

    fn elf(&mut self, object: &str, elf: &ElfFacts) {
        if let Some(interp) = &elf.interpreter {
            self.push(
                interp.clone(),
                Why::Loader {
                    of: object.to_owned(),
                },
            );
        }
        for dir in interpreter_library_trees(object) {
            self.library_tree(&dir, object);
        }
        for soname in &elf.needed {
            match self.library(soname, object, elf) {
                Some(found) => self.push(
                    found,
                    Why::Library {
                        soname: soname.clone(),
                        by: object.to_owned(),
                    },
                ),
                None => self
                    .reached
                    .missing
                    .push((soname.clone(), object.to_owned())),
            }
        }
    }

    /// Every file of `dir`, and the ELF closure of those that are ELF
    /// files (an interpreter's standard library and its extension modules).
    fn library_tree(&mut self, dir: &str, interpreter: &str) {
        let Some((dir, Kind::Dir)) = self.files.resolve(dir) else {
            return;
        };
        let prefix = format!("{}/", dir.trim_start_matches('/'));
        let found: Vec<String> = self
            .files
            .entries()
            .skip_while(|(p, _)| *p < prefix.as_str())
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(_, k)| !matches!(k, Kind::Dir))
            .map(|(p, _)| format!("/{p}"))
            .collect();
        for path in found {
            self.push(
                path,
                Why::StandardLibrary {
                    of: interpreter.to_owned(),
                },
            );
        }
    }

    /// Where the loader finds `soname` for `object` (whose facts are `elf`).
    pub fn library(&self, soname: &str, object: &str, elf: &ElfFacts) -> Option<String> {
        if soname.contains('/') {
            return self.fits(soname, elf).then(|| soname.to_owned());
        }
        let origin = object.rsplit_once('/').map_or("/", |(d, _)| d);
        let expand = |dir: &str| {
            dir.replace("$ORIGIN", origin)
                .replace("${ORIGIN}", origin)
                .replace("$LIB", if elf.is_64 { "lib64" } else { "lib" })
                .replace("${LIB}", if elf.is_64 { "lib64" } else { "lib" })
        };
        let rpath = if elf.runpath.is_empty() {
            &elf.rpath[..]
        } else {
            &[]
        };
        rpath
            .iter()
            .map(|d| expand(d))
            .chain(self.ld_library_path.iter().cloned())
            .chain(elf.runpath.iter().map(|d| expand(d)))
            .chain(self.conf_dirs.iter().cloned())
            .chain(default_dirs(elf).into_iter().map(str::to_owned))
            .map(|dir| format!("{}/{soname}", dir.trim_end_matches('/')))
            .find(|candidate| self.fits(candidate, elf))
    }

    /// Whether `path` is an ELF object the loader would take for `elf`:
    /// same machine and class.
    fn fits(&self, path: &str, elf: &ElfFacts) -> bool {
        matches!(
            self.files.facts(path),
            Some((_, Facts::Elf(lib))) if lib.machine == elf.machine && lib.is_64 == elf.is_64
        )
    }
}

/// The directories `/etc/ld.so.conf` names, its `include`s followed.
fn ld_so_conf(files: &Files) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut todo = vec!["/etc/ld.so.conf".to_owned()];
    let mut read = BTreeSet::new();
    while let Some(conf) = todo.pop() {
        if !read.insert(conf.clone()) || read.len() > 256 {
            continue;
        }
        let Some((_, Facts::Text(text))) = files.facts(&conf) else {
            continue;
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if let Some(pattern) = line.strip_prefix("include") {
                let pattern = pattern.trim();
                let (dir, glob) = pattern.rsplit_once('/').unwrap_or(("/etc", pattern));
                let (before, after) = glob.split_once('*').unwrap_or((glob, ""));
                let mut matched: Vec<String> = files
                    .names_in(dir)
                    .into_iter()
                    .filter(|n| n.starts_with(before) && n.ends_with(after))
                    .map(|n| format!("{dir}/{n}"))
                    .collect();
                matched.sort();
                matched.reverse();
                todo.extend(matched);
            } else if line.starts_with('/') {
                dirs.push(line.trim_end_matches('/').to_owned());
            }
        }
    }
    dirs
}

/// The loader's built-in directories for `elf`'s machine (Debian's
/// multiarch ones first), as glibc's on that machine has them.
fn default_dirs(elf: &ElfFacts) -> Vec<&'static str> {
    let triplet = match (elf.machine, elf.is_64) {
        (goblin::elf::header::EM_X86_64, true) => Some("x86_64-linux-gnu"),
        (goblin::elf::header::EM_AARCH64, true) => Some("aarch64-linux-gnu"),
        (goblin::elf::header::EM_386, false) => Some("i386-linux-gnu"),
        (goblin::elf::header::EM_ARM, false) => Some("arm-linux-gnueabihf"),
        _ => None,
    };
    let mut dirs = Vec::new();
    match triplet {
        Some("x86_64-linux-gnu") => {
            dirs.extend(["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]);
        }
        Some("aarch64-linux-gnu") => {
            dirs.extend(["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]);
        }
        Some("i386-linux-gnu") => dirs.extend(["/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu"]),
        Some(_) => dirs.extend(["/lib/arm-linux-gnueabihf", "/usr/lib/arm-linux-gnueabihf"]),
        None => {}
    }
    if elf.is_64 {
        dirs.extend(["/lib64", "/usr/lib64"]);
    }
    dirs.extend(["/lib", "/usr/lib"]);
    dirs
}

/// The library trees an interpreter at `program` loads from: Python's
/// `<prefix>/lib/pythonX.Y`, Perl's and Ruby's by their version.
fn interpreter_library_trees(program: &str) -> Vec<String> {
    let (bin, name) = program.rsplit_once('/').unwrap_or(("", program));
    let prefix = bin.strip_suffix("/bin").unwrap_or("/usr");
    if let Some(version) = name.strip_prefix("python")
        && !version.is_empty()
        && version.chars().all(|c| c.is_ascii_digit() || c == '.')
        && version.contains('.')
    {
        return vec![format!("{prefix}/lib/python{version}")];
    }
    if let Some(version) = name.strip_prefix("ruby")
        && !version.is_empty()
        && version.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return vec![format!("{prefix}/lib/ruby/{version}")];
    }
    if name == "perl" || name.starts_with("perl5") {
        return vec![
            format!("{prefix}/share/perl5"),
            format!("{prefix}/lib/perl5"),
        ];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_files::Listing;

    fn elf(interp: Option<&str>, needed: &[&str]) -> Kind {
        Kind::File {
            exec: true,
            facts: Some(Box::new(Facts::Elf(ElfFacts {
                interpreter: interp.map(str::to_owned),
                needed: needed.iter().map(|n| (*n).to_owned()).collect(),
                machine: goblin::elf::header::EM_X86_64,
                is_64: true,
                ..ElfFacts::default()
            }))),
        }
    }

    fn text(t: &str) -> Kind {
        Kind::File {
            exec: false,
            facts: Some(Box::new(Facts::Text(t.into()))),
        }
    }

    fn image() -> Files {
        let layer: Listing = vec![
            ("lib64/ld-linux-x86-64.so.2".into(), elf(None, &[])),
            ("lib/x86_64-linux-gnu/libc.so.6".into(), elf(None, &[])),
            (
                "usr/lib/x86_64-linux-gnu/libz.so.1".into(),
                elf(None, &["libc.so.6"]),
            ),
            ("opt/lib/libextra.so".into(), elf(None, &[])),
            (
                "etc/ld.so.conf".into(),
                text("include /etc/ld.so.conf.d/*.conf\n"),
            ),
            (
                "etc/ld.so.conf.d/opt.conf".into(),
                text("# extra\n/opt/lib\n"),
            ),
            (
                "usr/bin/python3.11".into(),
                elf(
                    Some("/lib64/ld-linux-x86-64.so.2"),
                    &["libz.so.1", "libc.so.6", "libextra.so"],
                ),
            ),
            (
                "usr/bin/python3".into(),
                Kind::Link {
                    target: "python3.11".into(),
                },
            ),
            ("usr/lib/python3.11/os.py".into(), text("")),
            (
                "usr/bin/bash".into(),
                elf(Some("/lib64/ld-linux-x86-64.so.2"), &["libtinfo.so.6"]),
            ),
            (
                "workspace/app.py".into(),
                Kind::File {
                    exec: true,
                    facts: Some(Box::new(Facts::Script {
                        interpreter: "/usr/bin/env".into(),
                        arg: Some("python3".into()),
                    })),
                },
            ),
            (
                "usr/bin/env".into(),
                elf(Some("/lib64/ld-linux-x86-64.so.2"), &["libc.so.6"]),
            ),
        ];
        let mut files = Files::default();
        files.apply(&layer);
        files
    }

    fn reached(argv: &[&str]) -> Reached {
        let files = image();
        let mut walk = Walk::new(&files, &["PATH=/usr/bin:/bin".into()]);
        walk.start(&Start {
            process: "web".into(),
            argv: argv.iter().map(|a| (*a).to_owned()).collect(),
            working_dir: "/workspace".into(),
        });
        walk.reached
    }

    #[test]
    fn a_program_reaches_its_loader_libraries_and_standard_library() {
        let r = reached(&["python3", "app.py"]);
        let paths: Vec<&str> = r.paths.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2",
                "/opt/lib/libextra.so",
                "/usr/bin/python3",
                "/usr/bin/python3.11",
                "/usr/lib/python3.11/os.py",
                "/usr/lib/x86_64-linux-gnu/libz.so.1",
            ]
        );
        assert_eq!(
            r.paths["/usr/lib/x86_64-linux-gnu/libz.so.1"].to_string(),
            "libz.so.1 needed by /usr/bin/python3.11"
        );
        assert!(r.missing.is_empty() && r.missing_programs.is_empty());
    }

    #[test]
    fn a_script_reaches_its_interpreter_through_env_and_misses_are_named() {
        let r = reached(&["./app.py"]);
        assert!(r.paths.contains_key("/usr/bin/env"));
        assert!(r.paths.contains_key("/usr/bin/python3.11"));
        let r = reached(&["bash", "-c", "gunicorn app"]);
        assert_eq!(
            r.missing,
            [("libtinfo.so.6".to_owned(), "/usr/bin/bash".to_owned())]
        );
        assert_eq!(
            r.missing_programs,
            [("gunicorn".to_owned(), "web".to_owned())]
        );
    }
}
