//! Queryables that answer JSON by default (what `zenoh get` and zenohd's REST plugin show
//! inline) and CBOR when the selector says `?format=cbor`.

use super::BusError;
use crate::codec::encode;
use crate::json::to_json;
use crate::keys::SwarmKey;
use crate::wire::WireMessage;
use zenoh::Session;
use zenoh::Wait;
use zenoh::bytes::Encoding;
use zenoh::query::{Query, Queryable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFormat {
    Json,
    Cbor,
}

impl ReplyFormat {
    /// Reads `format=` from a selector's parameters.
    pub fn from_parameter(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("json") => Ok(ReplyFormat::Json),
            Some("cbor") => Ok(ReplyFormat::Cbor),
            Some(other) => Err(format!(
                "unknown format `{other}`; use format=json or format=cbor"
            )),
        }
    }
}

/// A query for samples over a time range (`_time=[..]`, zenoh's selector parameter): for
/// storages that keep history (docs/history.md), not for the current value a member serves.
/// Answering it with the current value too would put one stray sample among the history.
pub fn asks_history(query: &Query) -> bool {
    query.parameters().get("_time").is_some()
}

/// Keeps the queryable declared while alive.
pub struct ServedQueryable {
    _inner: Queryable<()>,
}

/// Answers queries on `key` with whatever `answer` returns at that moment (`None`: stay silent).
pub async fn serve<T, F>(
    session: &Session,
    key: String,
    answer: F,
) -> Result<ServedQueryable, BusError>
where
    T: WireMessage,
    F: Fn() -> Option<T> + Send + Sync + 'static,
{
    let id = key
        .parse::<SwarmKey>()
        .ok()
        .and_then(|k| k.node_id().cloned());
    let reply_key = key.clone();
    let inner = session
        .declare_queryable(key.clone())
        .callback(move |query: Query| {
            if asks_history(&query) {
                return;
            }
            let result = match ReplyFormat::from_parameter(query.parameters().get("format")) {
                Err(reason) => query.reply_err(reason).wait(),
                Ok(format) => match answer() {
                    None => return,
                    Some(msg) => {
                        let (bytes, encoding) = match format {
                            ReplyFormat::Cbor => (encode(&msg), Encoding::APPLICATION_CBOR),
                            ReplyFormat::Json => (
                                to_json(&msg, id.as_ref()).to_string().into_bytes(),
                                Encoding::APPLICATION_JSON,
                            ),
                        };
                        query
                            .reply(reply_key.clone(), bytes)
                            .encoding(encoding)
                            .wait()
                    }
                },
            };
            if let Err(e) = result {
                tracing::debug!(key = %reply_key, "query reply failed: {e}");
            }
        })
        .await
        .map_err(|e| BusError::new(format!("declaring queryable on {key}"), e))?;
    Ok(ServedQueryable { _inner: inner })
}
