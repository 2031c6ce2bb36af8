//! Which of an image's files its processes can reach, statically: each
//! process's program found as `execvp` finds it (the image's `PATH`, the
//! first command of a `sh -c` script), the interpreter of a `#!` script
//! (through `/usr/bin/env`), then the ELF closure as the dynamic loader
//! walks it: `PT_INTERP`, and each `DT_NEEDED` looked for in `DT_RPATH`
//! (without `DT_RUNPATH`), `LD_LIBRARY_PATH` from the image's `Env`,
//! `DT_RUNPATH`, the directories `/etc/ld.so.conf` names, then the default
//! directories; a library of another machine or class is passed over, as
//! ld.so passes it over; `LD_PRELOAD` of the image's `Env` and
//! `/etc/ld.so.preload` are loaded into every process. An interpreter's own
//! library trees (Python's `lib/pythonX.Y` and Debian's `dist-packages`,
//! Perl's and Ruby's) count as reached with it: an interpreter loads its
//! standard library at every start. Wrappers (`env`, `tini`, `dumb-init`,
//! `gosu`) are followed to the program they run, and every command of a
//! `sh -c` script.
//!
//! What a static walk cannot see (a shell script's commands, `dlopen`, an
//! ELF file it cannot read, a walk cut short by its bounds) is said in
//! [`Reached::incomplete`]: a package it reports unreached may still be
//! used, and `cascade bloat --vex` refuses to state otherwise.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::elf::ElfFacts;
use crate::image_files::{BUILTINS, DEFAULT_PATH, Facts, Files, Kind, Lookup, first_command};

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
    /// A `DT_NEEDED` library; `own_path`: found through the needing
    /// object's own `DT_RPATH`/`DT_RUNPATH` (or named by path).
    Library {
        soname: String,
        by: String,
        own_path: bool,
    },
    /// Named by `LD_PRELOAD` or `/etc/ld.so.preload`.
    Preload,
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
            Self::Library { soname, by, .. } => write!(f, "{soname} needed by {by}"),
            Self::Preload => f.write_str("preloaded into every process"),
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
    /// Why what is reported unreached may still be used (empty: the walk
    /// saw everything a static walk can).
    pub incomplete: Vec<String>,
}

/// Paths taken and library lookups made at most per walk, and paths
/// waiting at most: a hostile image cannot make it loop or grow without
/// end. Reaching a bound is said in [`Reached::incomplete`].
const MAX_STEPS: usize = 2_000_000;
const MAX_QUEUE: usize = 1_000_000;
/// ld.so.conf files read, `include` lines followed and directories kept.
const MAX_CONF: usize = 256;

/// Programs that run the program their arguments name.
const WRAPPERS: &[&str] = &["env", "tini", "dumb-init", "gosu", "su-exec", "catatonit"];
/// Shells: their scripts' commands are not followed.
const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"];

