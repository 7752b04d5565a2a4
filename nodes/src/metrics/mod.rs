//! Prometheus metrics: `[metrics] listen` or `run --metrics-listen ADDR` serves `/metrics`.

pub mod exposition;
pub mod server;
