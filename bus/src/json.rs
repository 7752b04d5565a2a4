//! The human (JSON) form of messages, for query replies and `--json` output.

use crate::names::NodeId;

/// A message as a JSON object; for node keys the node's `id` is added, since the compact form
/// leaves it to the key expression.
pub fn to_json<T: serde::Serialize>(msg: &T, id: Option<&NodeId>) -> serde_json::Value {
    // Through text, so f32 fields keep their short form (3.25, not 3.2499999046325684).
    let mut value = serde_json::to_string(msg)
        .and_then(|text| serde_json::from_str(&text))
        .unwrap_or(serde_json::Value::Null);
    if let (Some(id), serde_json::Value::Object(map)) = (id, &mut value) {
        map.insert("id".into(), serde_json::Value::String(id.to_string()));
    }
    value
}
