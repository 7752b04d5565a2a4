//! History: every member's energy samples kept on the gateway by zenoh's storage manager and
//! answered by `_time` selectors (docs/history.md).

pub mod open;
pub mod settings;

pub use open::open;
pub use settings::HistorySettings;
