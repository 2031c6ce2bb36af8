//! What an ELF file asks of the dynamic loader: its interpreter
//! (`PT_INTERP`), the libraries it needs (`DT_NEEDED`), where it says to
//! look for them (`DT_RUNPATH`, `DT_RPATH`) and the name it answers to
//! (`DT_SONAME`). Read with goblin from the file's headers and dynamic
//! section; nothing is run.

use serde::{Deserialize, Serialize};

/// The loader-facing facts of one ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfFacts {
    /// `PT_INTERP`: the dynamic loader that runs it (absent in a static
    /// binary or a library).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// `DT_NEEDED`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needed: Vec<String>,
    /// `DT_RUNPATH` directories (`$ORIGIN` as written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runpath: Vec<String>,
    /// `DT_RPATH` directories, used only when there is no `DT_RUNPATH`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rpath: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soname: Option<String>,
    /// `e_machine` and whether it is a 64-bit object: a library of another
    /// machine or class does not satisfy a need.
    pub machine: u16,
    pub is_64: bool,
}

/// Whether `head` (a file's first bytes) is an ELF file's.
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

/// The facts of the ELF file `bytes`; `None` when goblin cannot read it
/// (a truncated or hostile file: it then makes nothing reachable).
pub fn facts(bytes: &[u8]) -> Option<ElfFacts> {
    let elf = goblin::elf::Elf::parse(bytes).ok()?;
    let split = |paths: &[&str]| -> Vec<String> {
        paths
            .iter()
            .flat_map(|p| p.split(':'))
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Some(ElfFacts {
        interpreter: elf.interpreter.map(str::to_owned),
        needed: elf.libraries.iter().map(|l| (*l).to_owned()).collect(),
        runpath: split(&elf.runpaths),
        rpath: split(&elf.rpaths),
        soname: elf.soname.map(str::to_owned),
        machine: elf.header.e_machine,
        is_64: elf.is_64,
    })
}

/// The program a script's `#!` line names, and its one argument (as the
/// kernel splits it: `#!/usr/bin/env python3` is `/usr/bin/env` with
/// `python3`).
pub fn shebang(head: &[u8]) -> Option<(String, Option<String>)> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|b| *b == b'\n')?];
    let line = std::str::from_utf8(line).ok()?.trim();
    let (program, arg) = match line.split_once([' ', '\t']) {
        Some((p, a)) => (p, Some(a.trim().to_owned()).filter(|a| !a.is_empty())),
        None => (line, None),
    };
    program.starts_with('/').then(|| (program.to_owned(), arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real dynamically linked program of this machine.
    fn host_program() -> Option<Vec<u8>> {
        ["/usr/bin/env", "/bin/ls", "/usr/bin/ls"]
            .iter()
            .find_map(|p| std::fs::read(p).ok())
    }

    #[test]
    fn a_dynamic_program_names_its_loader_and_libc() {
        let Some(bytes) = host_program() else {
            return;
        };
        assert!(is_elf(&bytes));
        let f = facts(&bytes).unwrap();
        assert!(
            f.interpreter.as_deref().is_some_and(|i| i.contains("ld-")),
            "{f:?}"
        );
        assert!(f.needed.iter().any(|n| n.starts_with("libc.so")), "{f:?}");
    }

    #[test]
    fn garbage_is_no_elf_and_scripts_name_their_interpreter() {
        assert!(facts(b"\x7fELF\x02\x01\x01 truncated").is_none());
        assert!(!is_elf(b"#!/bin/sh\n"));
        assert_eq!(
            shebang(b"#!/usr/bin/env python3\nprint(1)\n"),
            Some(("/usr/bin/env".into(), Some("python3".into())))
        );
        assert_eq!(shebang(b"#!/bin/sh\n"), Some(("/bin/sh".into(), None)));
        assert_eq!(shebang(b"#! relative/interp\n"), None);
        assert_eq!(shebang(b"no shebang"), None);
    }
}
