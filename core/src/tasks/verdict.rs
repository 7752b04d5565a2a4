//! One answer from several: how the leader decides a task it ran on N workers
//! (docs/tasks.md#federated). Sans-IO and pure: the answers so far, how many are still out and
//! whether time is up go in; a verdict comes out, or "wait". Asked after every answer, so a
//! decision comes as soon as the answers in hand settle it, and the replicas still running
//! can be cancelled at once.

use alloc::string::String;
use alloc::vec::Vec;
use swarm_bus::NodeId;

/// How the answers become one: the submitter's choice, as the wire carries it.
pub use swarm_bus::TaskPick as Pick;

/// One worker's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<'a> {
    pub worker: &'a NodeId,
    /// It ran and succeeded (its handler's exit code said so).
    pub ok: bool,
    pub output: &'a [u8],
    /// Its handler's score, for `BestOf`.
    pub score: Option<f64>,
    /// Its weight for `Weighted`: the worker's reputation, in [0, 1].
    pub weight: f64,
}

/// What the answers say so far.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not settled: more answers may still settle it.
    Wait,
    Decided(Decision),
    /// Settled without an answer: no majority, too few answers, nothing valid.
    Undecided {
        why: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The index in the answers of the one whose output is chosen; for `Median` and `Mean`, of
    /// the answer nearest the value.
    pub chosen: usize,
    /// The value chosen, for `Median` and `Mean`.
    pub value: Option<f64>,
    /// Workers whose answer agrees with the decision.
    pub agreeing: Vec<NodeId>,
    /// Workers whose successful answer does not (a different output, an outlier).
    pub dissenting: Vec<NodeId>,
}

/// How far from the median, in median absolute deviations, a reading is an outlier. With no
/// spread at all (every other reading equal), any different reading is one.
pub const OUTLIER_MADS: f64 = 3.0;

/// Decides what `answers` say, with `replicas` asked in all and `outstanding` still running;
/// `time_up`: the task's timeout passed, so no more answers come.
pub fn judge(
    pick: Pick,
    replicas: usize,
    answers: &[Answer],
    outstanding: usize,
    time_up: bool,
) -> Verdict {
    let outstanding = if time_up { 0 } else { outstanding };
    match pick {
        Pick::FirstValid => first_valid(answers, outstanding),
        Pick::Majority => by_weight(answers, outstanding, replicas as f64, |_| 1.0),
        Pick::Weighted => {
            // Workers still out weigh at most 1 each: the most they could add.
            let total: f64 =
                answers.iter().map(|a| clamp_weight(a.weight)).sum::<f64>() + outstanding as f64;
            by_weight(answers, outstanding, total, |a| clamp_weight(a.weight))
        }
        Pick::Median | Pick::Mean if outstanding > 0 => Verdict::Wait,
        Pick::Median => numeric(answers, replicas, false),
        Pick::Mean => numeric(answers, replicas, true),
        Pick::BestOf if outstanding > 0 => Verdict::Wait,
        Pick::BestOf => best_of(answers),
    }
}

fn clamp_weight(w: f64) -> f64 {
    if w.is_nan() { 0.0 } else { w.clamp(0.0, 1.0) }
}

fn first_valid(answers: &[Answer], outstanding: usize) -> Verdict {
    match answers.iter().position(|a| a.ok) {
        Some(chosen) => Verdict::Decided(Decision {
            chosen,
            value: None,
            agreeing: alloc::vec![answers[chosen].worker.clone()],
            dissenting: Vec::new(),
        }),
        None if outstanding > 0 => Verdict::Wait,
        None => Verdict::Undecided {
            why: "no replica succeeded".into(),
        },
    }
}

/// The output whose weight is more than half of `total`; decided as soon as one has it, and
/// undecided as soon as no output can reach it with the weight still out.
fn by_weight(
    answers: &[Answer],
    outstanding: usize,
    total: f64,
    weight: impl Fn(&Answer) -> f64,
) -> Verdict {
    // Each distinct successful output once: (index of its first answer, weight behind it).
    let mut outputs: Vec<(usize, f64)> = Vec::new();
    for (i, a) in answers.iter().enumerate().filter(|(_, a)| a.ok) {
        match outputs
            .iter_mut()
            .find(|(j, _)| answers[*j].output == a.output)
        {
            Some((_, w)) => *w += weight(a),
            None => outputs.push((i, weight(a))),
        }
    }
    let half = total / 2.0;
    if let Some(&(chosen, _)) = outputs.iter().find(|(_, w)| *w > half) {
        let output = answers[chosen].output;
        let (agree, dissent): (Vec<_>, Vec<_>) = answers
            .iter()
            .filter(|a| a.ok)
            .partition(|a| a.output == output);
        return Verdict::Decided(Decision {
            chosen,
            value: None,
            agreeing: agree.into_iter().map(|a| a.worker.clone()).collect(),
            dissenting: dissent.into_iter().map(|a| a.worker.clone()).collect(),
        });
    }
    let best = outputs.iter().map(|(_, w)| *w).fold(0.0, f64::max);
    if best + outstanding as f64 > half && total > 0.0 {
        Verdict::Wait
    } else {
        Verdict::Undecided {
            why: alloc::format!(
                "no majority: {} distinct outputs among {} successful answers",
                outputs.len(),
                answers.iter().filter(|a| a.ok).count()
            ),
        }
    }
}

