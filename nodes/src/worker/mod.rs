//! A worker runs the tasks the leader hands it, with handlers from its own config only: a task
//! names a capability, never a command.

pub mod builtin;
pub mod command;
pub mod settings;

use std::time::Duration;
use swarm_bus::TaskState;

/// What running a task came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: TaskState,
    pub exit_code: Option<i32>,
    /// At most the handler's `max_output_bytes`.
    pub output: Vec<u8>,
    /// Output was cut at the bound.
    pub truncated: bool,
    pub duration: Duration,
    /// Why it failed, for people.
    pub reason: Option<String>,
    /// The handler's score of its answer, for `best-of` (docs/tasks.md#federated).
    pub score: Option<f64>,
}

impl Outcome {
    fn failed(reason: impl Into<String>, duration: Duration) -> Outcome {
        Outcome {
            state: TaskState::Failed,
            exit_code: None,
            output: Vec::new(),
            truncated: false,
            duration,
            reason: Some(reason.into()),
            score: None,
        }
    }
}

/// Keeps the first `max` bytes; says whether more came.
fn bounded(mut bytes: Vec<u8>, max: usize) -> (Vec<u8>, bool) {
    let truncated = bytes.len() > max;
    bytes.truncate(max);
    (bytes, truncated)
}

/// The capabilities a node with these settings offers: its built-ins and its handlers.
pub fn capabilities(settings: &settings::TasksSettings) -> std::collections::BTreeSet<String> {
    settings
        .builtins
        .iter()
        .chain(settings.handlers.keys())
        .cloned()
        .collect()
}

/// Runs one task with the handler the node's own config gives its capability; a capability
/// the node does not offer fails without running anything.
pub async fn run_task(
    settings: &settings::TasksSettings,
    capability: &str,
    task_id: &str,
    payload: &[u8],
    timeout: Duration,
) -> Outcome {
    if let Some(handler) = settings.handlers.get(capability) {
        let bounded_by_task = settings::CommandHandler {
            timeout_s: handler
                .timeout_s
                .min(u32::try_from(timeout.as_secs().max(1)).unwrap_or(u32::MAX)),
            ..handler.clone()
        };
        return command::run(&bounded_by_task, task_id, payload).await;
    }
    if settings.builtins.iter().any(|b| b == capability) {
        return builtin::run(capability, payload, timeout).await;
    }
    Outcome::failed(
        format!("this node offers no capability `{capability}`"),
        Duration::ZERO,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_what_the_config_offers_runs() {
        let mut s = settings::TasksSettings::default();
        s.handlers.insert(
            "shout".into(),
            settings::CommandHandler {
                command: vec!["tr".into(), "a-z".into(), "A-Z".into()],
                timeout_s: 5,
                max_output_bytes: 100,
                env: vec!["PATH".into()],
                idempotent: false,
            },
        );
        assert_eq!(
            capabilities(&s).into_iter().collect::<Vec<_>>(),
            ["echo", "shout"]
        );
        let long = Duration::from_secs(5);
        assert_eq!(run_task(&s, "shout", "t", b"hi", long).await.output, b"HI");
        assert_eq!(run_task(&s, "echo", "t", b"hi", long).await.output, b"hi");
        let refused = run_task(&s, "sleep", "t", b"10", long).await;
        assert_eq!(
            refused.state,
            TaskState::Failed,
            "sleep is not enabled here"
        );
    }
}
