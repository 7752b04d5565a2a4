//! Tasks on the bus. The leader's scheduler is a sans-IO state machine (`Scheduler::handle`,
//! events with a timestamp in, actions out) so tests drive it with simulated time; so are the
//! durability decisions (`durability`: when copies of the table make a majority) and what the
//! leader decides around the scheduler (`Leading`: submissions, cancellations, the takeover).

mod breaker;
pub mod durability;
mod leading;
pub mod replicas;
pub mod reputation;
mod result_store;
mod scheduler;
mod strategy;
mod table;
pub mod verdict;

pub use breaker::{Breaker, BreakerState};
pub use leading::{Leading, Submission, is_capability_name, spec_refusal, to_spec, to_worker};
pub use result_store::{Eviction, ResultBounds, ResultStore};
pub use scheduler::{
    Action, Event, Fanout, Rejection, Replica, Restored, Scheduler, Settings, Spec, Voted, Worker,
};
pub use strategy::{Candidate, Strategy};
pub use table::{Full, TaskTable, advances};
