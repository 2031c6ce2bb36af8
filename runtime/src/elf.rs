//! What an ELF file asks of the dynamic loader: its interpreter
//! (`PT_INTERP`), the libraries it needs (`DT_NEEDED`), where it says to
//! look for them (`DT_RUNPATH`, `DT_RPATH`) and the name it answers to
//! (`DT_SONAME`). Read as the loader reads them, from the program headers
//! and the dynamic segment (the `object` crate, which indexes nothing and
//! copies nothing): section headers are never looked at, so a stripped or
//! section-mangled file the loader would run is read too. Hostile files
//! are bounded: at most [`MAX_ENTRIES`] entries of each kind, each string
//! at most [`MAX_STRING`] bytes.

use object::elf;
use object::read::elf::{Dyn as _, FileHeader, ProgramHeader as _};
use serde::{Deserialize, Serialize};

/// Entries of each kind kept (`DT_NEEDED`, search directories).
pub const MAX_ENTRIES: usize = 512;
/// Bytes of one string kept (a path, a soname).
pub const MAX_STRING: usize = 4096;

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

/// The facts of the ELF file `bytes`; `None` when its headers cannot be
/// read (a truncated or hostile file: it then makes nothing reachable).
pub fn facts(bytes: &[u8]) -> Option<ElfFacts> {
    match object::FileKind::parse(bytes).ok()? {
        object::FileKind::Elf32 => read::<elf::FileHeader32<object::Endianness>>(bytes),
        object::FileKind::Elf64 => read::<elf::FileHeader64<object::Endianness>>(bytes),
        _ => None,
    }
}

fn read<H: FileHeader<Endian = object::Endianness>>(data: &[u8]) -> Option<ElfFacts> {
    let header = H::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let phdrs = header.program_headers(endian, data).ok()?;
    let mut facts = ElfFacts {
        machine: header.e_machine(endian),
        is_64: header.is_type_64(),
        ..ElfFacts::default()
    };
    let mut dynamic = None;
    for ph in phdrs {
        if let Ok(Some(interp)) = ph.interpreter(endian, data) {
            facts.interpreter = Some(text(interp));
        }
        if let Ok(Some(d)) = ph.dynamic(endian, data) {
            dynamic = Some(d);
        }
    }
    let Some(dynamic) = dynamic else {
        return Some(facts);
    };
    let value = |tag: i64| -> Option<u64> {
        dynamic
            .iter()
            .find(|d| d.d_tag(endian).into() == tag)
            .map(|d| d.d_val(endian).into())
    };
    let (Some(strtab), Some(strsz)) = (value(elf::DT_STRTAB), value(elf::DT_STRSZ)) else {
        return Some(facts);
    };
    // The string table where the loader finds it: at its address, in the
    // segment that maps it.
    let Some(strings) = phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .find_map(|ph| ph.data_range(endian, data, strtab, strsz).ok().flatten())
    else {
        return Some(facts);
    };
    let string = |offset: u64| -> Option<String> {
        let rest = strings.get(usize::try_from(offset).ok()?..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        Some(text(&rest[..end]))
    };
    let dirs = |v: Option<String>| -> Vec<String> {
        v.map(|v| {
            v.split(':')
                .filter(|d| !d.is_empty())
                .take(MAX_ENTRIES)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
    };
    for d in dynamic.iter().take(1 << 16) {
        let tag: i64 = d.d_tag(endian).into();
        let val: u64 = d.d_val(endian).into();
        match tag {
            elf::DT_NEEDED if facts.needed.len() < MAX_ENTRIES => {
                if let Some(name) = string(val).filter(|n| !facts.needed.contains(n)) {
                    facts.needed.push(name);
                }
            }
            elf::DT_SONAME => facts.soname = string(val),
            elf::DT_RUNPATH if facts.runpath.is_empty() => facts.runpath = dirs(string(val)),
            elf::DT_RPATH if facts.rpath.is_empty() => facts.rpath = dirs(string(val)),
            elf::DT_NULL => break,
            _ => {}
        }
    }
    Some(facts)
}

/// A loader string, bounded and as text.
fn text(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_STRING)];
    String::from_utf8_lossy(bytes).into_owned()
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
