//! The human (JSON) form of messages, for query replies and `--json` output.

use crate::names::NodeId;

/// A message as a JSON object; for node keys the node's `id` is added, since the compact form
/// leaves it to the key expression.
pub fn to_json<T: serde::Serialize>(msg: &T, id: Option<&NodeId>) -> serde_json::Value {
    let mut value = serde_json::to_value(msg).unwrap_or(serde_json::Value::Null);
    if let (Some(id), serde_json::Value::Object(map)) = (id, &mut value) {
        map.insert("id".into(), serde_json::Value::String(id.to_string()));
    }
    value
}
