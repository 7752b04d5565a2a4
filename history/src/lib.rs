//! The swarm's recent history on zenoh's storage manager: a bounded in-memory time-series
//! volume (`history`) that answers `_time` selectors, for a gateway with no database.
//! For long retention the storage manager's InfluxDB volume does the same (docs/history.md).

pub mod admission;
pub mod series;
pub mod volume;

pub use series::{Limits, Put, Series};
pub use volume::{DEFAULT_LIMITS, HistoryVolume, VOLUME_NAME};
