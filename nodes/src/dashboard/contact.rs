//! Whether an observer (a dashboard, `watch`, `energy --watch`) is in contact with the swarm,
//! and so whether a withdrawn liveliness token means that a member went or that we lost sight
//! of it. Sans-IO: the caller reports what its own session says about its links and what the
//! swarm said, each with the time; nothing here reads a clock or the network.
//!
//! Zenoh withdraws every token an observer learned through a link when that link closes, and
//! it does so before the session stops listing the link; a client that fails over to another
//! node does so within milliseconds, so a look at the links may never find them empty. Hence:
//!
//! - a withdrawn token is held for [`HOLD_MS`], and only a look at our links at least that
//!   much later, with the links of the time still standing, turns it into a departure;
//! - our links all gone, or all replaced by others, since the last look is a loss of contact:
//!   every member is kept, unconfirmed, whatever tokens went with the link;
//! - once linked again the swarm is asked who is there (a roll call, after [`ROLL_CALL_DELAY_MS`]
//!   so the new link's declarations have arrived); an unconfirmed member whose token came back,
//!   or whom the roll call names, is confirmed, the others left while we could not see. The
//!   answer, too, waits [`HOLD_MS`] of standing links before it counts, as an answer cut short
//!   by a closing link looks like an empty swarm.

use std::collections::{BTreeMap, BTreeSet};
use swarm_bus::NodeId;

/// How long a withdrawn token (or a roll call's answer) waits for our links to prove they
/// stood. Zenoh drops a closed link from the session's list moments after it withdraws the
/// tokens learned through it; this covers that gap on a loaded Pi with a wide margin, and is
/// all a real departure is delayed on screen.
pub const HOLD_MS: u64 = 1_000;
/// From being linked again to asking who is there: the tokens the new link brings arrive
/// first, as do the new node's own tables.
pub const ROLL_CALL_DELAY_MS: u64 = 300;
/// A roll call that got no answer (the query failed, or came back in another epoch) is asked
/// again this much later.
pub const ROLL_CALL_RETRY_MS: u64 = 3_000;

