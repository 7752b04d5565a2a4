//! The leader's final word on a task (`task/<id>/state`): the worker's report when it decided
//! the outcome, or, for a task run on several workers, the chosen answer with every answer,
//! its vote and what they cost together.

use swarm_bus::{NodeId, Payload, TaskAnswer, TaskId, TaskResult, TaskState};
use swarm_node::tasks::{TaskTable, Voted};

/// The final word on a replicated task: the chosen answer, every answer with its vote,
/// and what they cost together.
pub fn voted(
    table: &TaskTable,
    id: &TaskId,
    state: TaskState,
    reason: Option<String>,
    voted: &Voted,
) -> TaskResult {
    let decision = voted.decision.as_ref();
    let vote = |w: &NodeId| {
        decision.and_then(|d| {
            if d.agreeing.contains(w) {
                Some(true)
            } else if d.dissenting.contains(w) {
                Some(false)
            } else {
                None
            }
        })
    };
    let answers = voted
        .replies
        .iter()
        .map(|r| TaskAnswer {
            worker: r.worker.clone(),
            attempt: r.attempt,
            state: if r.ok {
                TaskState::Succeeded
            } else {
                TaskState::Failed
            },
            output: Payload(r.output.clone()),
            score: r.score,
            joules: r.joules,
            agrees: vote(&r.worker),
        })
        .collect();
    let chosen = decision.and_then(|d| voted.replies.get(d.chosen));
    TaskResult {
        state,
        worker: chosen.map(|r| r.worker.clone()),
        attempts: table.record(id).map_or(0, |r| r.attempt),
        exit_code: None,
        output: Payload(chosen.map(|r| r.output.clone()).unwrap_or_default()),
        duration_ms: 0,
        joules: Some(voted.joules),
        reason: reason.or_else(|| voted.why.clone()),
        score: chosen.and_then(|r| r.score),
        answers: Some(answers),
        value: decision.and_then(|d| d.value),
    }
}

/// The final word on a task: the worker's report when it decided the outcome.
pub fn single(
    table: &TaskTable,
    id: &TaskId,
    state: TaskState,
    reason: Option<String>,
) -> TaskResult {
    let record = table.record(id);
    let report = record
        .and_then(|r| r.result.clone().filter(|x| x.attempts == r.attempt))
        .filter(|_| matches!(state, TaskState::Succeeded | TaskState::Failed));
    match report {
        Some(rep) => TaskResult {
            state,
            reason: reason.or(rep.reason.clone()),
            ..rep
        },
        None => TaskResult {
            state,
            worker: record.and_then(|r| r.worker.clone()),
            attempts: record.map_or(0, |r| r.attempt),
            exit_code: None,
            output: Payload::default(),
            duration_ms: 0,
            joules: None,
            reason,
            score: None,
            answers: None,
            value: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_node::tasks::replicas::Reply;
    use swarm_node::tasks::verdict::Decision;
    use swarm_node::tasks::{ResultBounds, TaskTable};

    fn reply(worker: &str, ok: bool, output: &str) -> Reply {
        Reply {
            worker: NodeId::new(worker).unwrap(),
            attempt: 1,
            ok,
            output: output.as_bytes().to_vec(),
            score: None,
            joules: Some(0.5),
        }
    }

    #[test]
    fn the_word_on_a_vote_carries_the_chosen_answer_every_vote_and_the_sum() {
        let table = TaskTable::new(ResultBounds::default(), 10);
        let id = TaskId::new("t1").unwrap();
        let voted = Voted {
            decision: Some(Decision {
                chosen: 1,
                value: Some(20.2),
                agreeing: vec![NodeId::new("b").unwrap()],
                dissenting: vec![NodeId::new("c").unwrap()],
            }),
            why: None,
            replies: vec![
                reply("a", false, ""),
                reply("b", true, "20.2"),
                reply("c", true, "85"),
            ],
            joules: 1.5,
        };
        let word = super::voted(&table, &id, TaskState::Succeeded, None, &voted);
        assert_eq!(word.worker, NodeId::new("b").ok());
        assert_eq!(word.output.as_bytes(), b"20.2");
        assert_eq!((word.value, word.joules), (Some(20.2), Some(1.5)));
        let votes: Vec<_> = word
            .answers
            .unwrap()
            .iter()
            .map(|a| (a.worker.to_string(), a.state, a.agrees))
            .collect();
        assert_eq!(
            votes,
            [
                ("a".into(), TaskState::Failed, None),
                ("b".into(), TaskState::Succeeded, Some(true)),
                ("c".into(), TaskState::Succeeded, Some(false)),
            ]
        );
        let undecided = Voted {
            decision: None,
            why: Some("no majority".into()),
            ..voted
        };
        let word = super::voted(&table, &id, TaskState::Undecided, None, &undecided);
        assert_eq!(
            (word.worker, word.reason.as_deref()),
            (None, Some("no majority"))
        );
        assert!(word.answers.unwrap().iter().all(|a| a.agrees.is_none()));
    }
}
