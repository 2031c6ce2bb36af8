//! The OCI documents Cascade reads and writes, typed: manifests, indexes and
//! descriptors are oci-spec's; an image config is [`ImageConfig`] (see
//! there why not oci-spec's). Every document is parsed once, where it is
//! read, with an error that names it, and written through one serialiser
//! ([`to_bytes`]: canonical JSON, so the same document gives the same
//! digest).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::Digest;

/// A document that could not be read as what it should be.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

impl DocumentError {
    fn new(what: &str, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            what: what.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Parse `bytes` as the document `what` names (`"manifest"`,
/// `"config of img:v1"`): JSON of the right shape, an object at the top.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, DocumentError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| DocumentError::new(what, e))?;
    if !value.is_object() {
        return Err(DocumentError::new(what, "not a JSON object"));
    }
    // The error names the field that did not fit (`rootfs.diff_ids[2]`).
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        DocumentError::new(what, format!("{path}: {}", e.inner()))
    })
}

/// The one serialiser of documents Cascade writes: canonical JSON.
pub fn to_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    crate::canonical::to_vec(doc).expect("typed documents serialise to JSON")
}

/// A descriptor of the blob `digest`, of `size` bytes and `media_type`.
pub fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(
        MediaType::from(media_type),
        size,
        oci_spec::image::Digest::try_from(digest.to_string())
            .expect("a sha256 digest is an OCI digest"),
    )
}

/// The sha256 a descriptor names, as Cascade's digest (other algorithms
/// are refused, naming `what`).
pub fn digest_of(d: &Descriptor, what: &str) -> Result<Digest, DocumentError> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|e| DocumentError::new(what, e))
}

/// The media type of a descriptor, as text.
pub fn media_type_of(d: &Descriptor) -> String {
    d.media_type().to_string()
}

/// A descriptor's `platform`: `os`/`architecture` as written.
pub fn platform(os: &str, arch: &str) -> oci_spec::image::Platform {
    let mut p = oci_spec::image::Platform::default();
    p.set_os(oci_spec::image::Os::from(os));
    p.set_architecture(oci_spec::image::Arch::from(arch));
    p
}

/// An image manifest of `config` and `layers`, in the OCI media type.
pub fn manifest(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
    let mut m = oci_spec::image::ImageManifestBuilder::default()
        .schema_version(2u32)
        .config(config)
        .layers(layers)
        .build()
        .expect("schema version, config and layers are all a manifest needs");
    m.set_media_type(Some(MediaType::ImageManifest));
    m
}

/// An image index of `manifests`, in the OCI media type.
pub fn index(manifests: Vec<Descriptor>) -> ImageIndex {
    let mut i = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .manifests(manifests)
        .build()
        .expect("schema version and manifests are all an index needs");
    i.set_media_type(Some(MediaType::ImageIndex));
    i
}

/// An image config: the OCI fields Cascade reads and writes, typed, and
/// every other field kept as it came.
///
/// Not oci-spec's `ImageConfiguration`: that drops the fields it does not
/// know (Docker's `container_config`, `ArgsEscaped`, `Healthcheck`), and a
/// rebase must hand back everything of an app's config it did not mean to
/// change; its labels are a `HashMap`, whose order would move digests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<History>>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The `config` section: how a container of the image runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `rootfs`: the layers' uncompressed digests, base first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of `history`: a layer, or a config change (`empty_layer`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl History {
    /// Whether this step made a layer.
    pub fn made_a_layer(&self) -> bool {
        !self.empty_layer.unwrap_or(false)
    }
}

impl ImageConfig {
    /// The `config` section, made when missing.
    pub fn run_config_mut(&mut self) -> &mut RunConfig {
        self.config.get_or_insert_with(RunConfig::default)
    }