/// The walk over `files`, the image's filesystem, with its config `Env`.
pub struct Walk<'a> {
    files: &'a Files,
    path: String,
    ld_library_path: Vec<String>,
    conf_dirs: Vec<String>,
    preload: Vec<String>,
    pub reached: Reached,
    queue: VecDeque<(String, Why)>,
    seen: BTreeSet<String>,
    trees: BTreeSet<String>,
    steps: usize,
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
            preload: preload(files, var("LD_PRELOAD").as_deref()),
            reached: Reached::default(),
            queue: VecDeque::new(),
            seen: BTreeSet::new(),
            trees: BTreeSet::new(),
            steps: 0,
        }
    }

    /// Follow a process from its argv.
    pub fn start(&mut self, start: &Start) {
        let search = self.path.clone();
        let lookup = Lookup {
            path: &search,
            working_dir: &start.working_dir,
        };
        for p in programs(&start.argv) {
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
        // Every process maps what LD_PRELOAD and ld.so.preload name.
        for lib in self.preload.clone() {
            self.push(lib, Why::Preload);
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
        if self.queue.len() >= MAX_QUEUE {
            self.cut_short();
            return;
        }
        self.queue.push_back((path, why));
    }

    /// Count one step; `false` once the walk is over its bound.
    fn step(&mut self) -> bool {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.cut_short();
            return false;
        }
        true
    }

    fn cut_short(&mut self) {
        let why = "the walk reached its bounds (a hostile or very large image): it was cut short"
            .to_owned();
        if !self.reached.incomplete.contains(&why) {
            self.reached.incomplete.push(why);
        }
    }

    fn run(&mut self) {
        while let Some((path, why)) = self.queue.pop_front() {
            if !self.step() {
                self.queue.clear();
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
                Facts::UnreadableElf => self.reached.incomplete.push(format!(
                    "{resolved}: an ELF file whose headers could not be read; what it loads is unknown"
                )),
                Facts::Text(_) => {}
            }
        }
    }

    fn script(&mut self, script: &str, interpreter: &str, arg: Option<&str>) {
        let of = Why::Interpreter {
            of: script.to_owned(),
        };
        self.push(interpreter.to_owned(), of.clone());
        let name = interpreter.rsplit('/').next().unwrap_or(interpreter);
        if SHELLS.contains(&name) {
            self.reached.incomplete.push(format!(
                "{script} is a shell script: the programs it runs are not followed"
            ));
        }
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
        for soname in &elf.needed {
            match self.library(soname, object, elf) {
                Some((found, by_path)) => self.push(
                    found,
                    Why::Library {
                        soname: soname.clone(),
                        by: object.to_owned(),
                        own_path: by_path,
                    },
                ),
                None => self
                    .reached
                    .missing
                    .push((soname.clone(), object.to_owned())),
            }
        }
        // After its libraries, so a large tree cannot crowd them out.
        for dir in interpreter_library_trees(self.files, object) {
            self.library_tree(&dir, object);
        }
    }

    /// Every file of `dir`, and the ELF closure of those that are ELF
    /// files (an interpreter's standard library and its extension modules).
    fn library_tree(&mut self, dir: &str, interpreter: &str) {
        let Some((dir, Kind::Dir)) = self.files.resolve(dir) else {
            return;
        };
        // Each tree once, however many interpreters share it.
        if !self.trees.insert(dir.clone()) {
            return;
        }
        let found: Vec<String> = self
            .files
            .under(&dir)
            .filter(|(_, k)| !matches!(k, Kind::Dir))
            .map(|(p, _)| format!("/{p}"))
            .filter(|p| !self.seen.contains(p))
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

    /// Where the loader finds `soname` for `object` (whose facts are
    /// `elf`), and whether it was found through the object's own
    /// `DT_RPATH`/`DT_RUNPATH` (or a path of its own) rather than where
    /// any program would look.
    pub fn library(
        &mut self,
        soname: &str,
        object: &str,
        elf: &ElfFacts,
    ) -> Option<(String, bool)> {
        if soname.contains('/') {
            // Relative to the working directory, which the loader uses.
            return self.fits(soname, elf).then(|| (soname.to_owned(), true));
        }
        let origin = object.rsplit_once('/').map_or("/", |(d, _)| d);
        let expand = |dir: &str| -> Option<String> {
            // A hostile RUNPATH of many `$ORIGIN`s would grow without end.
            if dir.matches("ORIGIN").count() + dir.matches("LIB").count() > 4 {
                return None;
            }
            let lib = if elf.is_64 { "lib64" } else { "lib" };
            Some(
                dir.replace("${ORIGIN}", origin)
                    .replace("$ORIGIN", origin)
                    .replace("${LIB}", lib)
                    .replace("$LIB", lib),
            )
        };
        let rpath = if elf.runpath.is_empty() {
            &elf.rpath[..]
        } else {
            &[]
        };
        let own = |dirs: &[String]| -> Vec<(String, bool)> {
            dirs.iter()
                .filter_map(|d| expand(d))
                .map(|d| (d, true))
                .collect()
        };
        let candidates: Vec<(String, bool)> = own(rpath)
            .into_iter()
            .chain(self.ld_library_path.iter().map(|d| (d.clone(), false)))
            .chain(own(&elf.runpath))
            .chain(self.conf_dirs.iter().map(|d| (d.clone(), false)))
            .chain(default_dirs(elf).into_iter().map(|d| (d.to_owned(), false)))
            .filter(|(d, _)| d.len() <= 4096)
            .collect();
        for (dir, own) in candidates {
            if !self.step() {
                return None;
            }
            let candidate = format!("{}/{soname}", dir.trim_end_matches('/'));
            if self.fits(&candidate, elf) {
                return Some((candidate, own));
            }
        }
        None
    }

    /// Whether `path` is an ELF object the loader would take for `elf`:
    /// same machine and class.
    fn fits(&self, path: &str, elf: &ElfFacts) -> bool {
        match self.files.facts(path) {
            Some((_, Facts::Elf(lib))) => lib.machine == elf.machine && lib.is_64 == elf.is_64,
            // One the loader might take: counted (and said incomplete).
            Some((_, Facts::UnreadableElf)) => true,
            _ => false,
        }
    }
}

/// The directories `/etc/ld.so.conf` names, its `include`s followed (at
/// most [`MAX_CONF`] files, includes and directories).
fn ld_so_conf(files: &Files) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut todo = vec!["/etc/ld.so.conf".to_owned()];
    let mut read = BTreeSet::new();
    let mut includes = 0;
    while let Some(conf) = todo.pop() {
        if read.len() >= MAX_CONF || !read.insert(conf.clone()) {
            continue;
        }
        let Some((_, Facts::Text(text))) = files.facts(&conf) else {
            continue;
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if let Some(pattern) = line.strip_prefix("include") {
                includes += 1;
                if includes > MAX_CONF {
                    break;
                }
                let pattern = pattern.trim();
                let (dir, glob) = pattern.rsplit_once('/').unwrap_or(("/etc", pattern));
                let (before, after) = glob.split_once('*').unwrap_or((glob, ""));
                let mut matched: Vec<String> = files
                    .names_in(dir)
                    .into_iter()
                    .filter(|n| n.starts_with(before) && n.ends_with(after))
                    .take(MAX_CONF)
                    .map(|n| format!("{dir}/{n}"))
                    .collect();
                matched.sort();
                matched.reverse();
                todo.extend(matched);
            } else if line.starts_with('/') && dirs.len() < MAX_CONF {
                dirs.push(line.trim_end_matches('/').to_owned());
            }
        }
    }
    dirs
}

