//! The default builder: first-party buildpacks compiled into the binary, so
//! `cascade build ./app` needs nothing else.

use crate::builder::GroupMember;
use crate::guests;
use crate::ids::BuildpackId;

/// (source name for messages, component bytes)
pub const BUILDPACKS: [(&str, &[u8]); 6] = [
    ("embedded:cascade/ca-certs", guests::CA_CERTS_WASM),
    ("embedded:cascade/static-site", guests::STATIC_SITE_WASM),
    ("embedded:cascade/rust", guests::RUST_WASM),
    ("embedded:cascade/node", guests::NODE_WASM),
    ("embedded:cascade/go", guests::GO_WASM),
    ("embedded:cascade/procfile", guests::PROCFILE_WASM),
];

/// The compiled form of the component whose sha256 (hex) is `sha256`, when
/// it is one of these buildpacks and
/// build.rs precompiled it for this machine (it does unless
/// cross-compiling), so the first build after installing compiles nothing.
pub fn precompiled(sha256: &str) -> Option<&'static [u8]> {
    guests::PRECOMPILED
        .iter()
        .find(|(s, _)| *s == sha256)
        .map(|(_, bytes)| *bytes)
}

/// The scheme of a builder.toml `uri` naming one of these buildpacks.
pub const URI_SCHEME: &str = "builtin:";

/// The component of the built-in buildpack `id`.
pub fn component(id: &str) -> Option<&'static [u8]> {
    BUILDPACKS
        .iter()
        .find(|(name, _)| name.strip_prefix("embedded:") == Some(id))
        .map(|(_, bytes)| *bytes)
}

/// `builtin:ID` for every built-in buildpack, in the default order's terms.
pub fn uris() -> Vec<String> {
    BUILDPACKS
        .iter()
        .map(|(name, _)| format!("{URI_SCHEME}{}", name.trim_start_matches("embedded:")))
        .collect()
}

fn member(id: &str, optional: bool) -> GroupMember {
    GroupMember {
        id: BuildpackId::new(id).expect("first-party ids are valid"),
        version: None,
        optional,
    }
}

/// The default order: certificates are optional in front of every group; a
/// static site, a Cargo project, a Node.js app or a Go module may add a Procfile's
/// processes; otherwise a Procfile alone.
pub fn order() -> Vec<Vec<GroupMember>> {
    vec![
        vec![
            member("cascade/ca-certs", true),
            member("cascade/static-site", false),
            member("cascade/procfile", true),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/rust", false),
            member("cascade/procfile", true),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/node", false),
            member("cascade/procfile", true),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/go", false),
            member("cascade/procfile", true),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/procfile", false),
        ],
    ]
}
