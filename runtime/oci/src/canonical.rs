//! Canonical JSON: object keys sorted bytewise at every level, no spaces.
//!
//! oci-spec serialises labels through a HashMap (youki-dev/oci-spec-rs#249),
//! so its output order changes between runs; every blob Cascade writes goes
//! through here instead.

use serde::Serialize;
use serde_json::{Map, Value};

pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = sort(serde_json::to_value(value)?);
    serde_json::to_vec(&value)
}

/// Rebuild objects in key order: correct whether or not serde_json's
/// `preserve_order` feature is switched on by some other dependency.
fn sort(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sort(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_sorted_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": null}});
        assert_eq!(
            String::from_utf8(super::to_vec(&v).unwrap()).unwrap(),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }
}