    /// `config.Labels`, empty when there are none.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        self.config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .unwrap_or(&NONE)
    }

    /// One label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels().get(key).map(String::as_str)
    }

    /// `config.Env`, empty when there is none.
    pub fn env(&self) -> &[String] {
        self.config
            .as_ref()
            .and_then(|c| c.env.as_deref())
            .unwrap_or_default()
    }

    /// What a container of the image runs by default: `Entrypoint`, then
    /// `Cmd`.
    pub fn command(&self) -> Vec<String> {
        let run = self.config.as_ref();
        run.and_then(|r| r.entrypoint.clone())
            .into_iter()
            .flatten()
            .chain(run.and_then(|r| r.cmd.clone()).into_iter().flatten())
            .collect()
    }

    /// `config.WorkingDir`, `/` when it has none.
    pub fn working_dir(&self) -> &str {
        self.config
            .as_ref()
            .and_then(|c| c.working_dir.as_deref())
            .filter(|d| !d.is_empty())
            .unwrap_or("/")
    }

    /// `history`, empty when there is none.
    pub fn history(&self) -> &[History] {
        self.history.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_keeps_the_fields_it_does_not_know() {
        let text = r#"{"architecture":"amd64","os":"linux","container_config":{"Hostname":"x"},
            "config":{"Env":["A=1"],"ArgsEscaped":true,"Labels":{"b":"2","a":"1"}},
            "rootfs":{"type":"layers","diff_ids":[]},
            "history":[{"created":"2024-01-01T00:00:00Z","empty_layer":true,"comment":"c"}]}"#;
        let config: ImageConfig = parse(text.as_bytes(), "config").unwrap();
        assert_eq!(config.env(), ["A=1"]);
        assert_eq!(config.label("a"), Some("1"));
        assert!(!config.history()[0].made_a_layer());
        let again: Value = serde_json::from_slice(&to_bytes(&config)).unwrap();
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn a_bad_document_names_itself_and_the_field() {
        let e = parse::<ImageConfig>(b"[]", "config of img:v1").unwrap_err();
        assert_eq!(e.to_string(), "config of img:v1: not a JSON object");
        let e = parse::<ImageConfig>(
            br#"{"rootfs":{"type":"layers","diff_ids":["sha256:zz"]}}"#,
            "config",
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("config: rootfs.diff_ids[0]: "),
            "{e}"
        );
        let e = parse::<ImageManifest>(br#"{"schemaVersion":2}"#, "manifest").unwrap_err();
        assert!(e.to_string().contains("config"), "{e}");
    }

    #[test]
    fn a_manifest_round_trips_through_descriptors() {
        let d = Digest::of(b"{}");
        let m = manifest(
            descriptor(crate::MEDIA_CONFIG, &d, 2),
            vec![descriptor(crate::MEDIA_LAYER_GZIP, &d, 7)],
        );
        let bytes = to_bytes(&m);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                r#"{{"config":{{"digest":"{d}","mediaType":"application/vnd.oci.image.config.v1+json","size":2}},"layers":[{{"digest":"{d}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":7}}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#
            )
        );
        let back: ImageManifest = parse(&bytes, "manifest").unwrap();
        assert_eq!(digest_of(back.config(), "manifest").unwrap(), d);
        assert_eq!(media_type_of(&back.layers()[0]), crate::MEDIA_LAYER_GZIP);
    }

    /// JSON made of the keys an image config has, nested at random.
    fn config_like() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let key = prop::sample::select(vec![
            "architecture",
            "os",
            "variant",
            "created",
            "config",
            "Env",
            "Entrypoint",
            "Cmd",
            "WorkingDir",
            "Labels",
            "rootfs",
            "type",
            "diff_ids",
            "history",
            "empty_layer",
            "created_by",
            "x",
        ]);
        let digest = Just(Value::String(Digest::of(b"layer").to_string()));
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z=:/0-9]{0,8}".prop_map(Value::String),
            digest,
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest::proptest! {
        // PROPTEST_CASES=100000 for the dedicated run; 256 by default.
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Whatever a config holds, parsing it never panics: it is read, or
        /// refused with an error naming the document; what is read writes
        /// back to bytes that read the same again.
        #[test]
        fn any_config_parses_or_is_refused_by_name(config in config_like()) {
            let bytes = serde_json::to_vec(&config).unwrap();
            match parse::<ImageConfig>(&bytes, "config") {
                Ok(c) => {
                    let again: ImageConfig = parse(&to_bytes(&c), "config").unwrap();
                    proptest::prop_assert_eq!(&again, &c);
                    proptest::prop_assert_eq!(to_bytes(&again), to_bytes(&c));
                }
                Err(e) => proptest::prop_assert!(e.to_string().starts_with("config: ")),
            }
        }
    }
}
