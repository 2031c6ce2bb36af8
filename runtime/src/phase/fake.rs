//! A buildpack whose build is a closure, for tests of phase logic without
//! wasm (lifecycle's phase tests fake their executors the same way).

use std::sync::Arc;

use super::Chosen;
use crate::api::{BuildInput, BuildOutput, BuildpackRunner, DetectInput, DetectOutcome, RunError};
use crate::manifest::BuildpackManifest;

type BuildFn = Box<dyn Fn(&BuildInput) -> Result<BuildOutput, RunError> + Send + Sync>;

pub struct Fake(BuildpackManifest, BuildFn);

impl BuildpackRunner for Fake {
    fn manifest(&self) -> &BuildpackManifest {
        &self.0
    }
    fn detect(&self, _: &DetectInput) -> Result<DetectOutcome, RunError> {
        unreachable!("phase tests run build only")
    }
    fn build(&self, input: &BuildInput) -> Result<BuildOutput, RunError> {
        (self.1)(input)
    }
}

/// A chosen group member `id` whose build is `build`.
pub fn chosen(
    id: &str,
    build: impl Fn(&BuildInput) -> Result<BuildOutput, RunError> + Send + Sync + 'static,
) -> Chosen {
    let text = format!("api = \"0.12\"\n[buildpack]\nid = \"{id}\"\nversion = \"1\"\n");
    let manifest = BuildpackManifest::parse(&text, id).unwrap();
    Chosen {
        runner: Arc::new(Fake(manifest, Box::new(build))),
        plan: Vec::new(),
    }
}
