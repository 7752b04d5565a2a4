//! The way up to an MQTT session: Wi-Fi, then an address, then TCP, then MQTT. The board
//! binary performs each step and reports back; this decides what comes next and how long to
//! wait after a failure. A failure falls back only as far as it must: a refused TCP connection
//! keeps the Wi-Fi association, a lost association starts from the top.

use crate::backoff::Backoff;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Wifi,
    Ip,
    Tcp,
    Mqtt,
}

/// What the binary should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    JoinWifi,
    WaitForIp,
    OpenTcp,
    /// Send CONNECT on the open socket and wait for CONNACK.
    Handshake,
    /// The session is up: report, ping, take commands.
    Serve,
    /// Nothing until this time (ms on the binary's clock).
    Wait {
        until_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEvent {
    Reached(Stage),
    Failed(Stage),
    WifiLost,
    /// A served session ended: broker gone, keep-alive missed, socket error.
    SessionLost,
}

#[derive(Debug, Clone)]
pub struct Link {
    reached: Option<Stage>,
    backoff: Backoff,
    retry_at: Option<u64>,
    /// Failures since the last session came up.
    pub failures: u32,
}

impl Link {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            reached: None,
            backoff,
            retry_at: None,
            failures: 0,
        }
    }

    pub fn next(&mut self, now_ms: u64) -> Step {
        if let Some(at) = self.retry_at {
            if now_ms < at {
                return Step::Wait { until_ms: at };
            }
            self.retry_at = None;
        }
        match self.reached {
            None => Step::JoinWifi,
            Some(Stage::Wifi) => Step::WaitForIp,
            Some(Stage::Ip) => Step::OpenTcp,
            Some(Stage::Tcp) => Step::Handshake,
            Some(Stage::Mqtt) => Step::Serve,
        }
    }

    /// `random`: any random word, for the backoff's jitter.
    pub fn on(&mut self, event: LinkEvent, now_ms: u64, random: u32) {
        let fall_back_to = match event {
            LinkEvent::Reached(stage) => {
                self.reached = Some(stage);
                if stage == Stage::Mqtt {
                    self.backoff.reset();
                    self.failures = 0;
                }
                return;
            }
            // No address usually means the association is not really working either.
            LinkEvent::Failed(Stage::Wifi | Stage::Ip) | LinkEvent::WifiLost => None,
            LinkEvent::Failed(Stage::Tcp | Stage::Mqtt) | LinkEvent::SessionLost => Some(Stage::Ip),
        };
        self.reached = fall_back_to.min(self.reached);
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now_ms + u64::from(self.backoff.next_ms(random)));
    }

    pub fn is_up(&self) -> bool {
        self.reached == Some(Stage::Mqtt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link::new(Backoff::new(1000, 8000))
    }

    #[test]
    fn steps_climb_to_a_session() {
        let mut l = link();
        let mut steps = alloc::vec::Vec::new();
        for stage in [Stage::Wifi, Stage::Ip, Stage::Tcp, Stage::Mqtt] {
            steps.push(l.next(0));
            l.on(LinkEvent::Reached(stage), 0, 0);
        }
        steps.push(l.next(0));
        assert_eq!(
            steps,
            [
                Step::JoinWifi,
                Step::WaitForIp,
                Step::OpenTcp,
                Step::Handshake,
                Step::Serve
            ]
        );
        assert!(l.is_up());
    }

    #[test]
    fn a_broker_that_refuses_keeps_the_wifi_and_backs_off_longer_each_time() {
        let mut l = link();
        for stage in [Stage::Wifi, Stage::Ip] {
            l.on(LinkEvent::Reached(stage), 0, 0);
        }
        let mut now = 0;
        let mut waits = alloc::vec::Vec::new();
        for _ in 0..4 {
            assert_eq!(l.next(now), Step::OpenTcp);
            l.on(LinkEvent::Failed(Stage::Tcp), now, 0);
            let Step::Wait { until_ms } = l.next(now) else {
                panic!("no backoff after a failure");
            };
            waits.push(until_ms - now);
            now = until_ms;
        }
        assert_eq!(waits, [500, 1000, 2000, 4000]);
        assert_eq!(l.failures, 4);
        l.on(LinkEvent::Reached(Stage::Tcp), now, 0);
        l.on(LinkEvent::Reached(Stage::Mqtt), now, 0);
        assert_eq!(l.failures, 0);
        l.on(LinkEvent::SessionLost, now, 0);
        assert_eq!(
            l.next(now),
            Step::Wait {
                until_ms: now + 500
            },
            "backoff reset by the session"
        );
        assert_eq!(l.next(now + 500), Step::OpenTcp);
    }

    #[test]
    fn losing_the_wifi_starts_from_the_top() {
        let mut l = link();
        for stage in [Stage::Wifi, Stage::Ip, Stage::Tcp, Stage::Mqtt] {
            l.on(LinkEvent::Reached(stage), 0, 0);
        }
        l.on(LinkEvent::WifiLost, 0, 0);
        assert_eq!(l.next(10_000), Step::JoinWifi);
        l.on(LinkEvent::Reached(Stage::Wifi), 10_000, 0);
        l.on(LinkEvent::Failed(Stage::Ip), 10_000, 0);
        assert_eq!(l.next(20_000), Step::JoinWifi, "no address: re-join");
    }
}