/// What `LD_PRELOAD` (of the image's `Env`) and `/etc/ld.so.preload`
/// name: loaded into every process.
fn preload(files: &Files, env: Option<&str>) -> Vec<String> {
    let from_file = match files.facts("/etc/ld.so.preload") {
        Some((_, Facts::Text(t))) => t.clone(),
        _ => String::new(),
    };
    env.unwrap_or_default()
        .split([':', ' '])
        .chain(from_file.split_whitespace())
        .filter(|p| !p.is_empty())
        .take(MAX_CONF)
        .map(|p| {
            if p.contains('/') {
                p.to_owned()
            } else {
                // A bare name is looked for in the default directories.
                [
                    "/lib",
                    "/usr/lib",
                    "/lib/x86_64-linux-gnu",
                    "/usr/lib/x86_64-linux-gnu",
                    "/lib/aarch64-linux-gnu",
                    "/usr/lib/aarch64-linux-gnu",
                ]
                .iter()
                .map(|d| format!("{d}/{p}"))
                .find(|c| files.resolve(c).is_some())
                .unwrap_or_else(|| format!("/lib/{p}"))
            }
        })
        .collect()
}

/// The programs an argv runs: its first word, the program a wrapper
/// (`env`, `tini`, ...) runs, and the first command of each part of a
/// `sh -c` script (`cd /app && exec gunicorn app` runs gunicorn).
fn programs(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = argv;
    while let Some(program) = rest.first() {
        out.push(program.clone());
        let name = program.rsplit('/').next().unwrap_or(program);
        if SHELLS.contains(&name) {
            // `-c`, `-ec`, `-lc`: the script is the next argument.
            if let Some(i) = rest
                .iter()
                .position(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'))
                && let Some(script) = rest.get(i + 1)
            {
                for part in script.split(['\n', ';', '&', '|']) {
                    if let Some(first) = first_command(part)
                        && !BUILTINS.contains(&first.as_str())
                        && !out.contains(&first)
                    {
                        out.push(first);
                    }
                }
            }
            break;
        }
        if !WRAPPERS.contains(&name) || out.len() > 8 {
            break;
        }
        // Past the wrapper's options and `NAME=value` assignments.
        let next = rest[1..]
            .iter()
            .position(|a| !a.starts_with('-') && !a.contains('='))
            .map(|i| i + 1);
        match next {
            Some(i) => rest = &rest[i..],
            None => break,
        }
    }
    out
}

/// The loader's built-in directories for `elf`'s machine (Debian's
/// multiarch ones first), as glibc's on that machine has them.
fn default_dirs(elf: &ElfFacts) -> Vec<&'static str> {
    let triplet = match (elf.machine, elf.is_64) {
        (object::elf::EM_X86_64, true) => Some("x86_64-linux-gnu"),
        (object::elf::EM_AARCH64, true) => Some("aarch64-linux-gnu"),
        (object::elf::EM_386, false) => Some("i386-linux-gnu"),
        (object::elf::EM_ARM, false) => Some("arm-linux-gnueabihf"),
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
/// `<prefix>/lib/pythonX.Y` and Debian's `/usr/lib/python3/dist-packages`,
/// Perl's and Ruby's versioned trees.
fn interpreter_library_trees(files: &Files, program: &str) -> Vec<String> {
    let (bin, name) = program.rsplit_once('/').unwrap_or(("", program));
    let prefix = bin.strip_suffix("/bin").unwrap_or("/usr");
    let versioned = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.');
    // Directories of `dir` whose names start with `start`.
    let named = |dir: &str, start: &str| -> Vec<String> {
        files
            .names_in(dir)
            .into_iter()
            .filter(|n| n.starts_with(start))
            .map(|n| format!("{dir}/{n}"))
            .collect()
    };
    if let Some(version) = name.strip_prefix("python")
        && versioned(version)
        && version.contains('.')
    {
        return vec![
            format!("{prefix}/lib/python{version}"),
            format!("{prefix}/lib/python3/dist-packages"),
        ];
    }
    if let Some(version) = name.strip_prefix("ruby")
        && versioned(version)
    {
        return named(&format!("{prefix}/lib/ruby"), version);
    }
    if name == "perl" || name.starts_with("perl5") {
        let mut trees = named(&format!("{prefix}/share/perl"), "5");
        trees.push(format!("{prefix}/share/perl5"));
        for arch in ["x86_64-linux-gnu", "aarch64-linux-gnu"] {
            trees.extend(named(&format!("{prefix}/lib/{arch}"), "perl"));
        }
        return trees;
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
                machine: object::elf::EM_X86_64,
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

#[cfg(test)]
mod hostile {
    use super::*;
    use crate::image_files::Listing;

    #[test]
    fn wrappers_and_every_command_of_a_script_are_followed() {
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            programs(&argv(&["tini", "--", "env", "A=1", "gunicorn", "app"])),
            ["tini", "env", "gunicorn"]
        );
        assert_eq!(
            programs(&argv(&[
                "/bin/sh",
                "-ec",
                "cd /app && exec gunicorn app; worker"
            ])),
            ["/bin/sh", "gunicorn", "worker"]
        );
    }

    #[test]
    fn a_shell_script_an_unreadable_elf_and_a_loop_leave_the_walk_incomplete_not_stuck() {
        let script = |interp: &str| Kind::File {
            exec: true,
            facts: Some(Box::new(Facts::Script {
                interpreter: interp.into(),
                arg: None,
            })),
        };
        let layer: Listing = vec![
            (
                "bin/sh".into(),
                Kind::File {
                    exec: true,
                    facts: Some(Box::new(Facts::UnreadableElf)),
                },
            ),
            ("app/start".into(), script("/bin/sh")),
            (
                "loop".into(),
                Kind::Link {
                    target: "loop".into(),
                },
            ),
            (
                "etc/ld.so.conf".into(),
                Kind::File {
                    exec: false,
                    facts: Some(Box::new(Facts::Text(
                        "include /etc/ld.so.conf\n".repeat(10_000),
                    ))),
                },
            ),
        ];
        let mut files = Files::default();
        files.apply(&layer);
        let mut walk = Walk::new(&files, &["LD_PRELOAD=/loop".into()]);
        walk.start(&Start {
            process: "web".into(),
            argv: vec!["/app/start".into()],
            working_dir: "/".into(),
        });
        let why = walk.reached.incomplete.join("\n");
        assert!(why.contains("/app/start is a shell script"), "{why}");
        assert!(
            why.contains("/bin/sh: an ELF file whose headers could not be read"),
            "{why}"
        );
    }
}
