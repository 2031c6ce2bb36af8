//! Image references, following skopeo's transports: `oci:DIR[:TAG]` for an
//! image layout, a plain `host[:port]/repo[:tag|@digest]` (or
//! `docker://...`) for a registry, and the built-in `scratch`.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// The empty base image.
    Scratch,
    /// An OCI image layout directory and a tag (`ref.name`); `None` picks
    /// the layout's only image (reading) or `latest` (writing).
    Layout { dir: PathBuf, tag: Option<String> },
    /// An image in an OCI distribution registry.
    Registry(oci_client::Reference),
}

#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error("{reference:?}: invalid registry reference: {message}")]
    Registry { reference: String, message: String },
    #[error("{0:?}: expected oci:DIR[:TAG], HOST[:PORT]/REPO[:TAG|@DIGEST] or scratch")]
    Unknown(String),
    #[error("{reference:?}: invalid tag {tag:?} (letters, digits, '_', '.', '-', at most 128)")]
    Tag { reference: String, tag: String },
    #[error("{0:?} looks like a directory, and images need a transport: did you mean \"oci:{0}\"?")]
    Path(String),
    #[error(
        "{reference:?}: a layout directory cannot hold ':' (oci:DIR:TAG has one tag; {dir:?} would be the directory)"
    )]
    LayoutColon { reference: String, dir: String },
    #[error(
        "{reference:?}: repository names must be lowercase (did you mean \"{lowercase}\"?); tags may hold capitals"
    )]
    Uppercase {
        reference: String,
        lowercase: String,
    },
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, RefError> {
        if s == "scratch" {
            return Ok(ImageRef::Scratch);
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            // DIR may itself hold ':' only if a tag follows; like skopeo, the
            // last ':' separates the tag.
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((dir, tag)) if !dir.is_empty() && !tag.contains('/') => {
                    (dir, Some(tag.to_string()))
                }
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(RefError::Unknown(s.into()));
            }
            if dir.contains(':') {
                return Err(RefError::LayoutColon {
                    reference: s.into(),
                    dir: dir.into(),
                });
            }
            if let Some(tag) = &tag {
                let ok = !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                if !ok {
                    return Err(RefError::Tag {
                        reference: s.into(),
                        tag: tag.clone(),
                    });
                }
            }
            return Ok(ImageRef::Layout {
                dir: dir.into(),
                tag,
            });
        }
        if s.starts_with(['/', '.', '~']) {
            return Err(RefError::Path(s.into()));
        }
        let registry = s.strip_prefix("docker://").unwrap_or(s);
        let first = registry.split('/').next().unwrap_or_default();
        // Like docker: the first component names a host when it has a dot
        // or a port, or is localhost.
        let has_host = registry.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        if has_host || s.starts_with("docker://") {
            check_lowercase(s, registry, has_host)?;
            return parse_registry(registry)
                .map(ImageRef::Registry)
                .map_err(|e| RefError::Registry {
                    reference: s.into(),
                    message: e,
                });
        }
        Err(RefError::Unknown(s.into()))
    }
}

/// The distribution reference grammar (docker/distribution's, as oci-spec
/// writes it), with ASCII classes (`(?-u)`): the grammar is Go's regexp,
/// whose `\w` is ASCII. oci-spec compiles it with Unicode `\w`, and its
/// `[\w][\w.-]{0,127}` then takes tens of milliseconds to compile (see
/// rust-lang/regex#1095), a third of a whole `cascade rebase` process.
const REFERENCE_GRAMMAR: &str = r"(?-u)^((?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?)(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}))?$";

/// A registry reference, parsed as oci-spec's `Reference::try_from` does
/// (the tag `latest` when none is given, docker's normalisation of
/// `docker.io/library/`, the name and digest lengths), from the ASCII
/// grammar above.
pub fn parse_registry(s: &str) -> Result<oci_client::Reference, String> {
    static GRAMMAR: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let grammar =
        GRAMMAR.get_or_init(|| regex::Regex::new(REFERENCE_GRAMMAR).expect("a valid grammar"));
    if s.is_empty() {
        return Err("repository name must have at least one component".into());
    }
    let captures = grammar
        .captures(s)
        .ok_or_else(|| "invalid reference format".to_owned())?;
    let name = &captures[1];
    let tag = captures.get(2).map(|m| m.as_str().to_owned());
    let digest = captures.get(3).map(|m| m.as_str().to_owned());
    // Docker's rule: the first component names a host when it has a dot or
    // a port, or is localhost; else the name is on Docker Hub.
    let (mut registry, mut repository) = match name.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => {
            (host.to_owned(), rest.to_owned())
        }
        _ => ("docker.io".to_owned(), name.to_owned()),
    };
    if registry == "index.docker.io" {
        "docker.io".clone_into(&mut registry);
    }
    if registry == "docker.io" && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    if repository.len() > 255 {
        return Err("repository name must not be more than 255 characters".into());
    }
    if let Some(digest) = &digest {
        let hex_len = match digest.split_once(':') {
            Some(("sha256", hex)) => (hex.len(), 64),
            Some(("sha384", hex)) => (hex.len(), 96),
            Some(("sha512", hex)) => (hex.len(), 128),
            _ => return Err("unsupported digest algorithm".into()),
        };
        if hex_len.0 != hex_len.1 {
            return Err("invalid checksum digest length".into());
        }
    }
    Ok(match (tag, digest) {
        (Some(tag), Some(digest)) => {
            oci_client::Reference::with_tag_and_digest(registry, repository, tag, digest)
        }
        (None, Some(digest)) => oci_client::Reference::with_digest(registry, repository, digest),
        (tag, None) => oci_client::Reference::with_tag(
            registry,
            repository,
            tag.unwrap_or_else(|| "latest".to_owned()),
        ),
    })
}

