//! One board's update, pusher's side, sans-IO: what to send and when, from the board's reports
//! and the passing of time (docs/protocol.md#firmware-updates).
//!
//! The offer goes first, again every `OFFER_EVERY_MS` until the board answers (a sleeping
//! board's bridge holds it for its wake). Chunks then flow in a window of `WINDOW_CHUNKS`,
//! each report naming the next byte the board expects: a report that does not advance means
//! a chunk was lost, and the window starts again from there; so does a silence of
//! `STALL_MS`. After the last chunk the board checks the image, reboots into it, and reports
//! `confirmed` once the new image has rejoined the swarm, or `rolled_back`.

use swarm_bus::{Digest, FirmwareChunk, FirmwareOffer, FirmwarePhase, FirmwareReport, Payload};

pub const OFFER_EVERY_MS: u64 = 5_000;
pub const WINDOW_CHUNKS: u32 = 8;
pub const STALL_MS: u64 = 1_000;

/// How a board's update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It runs the new image, confirmed.
    Updated,
    /// It already ran this image.
    AlreadyRunning,
    /// It refused the offer or the image; it runs what it ran.
    Refused(String),
    /// The new image did not come back healthy; the previous one runs again.
    RolledBack(String),
    /// No answer in time.
    TimedOut(String),
}

/// What to publish on the board's `ota` key.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Offer(FirmwareOffer),
    Chunk(FirmwareChunk),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Offering,
    Sending,
    /// All acknowledged: the board checks, switches, reboots and tries the image.
    Switching,
}

pub struct Push {
    image: Vec<u8>,
    sha256: [u8; 32],
    version: String,
    chunk_bytes: u32,
    stage: Stage,
    /// The next byte the board expects, by its latest report.
    acked: u32,
    /// Bytes sent so far from the start of the window.
    sent: u32,
    last_offer_ms: u64,
    last_progress_ms: u64,
    deadline_ms: u64,
    outcome: Option<Outcome>,
    /// Chunks sent again after a loss or a stall.
    pub resent: u32,
    /// Where the window last started again after a loss, so a loss rewinds it once.
    rewound_at: Option<u32>,
    /// When the board had the whole image.
    switched_ms: Option<u64>,
    /// The deadline was moved past the board's wake once.
    waited_for_wake: bool,
}

impl Push {
    pub fn new(
        image: Vec<u8>,
        sha256: [u8; 32],
        version: String,
        chunk_bytes: u32,
        now_ms: u64,
        timeout_ms: u64,
    ) -> Self {
        Push {
            image,
            sha256,
            version,
            chunk_bytes: chunk_bytes.max(1),
            stage: Stage::Offering,
            acked: 0,
            sent: 0,
            last_offer_ms: now_ms,
            last_progress_ms: now_ms,
            deadline_ms: now_ms.saturating_add(timeout_ms),
            outcome: None,
            resent: 0,
            rewound_at: None,
            switched_ms: None,
            waited_for_wake: false,
        }
    }

