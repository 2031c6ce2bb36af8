//! Environment from layers (CNB `env/`, `env.build/`, `env.launch/`, `bin/`,
//! `lib/`), computed by the host: at build time for later buildpacks, at
//! export time into the image config, so the image needs no launcher.

use crate::api::{EnvEntry, EnvOp, EnvScope, Layer};

/// Which environment is being computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvPhase {
    Build,
    Launch,
}

/// An ordered environment: existing variables keep their place, new ones are
/// added at the end in the order they were set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList(Vec<(String, String)>);

impl EnvList {
    /// From `K=V` strings (an image config's `Env`); malformed ones are kept
    /// as a name with an empty value.
    pub fn from_config(vars: &[String]) -> Self {
        Self(
            vars.iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map_or((kv.clone(), String::new()), |(k, v)| (k.into(), v.into()))
                })
                .collect(),
        )
    }

    /// The variables, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: String) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.into(), value)),
        }
    }

    pub fn apply(&mut self, entry: &EnvEntry) {
        let delim = entry.delim.as_deref().unwrap_or("");
        let value = match (entry.op, self.get(&entry.name)) {
            (EnvOp::Override, _) | (EnvOp::Append | EnvOp::Prepend | EnvOp::Default, None) => {
                entry.value.clone()
            }
            (EnvOp::Default, Some(_)) => return,
            (EnvOp::Append, Some(old)) => format!("{old}{delim}{}", entry.value),
            (EnvOp::Prepend, Some(old)) => format!("{}{delim}{old}", entry.value),
        };
        self.set(&entry.name, value);
    }

    /// Apply one layer's entries for `phase` (see [`layer_entries`]).
    pub fn apply_layer(
        &mut self,
        layer: &Layer,
        dirs: LayerDirs,
        guest_dir: &str,
        phase: EnvPhase,
    ) {
        for entry in layer_entries(layer, dirs, guest_dir, phase) {
            self.apply(&entry);
        }
    }

    pub fn to_config(&self) -> Vec<String> {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    pub fn to_map(&self) -> crate::api::Env {
        self.0.iter().cloned().collect()
    }
}

/// The image `Env`: the run image's variables with the layers' launch
/// entries applied in order.
pub fn launch_env(base: &[String], entries: &[EnvEntry]) -> Vec<String> {
    let mut env = EnvList::from_config(base);
    for entry in entries {
        env.apply(entry);
    }
    env.to_config()
}

/// Whether a layer has `bin/` and `lib/`, which CNB puts on `PATH` and
/// `LD_LIBRARY_PATH`. Kept apart from the directory because a reused
/// launch-only layer has no files here: its facts come from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerDirs {
    pub bin: bool,
    pub lib: bool,
}

impl LayerDirs {
    /// A layer's `bin/` and `lib/` count when they are real directories
    /// (a link there is not followed to decide).
    pub fn of(dir: &cascade_fs::GuestTree) -> Self {
        Self {
            bin: dir.is_real_dir("bin"),
            lib: dir.is_real_dir("lib"),
        }
    }
}

/// What a layer does to the environment in `phase`: `bin/` and `lib/` as the
/// spec's implicit prepends, then the layer's own entries for that phase.
pub fn layer_entries(
    layer: &Layer,
    dirs: LayerDirs,
    guest_dir: &str,
    phase: EnvPhase,
) -> Vec<EnvEntry> {
    let mut out = Vec::new();
    for (present, sub, var) in [
        (dirs.bin, "bin", "PATH"),
        (dirs.lib, "lib", "LD_LIBRARY_PATH"),
    ] {
        if present {
            out.push(EnvEntry {
                name: var.into(),
                value: format!("{guest_dir}/{sub}"),
                op: EnvOp::Prepend,
                delim: Some(":".into()),
                scope: EnvScope::All,
            });
        }
    }
    out.extend(
        layer
            .env
            .iter()
            .filter(|e| match e.scope {
                EnvScope::All => true,
                EnvScope::Build => phase == EnvPhase::Build,
                EnvScope::Launch => phase == EnvPhase::Launch,
            })
            .cloned(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: EnvOp, name: &str, value: &str, delim: Option<&str>) -> EnvEntry {
        EnvEntry {
            name: name.into(),
            value: value.into(),
            op,
            delim: delim.map(Into::into),
            scope: EnvScope::All,
        }
    }

    #[test]
    fn ops_follow_the_cnb_semantics() {
        let mut env = EnvList::from_config(&["PATH=/bin".into(), "A=1".into()]);
        env.apply(&entry(EnvOp::Prepend, "PATH", "/l/bin", Some(":")));
        env.apply(&entry(EnvOp::Append, "PATH", "/z", Some(":")));
        env.apply(&entry(EnvOp::Default, "A", "2", None));
        env.apply(&entry(EnvOp::Default, "B", "3", None));
        env.apply(&entry(EnvOp::Append, "C", "x", None));
        env.apply(&entry(EnvOp::Append, "C", "y", None));
        assert_eq!(
            env.to_config(),
            ["PATH=/l/bin:/bin:/z", "A=1", "B=3", "C=xy"]
        );
    }
}