/// Repository paths are lowercase (distribution spec); the host and the
/// tag may hold capitals. oci-client only says "invalid reference format".
fn check_lowercase(reference: &str, registry: &str, has_host: bool) -> Result<(), RefError> {
    let (named, digest) = registry
        .split_once('@')
        .map_or((registry, None), |(n, d)| (n, Some(d)));
    let (path, tag) = match named.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (named, None),
    };
    let (host, repository) = match path.split_once('/') {
        Some((host, repository)) if has_host => (Some(host), repository),
        _ => (None, path),
    };
    if !repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Ok(());
    }
    let mut lowercase = String::new();
    if let Some(host) = host {
        lowercase.push_str(host);
        lowercase.push('/');
    }
    lowercase.push_str(&repository.to_ascii_lowercase());
    if let Some(tag) = tag {
        lowercase.push(':');
        lowercase.push_str(tag);
    }
    if let Some(digest) = digest {
        lowercase.push('@');
        lowercase.push_str(digest);
    }
    Err(RefError::Uppercase {
        reference: reference.into(),
        lowercase,
    })
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Scratch => f.write_str("scratch"),
            ImageRef::Layout {
                dir,
                tag: Some(tag),
            } => write!(f, "oci:{}:{tag}", dir.display()),
            ImageRef::Layout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            ImageRef::Registry(r) => write!(f, "{}", r.whole()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_layouts_with_and_without_tags() {
        assert_eq!(
            ImageRef::parse("oci:/tmp/x:v1").unwrap(),
            ImageRef::Layout {
                dir: "/tmp/x".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci:out").unwrap(),
            ImageRef::Layout {
                dir: "out".into(),
                tag: None
            }
        );
        assert_eq!(ImageRef::parse("scratch").unwrap(), ImageRef::Scratch);
        assert!(ImageRef::parse("oci:/x:bad tag").is_err());
        match ImageRef::parse("127.0.0.1:5000/team/app:v1").unwrap() {
            ImageRef::Registry(r) => {
                assert_eq!(
                    (r.registry(), r.repository(), r.tag()),
                    ("127.0.0.1:5000", "team/app", Some("v1"))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ImageRef::parse("docker://ghcr.io/a/b:1"),
            Ok(ImageRef::Registry(_))
        ));
        assert!(
            matches!(ImageRef::parse("ubuntu"), Err(RefError::Unknown(_))),
            "a bare name is ambiguous with a path"
        );
    }

    #[test]
    fn mistakes_are_named_with_the_fix() {
        let message = |s: &str| ImageRef::parse(s).unwrap_err().to_string();
        assert!(
            message("./images/x").contains("did you mean \"oci:./images/x\""),
            "{}",
            message("./images/x")
        );
        assert!(message("/srv/images").contains("oci:/srv/images"));
        assert!(matches!(
            ImageRef::parse("oci:/tmp/x:BAD:TAG"),
            Err(RefError::LayoutColon { .. })
        ));
        assert!(
            message("127.0.0.1:5000/Team/App:V1")
                .contains("did you mean \"127.0.0.1:5000/team/app:V1\""),
            "{}",
            message("127.0.0.1:5000/Team/App:V1")
        );
        assert!(ImageRef::parse("ghcr.io/team/app:Release-1").is_ok());
        assert!(ImageRef::parse("Registry.Example:5000/team/app").is_ok());
    }

    #[test]
    fn registry_references_parse_as_oci_spec_parses_them() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let corpus = [
            "127.0.0.1:5000/run:v1".to_owned(),
            "localhost/app".into(),
            "localhost:5000/a/b/c:tag-1.2_x".into(),
            "reg.example/corp/build@".to_owned() + &digest,
            format!("reg.example/corp/build:jammy@{digest}"),
            "busybox".into(),
            "busybox:1.36".into(),
            "corp/app".into(),
            "index.docker.io/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "quay.io/a__b/c-d.e:_x".into(),
            format!("reg.example/x@sha512:{}", "0".repeat(128)),
            format!("reg.example/x@sha256:{}", "0".repeat(63)),
            format!("reg.example/x@md5:{}", "0".repeat(32)),
            "reg.example/x:".into(),
            "reg.example/x:.tag".into(),
            format!("reg.example/x:{}", "t".repeat(129)),
            format!("reg.example/{}", "a".repeat(256)),
            "reg.example/X".into(),
            "reg.example//x".into(),
            "reg-.example/x".into(),
            String::new(),
        ];
        for s in &corpus {
            let ours = parse_registry(s);
            let theirs = oci_client::Reference::try_from(s.as_str());
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(
                    (a.registry(), a.repository(), a.tag(), a.digest()),
                    (b.registry(), b.repository(), b.tag(), b.digest()),
                    "{s}"
                ),
                (Err(_), Err(_)) => {}
                _ => panic!("{s}: ours {ours:?}, oci-spec's {theirs:?}"),
            }
        }
        // The one difference: a tag is ASCII (Go's \w), never Unicode.
        assert!(oci_client::Reference::try_from("reg.example/x:é").is_ok());
        assert!(parse_registry("reg.example/x:é").is_err());
    }
}
