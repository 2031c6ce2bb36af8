// The `hello` buildpack of `cascade new buildpack`, written with libcnb.rs
// (API of libcnb 0.2x) for the side-by-side in docs/libcnb-comparison.md.
// Not compiled in this repository: libcnb is not one of its dependencies.

use std::path::PathBuf;

use libcnb::build::{BuildContext, BuildResult, BuildResultBuilder};
use libcnb::data::launch::{LaunchBuilder, ProcessBuilder};
use libcnb::data::{layer_name, process_type};
use libcnb::detect::{DetectContext, DetectResult, DetectResultBuilder};
use libcnb::generic::{GenericMetadata, GenericPlatform};
use libcnb::layer::{
    CachedLayerDefinition, InvalidMetadataAction, LayerState, RestoredLayerAction,
};
use libcnb::layer_env::{LayerEnv, ModificationBehavior, Scope};
use libcnb::{Buildpack, buildpack_main};
use libherokubuildpack::log::log_info;
use serde::{Deserialize, Serialize};

pub(crate) struct HelloBuildpack;

#[derive(Debug)]
pub(crate) enum HelloError {
    ReadGreeting(std::io::Error),
    WriteLayer(std::io::Error),
}

impl From<HelloError> for libcnb::Error<HelloError> {
    fn from(e: HelloError) -> Self {
        libcnb::Error::BuildpackError(e)
    }
}

#[derive(Clone, Deserialize, Serialize, PartialEq)]
struct GreetingMetadata {
    greeting: String,
}

impl Buildpack for HelloBuildpack {
    type Platform = GenericPlatform;
    type Metadata = GenericMetadata;
    type Error = HelloError;

    fn detect(&self, context: DetectContext<Self>) -> libcnb::Result<DetectResult, Self::Error> {
        if context.app_dir.join("hello.txt").is_file() {
            DetectResultBuilder::pass().build()
        } else {
            DetectResultBuilder::fail().build()
        }
    }

    fn build(&self, context: BuildContext<Self>) -> libcnb::Result<BuildResult, Self::Error> {
        let greeting = std::fs::read_to_string(context.app_dir.join("hello.txt"))
            .map_err(HelloError::ReadGreeting)?;
        let wanted = GreetingMetadata {
            greeting: greeting.clone(),
        };
        let layer = context.cached_layer(
            layer_name!("greeting"),
            CachedLayerDefinition {
                build: false,
                launch: true,
                invalid_metadata_action: &|_| InvalidMetadataAction::DeleteLayer,
                restored_layer_action: &|metadata: &GreetingMetadata, _| {
                    if metadata == &wanted {
                        RestoredLayerAction::KeepLayer
                    } else {
                        RestoredLayerAction::DeleteLayer
                    }
                },
            },
        )?;
        match layer.state {
            LayerState::Restored { .. } => log_info("greeting unchanged"),
            LayerState::Empty { .. } => {
                std::fs::create_dir_all(layer.path().join("bin")).map_err(HelloError::WriteLayer)?;
                std::fs::write(layer.path().join("motd"), &greeting)
                    .map_err(HelloError::WriteLayer)?;
                layer.write_metadata(wanted.clone())?;
                log_info("wrote the greeting");
            }
        }
        let motd: PathBuf = layer.path().join("motd");
        layer.write_env(LayerEnv::new().chainable_insert(
            Scope::Launch,
            ModificationBehavior::Default,
            "GREETING_FILE",
            motd,
        ))?;
        BuildResultBuilder::new()
            .launch(
                LaunchBuilder::new()
                    .process(
                        ProcessBuilder::new(process_type!("web"), ["/bin/cat"])
                            .arg("/workspace/hello.txt")
                            .default(true)
                            .build(),
                    )
                    .build(),
            )
            .build()
    }
}

buildpack_main!(HelloBuildpack);
