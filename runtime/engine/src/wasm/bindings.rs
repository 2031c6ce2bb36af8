//! Generated host bindings for `wit/`, kept private to the engine, and their
//! conversion into [`crate::api`] types.

use crate::api;
use crate::ids::{LayerName, ProcessType};

wasmtime::component::bindgen!({
    path: "wit",
    world: "cascade:buildpack/buildpack",
});

use cascade::buildpack::types as wit;

pub use cascade::buildpack::log::Level;

fn table(text: &str, what: &str) -> Result<toml::Table, api::RunError> {
    text.parse::<toml::Table>().map_err(|e| {
        api::RunError::InvalidOutput(format!("{what}: metadata is not a TOML table: {e}"))
    })
}

fn env(vars: &api::Env) -> Vec<wit::EnvVar> {
    vars.iter()
        .map(|(name, value)| wit::EnvVar {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn target(t: &api::Target) -> wit::Target {
    wit::Target {
        os: t.os.clone(),
        arch: t.arch.clone(),
        arch_variant: t.arch_variant.clone(),
        distro_name: t.distro_name.clone(),
        distro_version: t.distro_version.clone(),
    }
}

pub fn detect_context(input: &api::DetectInput) -> wit::DetectContext {
    wit::DetectContext {
        app_dir: api::APP_DIR.into(),
        platform_env: env(&input.platform_env),
        target: target(&input.target),
    }
}

pub fn build_context(input: &api::BuildInput) -> wit::BuildContext {
    wit::BuildContext {
        app_dir: api::APP_DIR.into(),
        layers_dir: input.layers_dir_guest.clone(),
        platform_env: env(&input.platform_env),
        build_env: env(&input.build_env),
        plan: input
            .plan
            .iter()
            .map(|e| wit::PlanEntry {
                name: e.name.clone(),
                metadata: e.metadata.to_string(),
            })
            .collect(),
        target: target(&input.target),
        restored_layers: input
            .restored
            .iter()
            .map(|r| wit::RestoredLayer {
                name: r.name.to_string(),
                types: layer_types(r.types),
                metadata: r.metadata.to_string(),
                has_files: r.has_files,
            })
            .collect(),
    }
}

fn layer_types(t: api::LayerTypes) -> wit::LayerTypes {
    let mut types = wit::LayerTypes::empty();
    for (on, flag) in [
        (t.launch, wit::LayerTypes::LAUNCH),
        (t.build, wit::LayerTypes::BUILD),
        (t.cache, wit::LayerTypes::CACHE),
    ] {
        if on {
            types |= flag;
        }
    }
    types
}

pub fn detect_outcome(outcome: wit::DetectOutcome) -> Result<api::DetectOutcome, api::RunError> {
    Ok(match outcome {
        wit::DetectOutcome::Fail(reason) => api::DetectOutcome::Fail(reason),
        wit::DetectOutcome::Pass(plans) => api::DetectOutcome::Pass(
            plans
                .into_iter()
                .map(|p| {
                    Ok(api::BuildPlan {
                        provides: p.provides,
                        requires: p
                            .requires
                            .into_iter()
                            .map(|r| {
                                let metadata =
                                    table(&r.metadata, &format!("require {:?}", r.name))?;
                                Ok(api::Require {
                                    name: r.name,
                                    metadata,
                                })
                            })
                            .collect::<Result<_, api::RunError>>()?,
                    })
                })
                .collect::<Result<_, api::RunError>>()?,
        ),
    })
}

pub fn build_output(out: wit::BuildOutput) -> Result<api::BuildOutput, api::RunError> {
    let invalid = |e: crate::ids::IdError| api::RunError::InvalidOutput(e.to_string());
    let layers = out
        .layers
        .into_iter()
        .map(|l| {
            let name = LayerName::new(l.name).map_err(invalid)?;
            Ok(api::Layer {
                metadata: table(&l.metadata, &format!("layer {name}"))?,
                types: api::LayerTypes {
                    launch: l.types.contains(wit::LayerTypes::LAUNCH),
                    build: l.types.contains(wit::LayerTypes::BUILD),
                    cache: l.types.contains(wit::LayerTypes::CACHE),
                },
                env: l
                    .env
                    .into_iter()
                    .map(|e| api::EnvEntry {
                        name: e.name,
                        value: e.value,
                        op: match e.op {
                            wit::EnvOp::Override => api::EnvOp::Override,
                            wit::EnvOp::Default => api::EnvOp::Default,
                            wit::EnvOp::Append => api::EnvOp::Append,
                            wit::EnvOp::Prepend => api::EnvOp::Prepend,
                        },
                        delim: e.delim,
                        scope: match e.scope {
                            wit::EnvScope::All => api::EnvScope::All,
                            wit::EnvScope::Build => api::EnvScope::Build,
                            wit::EnvScope::Launch => api::EnvScope::Launch,
                        },
                    })
                    .collect(),
                reused: l.reused,
                sbom: l.sbom,
                name,
            })
        })
        .collect::<Result<_, api::RunError>>()?;
    let processes = out
        .processes
        .into_iter()
        .map(|p| {
            Ok(api::Process {
                kind: ProcessType::new(p.type_).map_err(invalid)?,
                command: p.command,
                args: p.args,
                default: p.default,
                working_dir: p.working_dir,
            })
        })
        .collect::<Result<_, api::RunError>>()?;
    Ok(api::BuildOutput {
        layers,
        processes,
        labels: out.labels.into_iter().map(|l| (l.key, l.value)).collect(),
    })
}

pub fn reported(e: wit::BuildpackError) -> api::RunError {
    api::RunError::Reported {
        message: e.message,
        hint: e.hint,
    }
}
