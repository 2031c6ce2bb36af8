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
            return registry
                .parse::<oci_client::Reference>()
                .map(ImageRef::Registry)
                .map_err(|e| RefError::Registry {
                    reference: s.into(),
                    message: e.to_string(),
                });
        }
        Err(RefError::Unknown(s.into()))
    }
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
}