/// What the observer should now believe and may report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A token of a member not known before.
    Joined(NodeId),
    /// Its token went at `at_ms` and our links stood long after: the member went (a crash, a
    /// cut link on its side, or a stop whose `Leave` was not heard).
    Gone { id: NodeId, at_ms: u64 },
    /// Our own links went: every member known is unconfirmed from now on.
    Lost { at_ms: u64 },
    /// Linked to the swarm: the first time (`again` false), or after a loss.
    InContact { at_ms: u64, again: bool },
    /// An unconfirmed member is there after all.
    Confirmed(NodeId),
    /// An unconfirmed member the roll call did not name: it left while we could not see.
    Unseen(NodeId),
    /// A roll call's answer was applied; `first` for the one after the first contact.
    RollCalled { first: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Here,
    /// Token withdrawn at this time; not yet judged.
    Going(u64),
    Unconfirmed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    /// Not linked yet since start.
    Never,
    Up(BTreeSet<String>),
    Down {
        since_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RollCall {
    None,
    /// To ask (again) at `at_ms`.
    Due {
        epoch: u64,
        at_ms: u64,
    },
    /// Answered at `at_ms`; applied once the links have stood `HOLD_MS` since.
    Answered {
        epoch: u64,
        at_ms: u64,
        present: BTreeSet<NodeId>,
    },
}

/// Where the observer stands, for a view to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Never linked yet.
    Waiting,
    InContact,
    Lost {
        since_ms: u64,
    },
}

#[derive(Debug)]
pub struct Contact {
    link: Link,
    /// Counts the times contact was made; a roll call answers for one of them.
    epoch: u64,
    members: BTreeMap<NodeId, Presence>,
    roll_call: RollCall,
    cap: usize,
    refused: u64,
}

impl Contact {
    /// At most `cap` members are tracked: a flood of made-up tokens must not exhaust memory.
    pub fn new(cap: usize) -> Self {
        Self {
            link: Link::Never,
            epoch: 0,
            members: BTreeMap::new(),
            roll_call: RollCall::None,
            cap,
            refused: 0,
        }
    }

    pub fn standing(&self) -> Standing {
        match &self.link {
            Link::Never => Standing::Waiting,
            Link::Up(_) => Standing::InContact,
            Link::Down { since_ms } => Standing::Lost {
                since_ms: *since_ms,
            },
        }
    }

    /// Members not confirmed since contact was lost.
    #[cfg(test)]
    pub fn unconfirmed(&self) -> usize {
        self.members
            .values()
            .filter(|p| **p == Presence::Unconfirmed)
            .count()
    }

    /// Members whose token is up, by id.
    pub fn here(&self) -> impl Iterator<Item = &NodeId> {
        self.members
            .iter()
            .filter(|(_, p)| **p == Presence::Here)
            .map(|(id, _)| id)
    }

    /// Every member still believed in, confirmed or not, by id.
    pub fn known(&self) -> impl Iterator<Item = &NodeId> {
        self.members.keys()
    }

    /// New ids refused at the cap.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// What our own session says about its links now: the ids of the nodes (peers or routers)
    /// it has a transport to.
    pub fn links(&mut self, now_ms: u64, links: BTreeSet<String>) -> Vec<Seen> {
        let mut seen = Vec::new();
        let lost = match &self.link {
            Link::Up(old) => links.is_empty() || old.is_disjoint(&links),
            Link::Never | Link::Down { .. } => false,
        };
        if lost {
            self.lose(now_ms, &mut seen);
        }
        match (&self.link, links.is_empty()) {
            (Link::Never, false) => self.make_contact(now_ms, links, false, &mut seen),
            (Link::Down { .. }, false) => self.make_contact(now_ms, links, true, &mut seen),
            (Link::Up(_), false) => {
                // A peer session gains and drops links to single nodes all the time; only
                // losing every one of them at once is losing the swarm.
                self.link = Link::Up(links);
                self.judge(now_ms, &mut seen);
            }
            (_, true) => {}
        }
        seen
    }

    /// A member's token arrived.
    pub fn joined(&mut self, id: NodeId) -> Option<Seen> {
        let full = self.members.len() >= self.cap;
        match self.members.get_mut(&id) {
            None if full => {
                self.refused = self.refused.saturating_add(1);
                None
            }
            None => {
                self.members.insert(id.clone(), Presence::Here);
                Some(Seen::Joined(id))
            }
            Some(p @ Presence::Unconfirmed) => {
                *p = Presence::Here;
                Some(Seen::Confirmed(id))
            }
            // Withdrawn and back within the hold: it never went, as far as we can tell.
            Some(p) => {
                *p = Presence::Here;
                None
            }
        }
    }

    /// A member's token was withdrawn: held until our links prove they stood.
    pub fn token_gone(&mut self, now_ms: u64, id: &NodeId) {
        let linked = !matches!(self.link, Link::Down { .. });
        if let Some(p) = self.members.get_mut(id)
            && *p == Presence::Here
        {
            *p = if linked {
                Presence::Going(now_ms)
            } else {
                Presence::Unconfirmed
            };
        }
    }

    /// The member said it leaves: its departure is reported as clean elsewhere, and its token's
    /// end is no news.
    pub fn left(&mut self, id: &NodeId) {
        self.members.remove(id);
    }

    /// When a roll call is due, the epoch to ask it for and the members its answer is to
    /// settle; asked again later if no answer counts by then. With nobody unconfirmed there is
    /// nothing to ask, and the roll call is answered at once.
    pub fn roll_call_due(&mut self, now_ms: u64) -> Option<(u64, BTreeSet<NodeId>)> {
        let RollCall::Due { epoch, at_ms } = self.roll_call else {
            return None;
        };
        if now_ms < at_ms || epoch != self.epoch {
            return None;
        }
        let asked: BTreeSet<NodeId> = self
            .members
            .iter()
            .filter(|(_, p)| **p == Presence::Unconfirmed)
            .map(|(id, _)| id.clone())
            .collect();
        if asked.is_empty() {
            self.roll_call = RollCall::Answered {
                epoch,
                at_ms: now_ms,
                present: BTreeSet::new(),
            };
            return None;
        }
        self.roll_call = RollCall::Due {
            epoch,
            at_ms: now_ms.saturating_add(ROLL_CALL_RETRY_MS),
        };
        Some((epoch, asked))
    }

    /// The swarm's answer to the roll call asked for `epoch`: the members whose token it holds.
    pub fn roll_call(&mut self, now_ms: u64, epoch: u64, present: BTreeSet<NodeId>) {
        let asked = matches!(self.roll_call, RollCall::Due { epoch: e, .. } if e == epoch);
        if asked && epoch == self.epoch && matches!(self.link, Link::Up(_)) {
            self.roll_call = RollCall::Answered {
                epoch,
                at_ms: now_ms,
                present,
            };
        }
    }

    fn lose(&mut self, now_ms: u64, seen: &mut Vec<Seen>) {
        for p in self.members.values_mut() {
            *p = Presence::Unconfirmed;
        }
        self.link = Link::Down { since_ms: now_ms };
        self.roll_call = RollCall::None;
        seen.push(Seen::Lost { at_ms: now_ms });
    }

    fn make_contact(
        &mut self,
        now_ms: u64,
        links: BTreeSet<String>,
        again: bool,
        seen: &mut Vec<Seen>,
    ) {
        self.link = Link::Up(links);
        self.epoch = self.epoch.saturating_add(1);
        self.roll_call = RollCall::Due {
            epoch: self.epoch,
            at_ms: now_ms.saturating_add(ROLL_CALL_DELAY_MS),
        };
        seen.push(Seen::InContact {
            at_ms: now_ms,
            again,
        });
    }

    /// With the links standing: departures and a roll call's answer held long enough count.
    fn judge(&mut self, now_ms: u64, seen: &mut Vec<Seen>) {
        let due = |at: u64| now_ms.saturating_sub(at) >= HOLD_MS;
        let gone: Vec<(NodeId, u64)> = self
            .members
            .iter()
            .filter_map(|(id, p)| match p {
                Presence::Going(at) if due(*at) => Some((id.clone(), *at)),
                _ => None,
            })
            .collect();
        for (id, at_ms) in gone {
            self.members.remove(&id);
            seen.push(Seen::Gone { id, at_ms });
        }
        let ripe = matches!(
            &self.roll_call,
            RollCall::Answered { epoch, at_ms, .. } if *epoch == self.epoch && due(*at_ms)
        );
        if !ripe {
            return;
        }
        let RollCall::Answered { present, .. } =
            std::mem::replace(&mut self.roll_call, RollCall::None)
        else {
            return;
        };
        let unconfirmed: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, p)| **p == Presence::Unconfirmed)
            .map(|(id, _)| id.clone())
            .collect();
        // Only the unconfirmed are settled here: members the answer names that we do not know
        // come with their tokens, and one whose token went meanwhile stays gone.
        for id in unconfirmed {
            if present.contains(&id) {
                self.members.insert(id.clone(), Presence::Here);
                seen.push(Seen::Confirmed(id));
            } else {
                self.members.remove(&id);
                seen.push(Seen::Unseen(id));
            }
        }
        seen.push(Seen::RollCalled {
            first: self.epoch == 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn links(zids: &[&str]) -> BTreeSet<String> {
        zids.iter().map(|z| z.to_string()).collect()
    }

    fn ids(names: &[&str]) -> BTreeSet<NodeId> {
        names.iter().map(|n| id(n)).collect()
    }

    /// Linked through `a` at 0, members n0..n2 known, the first roll call settled.
    fn settled() -> Contact {
        let mut c = Contact::new(100);
        assert_eq!(
            c.links(0, links(&["a"])),
            [Seen::InContact {
                at_ms: 0,
                again: false
            }]
        );
        for n in ["n0", "n1", "n2"] {
            assert_eq!(c.joined(id(n)), Some(Seen::Joined(id(n))));
        }
        assert_eq!(c.roll_call_due(ROLL_CALL_DELAY_MS), None, "nobody to ask");
        assert!(c.links(1_000, links(&["a"])).is_empty());
        assert_eq!(
            c.links(ROLL_CALL_DELAY_MS + HOLD_MS, links(&["a"])),
            [Seen::RollCalled { first: true }]
        );
        c
    }

    #[test]
    fn a_token_gone_while_the_link_stands_is_a_departure_once_the_hold_is_over() {
        let mut c = settled();
        c.token_gone(5_000, &id("n1"));
        assert!(c.links(5_250, links(&["a"])).is_empty(), "still held");
        assert_eq!(
            c.links(5_000 + HOLD_MS, links(&["a"])),
            [Seen::Gone {
                id: id("n1"),
                at_ms: 5_000
            }]
        );
        assert_eq!(c.here().count(), 2);
        assert_eq!(c.standing(), Standing::InContact);
    }

    #[test]
    fn every_token_gone_with_our_link_is_a_loss_of_contact_not_a_crash() {
        let mut c = settled();
        // Zenoh withdraws the tokens first; the link is still listed at the next look.
        for n in ["n0", "n1", "n2"] {
            c.token_gone(5_000, &id(n));
        }
        assert!(c.links(5_010, links(&["a"])).is_empty());
        assert_eq!(c.links(5_250, links(&[])), [Seen::Lost { at_ms: 5_250 }]);
        assert_eq!(c.standing(), Standing::Lost { since_ms: 5_250 });
        assert_eq!(c.unconfirmed(), 3, "kept, unconfirmed");
        // However long the silence, nobody is reported gone while we cannot see.
        assert!(c.links(60_000, links(&[])).is_empty());
        assert_eq!(c.roll_call_due(60_000), None, "nobody to ask");
        assert_eq!(c.known().count(), 3);
    }

    #[test]
    fn a_client_failing_over_to_another_node_lost_contact_and_found_it_again() {
        let mut c = settled();
        for n in ["n0", "n1", "n2"] {
            c.token_gone(5_000, &id(n));
        }
        // The new link brings the live members' tokens back before we look.
        assert_eq!(c.joined(id("n0")), None, "within the hold: never went");
        assert_eq!(c.joined(id("n1")), None);
        assert_eq!(
            c.links(5_250, links(&["b"])),
            [
                Seen::Lost { at_ms: 5_250 },
                Seen::InContact {
                    at_ms: 5_250,
                    again: true
                }
            ]
        );
        assert_eq!(c.unconfirmed(), 3);
        assert_eq!(c.roll_call_due(5_300), None, "not before the delay");
        let (epoch, asked) = c.roll_call_due(5_250 + ROLL_CALL_DELAY_MS).unwrap();
        assert_eq!((epoch, asked), (2, ids(&["n0", "n1", "n2"])));
        c.roll_call(5_700, epoch, ids(&["n0", "n1"]));
        assert!(c.links(6_000, links(&["b"])).is_empty(), "answer held");
        let mut seen = c.links(5_700 + HOLD_MS, links(&["b"]));
        seen.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(
            seen,
            [
                Seen::Confirmed(id("n0")),
                Seen::Confirmed(id("n1")),
                Seen::RollCalled { first: false },
                Seen::Unseen(id("n2")),
            ]
        );
        assert_eq!(c.unconfirmed(), 0);
        assert_eq!(c.here().cloned().collect::<Vec<_>>(), [id("n0"), id("n1")]);
    }

    #[test]
    fn a_returning_token_confirms_a_member_before_the_roll_call() {
        let mut c = settled();
        c.links(5_000, links(&[]));
        assert_eq!(c.joined(id("n2")), Some(Seen::Confirmed(id("n2"))));
        assert_eq!(
            c.links(9_000, links(&["c"])),
            [Seen::InContact {
                at_ms: 9_000,
                again: true
            }]
        );
        assert_eq!(c.unconfirmed(), 2);
    }

    #[test]
    fn a_peer_losing_some_of_its_links_is_still_in_contact() {
        let mut c = Contact::new(100);
        c.links(0, links(&["a", "b", "c"]));
        for n in ["n0", "n1", "n2"] {
            c.joined(id(n));
        }
        c.token_gone(1_000, &id("n0"));
        assert!(c.links(1_010, links(&["b", "c"])).is_empty());
        assert_eq!(
            c.links(2_000, links(&["c", "d"])),
            [Seen::Gone {
                id: id("n0"),
                at_ms: 1_000
            }]
        );
        // Every link of the last look replaced at once is a loss, even with new ones up.
        assert_eq!(
            c.links(3_000, links(&["e"])),
            [
                Seen::Lost { at_ms: 3_000 },
                Seen::InContact {
                    at_ms: 3_000,
                    again: true
                }
            ]
        );
    }

    #[test]
    fn an_answer_from_an_earlier_contact_or_cut_short_by_a_loss_settles_nothing() {
        let mut c = settled();
        c.links(5_000, links(&[]));
        c.links(6_000, links(&["b"]));
        let (first, _) = c.roll_call_due(6_300).unwrap();
        // Lost again before the answer arrived: the answer is from a link that is gone.
        c.links(6_400, links(&[]));
        c.roll_call(6_500, first, ids(&[]));
        c.links(7_000, links(&["c"]));
        assert!(
            c.links(9_000, links(&["c"]))
                .iter()
                .all(|s| !matches!(s, Seen::Unseen(_) | Seen::RollCalled { .. }))
        );
        assert_eq!(c.unconfirmed(), 3);
        // The answer arrives, then the link it came over closes within the hold.
        let (second, _) = c.roll_call_due(9_000).unwrap();
        assert_ne!(second, first);
        c.roll_call(9_100, second, ids(&[]));
        assert_eq!(
            c.links(9_200, links(&[])),
            [Seen::Lost { at_ms: 9_200 }],
            "an empty answer cut short is no proof that everyone left"
        );
        assert_eq!(c.unconfirmed(), 3);
    }

    #[test]
    fn an_unanswered_roll_call_is_asked_again() {
        let mut c = settled();
        c.links(5_000, links(&[]));
        c.links(6_000, links(&["b"]));
        let everyone = ids(&["n0", "n1", "n2"]);
        assert_eq!(c.roll_call_due(6_300), Some((2, everyone.clone())));
        assert_eq!(c.roll_call_due(6_400), None);
        assert_eq!(
            c.roll_call_due(6_300 + ROLL_CALL_RETRY_MS),
            Some((2, everyone))
        );
    }

    #[test]
    fn a_leave_is_no_departure_to_judge_and_members_are_capped() {
        let mut c = settled();
        c.token_gone(5_000, &id("n0"));
        c.left(&id("n0"));
        assert!(c.links(9_000, links(&["a"])).is_empty());
        let mut small = Contact::new(2);
        small.links(0, links(&["a"]));
        for n in ["n0", "n1", "n2"] {
            small.joined(id(n));
        }
        assert_eq!(small.known().count(), 2);
        assert_eq!(small.refused(), 1);
    }
}
