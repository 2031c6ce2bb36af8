//! The result of `build`.

use crate::bindings::cascade::buildpack::types as wit;
use crate::{Layer, Process};

/// Layers, processes and labels a buildpack contributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildResult {
    layers: Vec<Layer>,
    processes: Vec<Process>,
    labels: Vec<(String, String)>,
}

impl BuildResult {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare a layer. A layer made but not declared is dropped, with a
    /// warning naming it.
    #[must_use]
    pub fn layer(mut self, layer: Layer) -> Self {
        self.layers.push(layer);
        self
    }

    #[must_use]
    pub fn process(mut self, process: Process) -> Self {
        self.processes.push(process);
        self
    }

    /// Add an image label (CNB `build.toml`/`launch.toml` `[[labels]]`).
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    pub(crate) fn layer_names(&self) -> Vec<&str> {
        self.layers.iter().map(Layer::name).collect()
    }

    pub(crate) fn into_record(self) -> wit::BuildOutput {
        wit::BuildOutput {
            layers: self.layers.into_iter().map(Layer::into_record).collect(),
            processes: self
                .processes
                .into_iter()
                .map(Process::into_record)
                .collect(),
            labels: self
                .labels
                .into_iter()
                .map(|(key, value)| wit::Label { key, value })
                .collect(),
        }
    }
}
