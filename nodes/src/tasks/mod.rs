//! Tasks on the bus. The leader's scheduler is a sans-IO state machine (`Scheduler::handle`,
//! events with a timestamp in, actions out) so tests drive it with simulated time.

mod breaker;
mod scheduler;
mod strategy;

pub use breaker::{Breaker, BreakerState};
pub use scheduler::{Action, Event, Rejection, Scheduler, Settings, Spec, Worker};
pub use strategy::{Candidate, Strategy};