    fn size(&self) -> u32 {
        u32::try_from(self.image.len()).unwrap_or(u32::MAX)
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// When the board had the whole image (ms on the caller's clock).
    pub fn switched_ms(&self) -> Option<u64> {
        self.switched_ms
    }

    /// Bytes the board has acknowledged.
    pub fn acked(&self) -> u32 {
        self.acked
    }

    pub fn offer(&self) -> FirmwareOffer {
        FirmwareOffer {
            version: self.version.clone(),
            sha256: Digest(self.sha256.to_vec()),
            size: self.size(),
            chunk_bytes: self.chunk_bytes,
        }
    }

    /// The board sleeps for `sleep_left_ms` more: its bridge holds the offer for its wake, and
    /// the time it has to answer starts then. Only before it has answered; a push waits for
    /// one sleep at most, so a board that keeps sleeping still times out.
    pub fn asleep_for(&mut self, sleep_left_ms: u64) {
        if self.stage == Stage::Offering && self.acked == 0 && !self.waited_for_wake {
            self.waited_for_wake = true;
            self.deadline_ms = self.deadline_ms.saturating_add(sleep_left_ms);
        }
    }

    /// The first message.
    pub fn start(&mut self, now_ms: u64) -> Vec<Out> {
        self.last_offer_ms = now_ms;
        vec![Out::Offer(self.offer())]
    }

    fn finish(&mut self, outcome: Outcome) -> Vec<Out> {
        self.outcome.get_or_insert(outcome);
        Vec::new()
    }

    fn is_ours(&self, sha: &Digest) -> bool {
        sha.as_bytes() == self.sha256
    }

    pub fn on_report(&mut self, r: &FirmwareReport, now_ms: u64) -> Vec<Out> {
        if self.outcome.is_some() {
            return Vec::new();
        }
        let runs_ours = self.is_ours(&r.image_sha256);
        // Anything sent yet: the board's image is ours because this push put it there.
        let sent_any = self.stage != Stage::Offering;
        match r.phase {
            FirmwarePhase::Confirmed | FirmwarePhase::Idle if runs_ours => {
                let outcome = if sent_any {
                    Outcome::Updated
                } else {
                    Outcome::AlreadyRunning
                };
                self.finish(outcome)
            }
            // Booted ours, not confirmed yet (its `rebooting` report may have been lost).
            FirmwarePhase::Trial if runs_ours => {
                self.switch(now_ms);
                Vec::new()
            }
            FirmwarePhase::RolledBack if self.stage == Stage::Switching => self.finish(
                Outcome::RolledBack(r.reason.clone().unwrap_or_else(|| "no reason given".into())),
            ),
            FirmwarePhase::Refused if self.stage != Stage::Switching => self.finish(
                Outcome::Refused(r.reason.clone().unwrap_or_else(|| "no reason given".into())),
            ),
            FirmwarePhase::Receiving if self.is_ours(&r.update_sha256) => {
                self.on_progress(r.next_offset, now_ms)
            }
            FirmwarePhase::Rebooting if self.is_ours(&r.update_sha256) => {
                self.switch(now_ms);
                Vec::new()
            }
            // A report about something else (an earlier update): wait for the next.
            _ => Vec::new(),
        }
    }

    fn switch(&mut self, now_ms: u64) {
        self.stage = Stage::Switching;
        self.acked = self.size();
        self.switched_ms.get_or_insert(now_ms);
    }

    fn on_progress(&mut self, next: u32, now_ms: u64) -> Vec<Out> {
        if self.stage == Stage::Offering {
            // Resumes where the board stands (0 for a fresh offer).
            self.stage = Stage::Sending;
            self.acked = next;
            self.sent = next;
            self.last_progress_ms = now_ms;
            return self.fill();
        }
        if self.stage != Stage::Sending {
            return Vec::new();
        }
        if next > self.acked {
            self.acked = next.min(self.size());
            self.last_progress_ms = now_ms;
            self.sent = self.sent.max(self.acked);
            if self.acked == self.size() {
                self.switch(now_ms);
                return Vec::new();
            }
        } else if self.sent > self.acked && self.rewound_at != Some(self.acked) {
            // The board did not advance: the chunk at `acked` was lost. Send from there, once:
            // the rest of the window still in flight brings more reports like this one.
            self.resent = self
                .resent
                .saturating_add((self.sent - self.acked).div_ceil(self.chunk_bytes));
            self.rewound_at = Some(self.acked);
            self.sent = self.acked;
            self.last_progress_ms = now_ms;
        } else {
            return Vec::new();
        }
        self.fill()
    }

    /// Chunks up to the window's edge.
    fn fill(&mut self) -> Vec<Out> {
        let window = WINDOW_CHUNKS.saturating_mul(self.chunk_bytes);
        let image = FirmwareChunk::image_of(&self.sha256);
        let mut out = Vec::new();
        while self.sent < self.size() && self.sent - self.acked < window {
            let end = self.sent.saturating_add(self.chunk_bytes).min(self.size());
            out.push(Out::Chunk(FirmwareChunk {
                image,
                offset: self.sent,
                data: Payload(self.image[self.sent as usize..end as usize].to_vec()),
            }));
            self.sent = end;
        }
        out
    }

    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Out> {
        if self.outcome.is_some() {
            return Vec::new();
        }
        if now_ms >= self.deadline_ms {
            let why = match self.stage {
                Stage::Offering => "the board never answered the offer".to_string(),
                Stage::Sending => format!(
                    "the transfer stopped at {} of {} bytes",
                    self.acked,
                    self.size()
                ),
                Stage::Switching => {
                    "the board did not come back with the new image in time".to_string()
                }
            };
            return self.finish(Outcome::TimedOut(why));
        }
        match self.stage {
            Stage::Offering if now_ms >= self.last_offer_ms + OFFER_EVERY_MS => self.start(now_ms),
            Stage::Sending if now_ms >= self.last_progress_ms + STALL_MS => {
                // Silence: a lost chunk at the window's end, or lost reports. The offer again
                // makes the board say where it stands.
                self.resent = self.resent.saturating_add(1);
                self.last_progress_ms = now_ms;
                self.sent = self.acked;
                self.rewound_at = None;
                vec![Out::Offer(self.offer())]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(len: usize) -> Push {
        let image: Vec<u8> = (0..len).map(|i| i as u8).collect();
        Push::new(image, [7; 32], "0.2.0".into(), 100, 0, 60_000)
    }

    fn report(phase: FirmwarePhase, next: u32, running: [u8; 32]) -> FirmwareReport {
        FirmwareReport {
            version: "0.1.0".into(),
            image_sha256: Digest(running.to_vec()),
            slot: 0,
            phase,
            update_sha256: Digest(vec![7; 32]),
            next_offset: next,
            size: 2_000,
            reason: None,
        }
    }

    fn offsets(out: &[Out]) -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                Out::Chunk(c) => Some(c.offset),
                Out::Offer(_) => None,
            })
            .collect()
    }

    #[test]
    fn chunks_flow_in_a_window_as_the_board_acknowledges() {
        let mut p = push(2_000);
        assert!(matches!(p.start(0)[0], Out::Offer(_)));
        let first = p.on_report(&report(FirmwarePhase::Receiving, 0, [1; 32]), 10);
        assert_eq!(offsets(&first), (0..8).map(|i| i * 100).collect::<Vec<_>>());
        // Each acknowledgement opens the window by one chunk.
        assert_eq!(
            offsets(&p.on_report(&report(FirmwarePhase::Receiving, 100, [1; 32]), 11)),
            [800]
        );
        assert_eq!(
            offsets(&p.on_report(&report(FirmwarePhase::Receiving, 300, [1; 32]), 12)),
            [900, 1000]
        );
        // The last one in: the board switches.
        let mut at = 300;
        while at < 2_000 {
            at += 100;
            p.on_report(&report(FirmwarePhase::Receiving, at, [1; 32]), 13);
        }
        assert_eq!(p.acked(), 2_000);
        p.on_report(&report(FirmwarePhase::Trial, 0, [7; 32]), 14);
        assert_eq!(p.outcome(), None, "not confirmed yet");
        p.on_report(&report(FirmwarePhase::Confirmed, 0, [7; 32]), 15);
        assert_eq!(p.outcome(), Some(&Outcome::Updated));
    }

    #[test]
    fn a_lost_chunk_is_sent_again_from_where_the_board_stands() {
        let mut p = push(2_000);
        p.start(0);
        p.on_report(&report(FirmwarePhase::Receiving, 0, [1; 32]), 0);
        p.on_report(&report(FirmwarePhase::Receiving, 100, [1; 32]), 1);
        // 100 was lost: the board reports 100 again for the chunks after it.
        let again = p.on_report(&report(FirmwarePhase::Receiving, 100, [1; 32]), 2);
        assert_eq!(offsets(&again)[0], 100);
        assert!(p.resent > 0);
        // The rest of the old window brings the same report: the window is not sent again.
        let resent = p.resent;
        for t in 3..9 {
            assert!(
                p.on_report(&report(FirmwarePhase::Receiving, 100, [1; 32]), t)
                    .is_empty()
            );
        }
        assert_eq!(p.resent, resent);
        assert_eq!(
            offsets(&p.on_report(&report(FirmwarePhase::Receiving, 200, [1; 32]), 10)),
            [900]
        );
    }

    #[test]
    fn silence_brings_the_offer_again_and_the_board_resumes() {
        let mut p = push(2_000);
        p.start(0);
        assert!(p.on_tick(4_999).is_empty());
        assert!(
            matches!(p.on_tick(5_000)[..], [Out::Offer(_)]),
            "no answer: offered again"
        );
        p.on_report(&report(FirmwarePhase::Receiving, 0, [1; 32]), 5_100);
        assert!(
            matches!(p.on_tick(6_200)[..], [Out::Offer(_)]),
            "stalled: asks where it stands"
        );
        // Back after a dropped connection at 600: the board resumes there.
        let resumed = p.on_report(&report(FirmwarePhase::Receiving, 600, [1; 32]), 6_300);
        assert_eq!(offsets(&resumed)[0], 600);
    }

    #[test]
    fn a_sleeping_board_has_its_time_to_answer_from_its_wake() {
        let mut p = push(2_000); // 60 s to answer
        p.asleep_for(300_000);
        p.asleep_for(300_000); // said twice: one sleep
        p.start(0);
        for t in (5_000..360_000).step_by(5_000) {
            p.on_tick(t);
            assert_eq!(p.outcome(), None, "still asleep or just woken at {t} ms");
        }
        p.on_tick(360_000);
        assert!(matches!(p.outcome(), Some(Outcome::TimedOut(_))));

        let mut answered = push(2_000);
        answered.start(0);
        answered.on_report(&report(FirmwarePhase::Receiving, 300, [1; 32]), 10);
        answered.asleep_for(300_000);
        answered.on_tick(60_000);
        assert!(
            matches!(answered.outcome(), Some(Outcome::TimedOut(_))),
            "a transfer under way is not given a sleep's time"
        );
    }

    #[test]
    fn outcomes_refused_rolled_back_already_running_and_timed_out() {
        let mut refused = push(2_000);
        refused.start(0);
        let mut r = report(FirmwarePhase::Refused, 0, [1; 32]);
        r.reason = Some("an image for chip id 9".into());
        refused.on_report(&r, 1);
        assert_eq!(
            refused.outcome(),
            Some(&Outcome::Refused("an image for chip id 9".into()))
        );

        let mut back = push(100);
        back.start(0);
        back.on_report(&report(FirmwarePhase::Receiving, 0, [1; 32]), 1);
        back.on_report(&report(FirmwarePhase::Rebooting, 100, [1; 32]), 2);
        let mut r = report(FirmwarePhase::RolledBack, 0, [1; 32]);
        r.reason = Some("0.2.0 rolled back: it did not rejoin".into());
        back.on_report(&r, 3);
        assert!(matches!(back.outcome(), Some(Outcome::RolledBack(_))));

        let mut same = push(100);
        same.start(0);
        same.on_report(&report(FirmwarePhase::Idle, 0, [7; 32]), 1);
        assert_eq!(same.outcome(), Some(&Outcome::AlreadyRunning));

        // The board's `rebooting` report was lost: its trial, then its confirmation, say it.
        let mut switched = push(100);
        switched.start(0);
        switched.on_report(&report(FirmwarePhase::Receiving, 0, [1; 32]), 1);
        switched.on_report(&report(FirmwarePhase::Trial, 0, [7; 32]), 2);
        assert_eq!(switched.outcome(), None);
        switched.on_report(&report(FirmwarePhase::Confirmed, 0, [7; 32]), 3);
        assert_eq!(switched.outcome(), Some(&Outcome::Updated));

        let mut lost = push(100);
        lost.start(0);
        lost.on_tick(60_000);
        assert!(
            matches!(lost.outcome(), Some(Outcome::TimedOut(w)) if w.contains("never answered"))
        );
    }

    #[test]
    fn reports_about_other_images_change_nothing() {
        let mut p = push(2_000);
        p.start(0);
        let mut other = report(FirmwarePhase::Receiving, 500, [1; 32]);
        other.update_sha256 = Digest(vec![3; 32]);
        assert!(p.on_report(&other, 1).is_empty());
        let mut old_refusal = report(FirmwarePhase::RolledBack, 0, [1; 32]);
        old_refusal.reason = Some("an earlier update".into());
        p.on_report(&old_refusal, 2);
        assert_eq!(
            p.outcome(),
            None,
            "a rollback before we switched is not ours"
        );
    }
}