/// A successful answer's output as a number: its text, trimmed.
pub fn reading(a: &Answer) -> Option<f64> {
    let text = core::str::from_utf8(a.output).ok()?;
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

fn median_of(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The median (or the mean of the readings that are not outliers) of more than half of the
/// replicas' readings.
fn numeric(answers: &[Answer], replicas: usize, mean: bool) -> Verdict {
    let readings: Vec<(usize, f64)> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| a.ok)
        .filter_map(|(i, a)| reading(a).map(|v| (i, v)))
        .collect();
    if readings.len() * 2 <= replicas {
        return Verdict::Undecided {
            why: alloc::format!(
                "{} numeric answers of {replicas} replicas: not more than half",
                readings.len()
            ),
        };
    }
    let mut values: Vec<f64> = readings.iter().map(|(_, v)| *v).collect();
    values.sort_by(f64::total_cmp);
    let median = median_of(&values);
    let mut spreads: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    spreads.sort_by(f64::total_cmp);
    let mad = median_of(&spreads);
    let outlier = |v: f64| {
        let off = (v - median).abs();
        if mad == 0.0 {
            off > 0.0
        } else {
            off > OUTLIER_MADS * mad
        }
    };
    let kept: Vec<&(usize, f64)> = readings.iter().filter(|(_, v)| !outlier(*v)).collect();
    let value = if mean {
        kept.iter().map(|(_, v)| v).sum::<f64>() / kept.len() as f64
    } else {
        median
    };
    // The answer nearest the value stands for it.
    let chosen = readings
        .iter()
        .min_by(|a, b| (a.1 - value).abs().total_cmp(&(b.1 - value).abs()))
        .map_or(0, |(i, _)| *i);
    let (agree, dissent): (Vec<_>, Vec<_>) = readings.iter().partition(|(_, v)| !outlier(*v));
    let name = |list: Vec<&(usize, f64)>| {
        list.into_iter()
            .map(|(i, _)| answers[*i].worker.clone())
            .collect()
    };
    Verdict::Decided(Decision {
        chosen,
        value: Some(value),
        agreeing: name(agree),
        dissenting: name(dissent),
    })
}

fn best_of(answers: &[Answer]) -> Verdict {
    let best = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| a.ok)
        .filter_map(|(i, a)| a.score.filter(|s| s.is_finite()).map(|s| (i, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match best {
        Some((chosen, _)) => Verdict::Decided(Decision {
            chosen,
            value: None,
            agreeing: alloc::vec![answers[chosen].worker.clone()],
            dissenting: Vec::new(),
        }),
        None => Verdict::Undecided {
            why: "no successful answer with a score".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn ids(n: usize) -> Vec<NodeId> {
        (0..n)
            .map(|i| NodeId::new(alloc::format!("w{i}")).unwrap())
            .collect()
    }

    fn answers<'a>(ids: &'a [NodeId], outputs: &[&'a str]) -> Vec<Answer<'a>> {
        ids.iter()
            .zip(outputs)
            .map(|(worker, out)| Answer {
                worker,
                ok: true,
                output: out.as_bytes(),
                score: None,
                weight: 1.0,
            })
            .collect()
    }

    fn decided(v: Verdict) -> Decision {
        match v {
            Verdict::Decided(d) => d,
            other => panic!("not decided: {other:?}"),
        }
    }

    #[test]
    fn a_majority_decides_as_soon_as_it_stands_and_names_the_dissenter() {
        let w = ids(5);
        let a = answers(&w, &["cat", "dog", "cat"]);
        assert_eq!(judge(Pick::Majority, 5, &a[..2], 3, false), Verdict::Wait);
        assert_eq!(
            judge(Pick::Majority, 5, &a, 2, false),
            Verdict::Wait,
            "2 of 5 is not more than half"
        );
        let a = answers(&w, &["cat", "dog", "cat", "cat"]);
        let d = decided(judge(Pick::Majority, 5, &a, 1, false));
        assert_eq!(a[d.chosen].output, b"cat");
        assert_eq!(d.agreeing, vec![w[0].clone(), w[2].clone(), w[3].clone()]);
        assert_eq!(d.dissenting, vec![w[1].clone()]);
    }

    #[test]
    fn no_majority_is_said_as_soon_as_none_can_form() {
        let w = ids(3);
        let a = answers(&w, &["a", "b"]);
        assert_eq!(
            judge(Pick::Majority, 3, &a, 1, false),
            Verdict::Wait,
            "the third may agree"
        );
        let a = answers(&w, &["a", "b", "c"]);
        assert!(matches!(
            judge(Pick::Majority, 3, &a, 0, false),
            Verdict::Undecided { .. }
        ));
        let a = answers(&w, &["a"]);
        assert!(
            matches!(
                judge(Pick::Majority, 3, &a, 2, true),
                Verdict::Undecided { .. }
            ),
            "time is up: one answer of three decides nothing"
        );
    }

    #[test]
    fn failed_answers_carry_no_vote() {
        let w = ids(3);
        let mut a = answers(&w, &["x", "x", "x"]);
        a[1].ok = false;
        a[2].ok = false;
        assert!(matches!(
            judge(Pick::Majority, 3, &a, 0, false),
            Verdict::Undecided { .. }
        ));
        assert!(matches!(
            judge(Pick::FirstValid, 3, &a, 0, false),
            Verdict::Decided(_)
        ));
    }

    #[test]
    fn weights_decide_a_weighted_vote() {
        let w = ids(3);
        let mut a = answers(&w, &["a", "b", "b"]);
        // A trusted worker outweighs two that have often disagreed.
        a[0].weight = 1.0;
        a[1].weight = 0.2;
        a[2].weight = 0.2;
        let d = decided(judge(Pick::Weighted, 3, &a, 0, false));
        assert_eq!(a[d.chosen].output, b"a");
        assert_eq!(d.dissenting, vec![w[1].clone(), w[2].clone()]);
        // As plain majority, the two win.
        assert_eq!(
            a[decided(judge(Pick::Majority, 3, &a, 0, false)).chosen].output,
            b"b"
        );
        // A weight off the wire cannot count more than 1, nor less than 0.
        a[1].weight = f64::INFINITY;
        a[2].weight = f64::NAN;
        assert!(
            matches!(
                judge(Pick::Weighted, 3, &a, 0, false),
                Verdict::Undecided { .. }
            ),
            "1 against 1 + 0 is no majority"
        );
    }

    #[test]
    fn first_valid_takes_the_first_success_and_waits_while_replicas_run() {
        let w = ids(3);
        let mut a = answers(&w, &["slow", "fast"]);
        a[0].ok = false;
        let d = decided(judge(Pick::FirstValid, 3, &a, 1, false));
        assert_eq!(d.chosen, 1);
        assert_eq!(judge(Pick::FirstValid, 3, &a[..1], 2, false), Verdict::Wait);
        assert!(matches!(
            judge(Pick::FirstValid, 3, &a[..1], 0, false),
            Verdict::Undecided { .. }
        ));
    }

    #[test]
    fn the_median_of_readings_names_the_outlier() {
        let w = ids(5);
        let a = answers(&w, &["20.1", "20.3\n", " 20.0", "20.2", "95"]);
        assert_eq!(judge(Pick::Median, 5, &a[..4], 1, false), Verdict::Wait);
        let d = decided(judge(Pick::Median, 5, &a, 0, false));
        assert_eq!(d.value, Some(20.2));
        assert_eq!(a[d.chosen].output, b"20.2");
        assert_eq!(d.dissenting, vec![w[4].clone()]);
        let m = decided(judge(Pick::Mean, 5, &a, 0, false));
        let mean = m.value.unwrap();
        assert!(
            (mean - 20.15).abs() < 1e-9,
            "the outlier is left out: {mean}"
        );
        assert_eq!(m.dissenting, vec![w[4].clone()]);
    }

    #[test]
    fn too_few_readings_decide_nothing() {
        let w = ids(4);
        let a = answers(&w, &["1.0", "not a number", "inf", "2.0"]);
        // Two readings of four replicas: not more than half.
        assert!(matches!(
            judge(Pick::Median, 4, &a, 0, false),
            Verdict::Undecided { .. }
        ));
        let a = answers(&w, &["1", "1", "1"]);
        assert_eq!(
            decided(judge(Pick::Median, 4, &a, 1, true)).value,
            Some(1.0)
        );
    }

    #[test]
    fn best_of_takes_the_highest_score_once_all_are_in() {
        let w = ids(3);
        let mut a = answers(&w, &["a", "b", "c"]);
        a[0].score = Some(0.4);
        a[1].score = Some(0.9);
        a[2].score = Some(f64::NAN);
        assert_eq!(judge(Pick::BestOf, 3, &a[..2], 1, false), Verdict::Wait);
        assert_eq!(decided(judge(Pick::BestOf, 3, &a, 0, false)).chosen, 1);
        a[1].ok = false;
        assert_eq!(decided(judge(Pick::BestOf, 3, &a, 0, false)).chosen, 0);
    }
}
