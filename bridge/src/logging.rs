//! Logging for both binaries (`swarm-bridge`, and `swarm-node`, which embeds the bridge):
//! stderr, filtered by `SWARM_LOG`, with the chatty zenoh and MQTT crates held to warnings.
//!
//! Lines fit where they go: colour only on a terminal (and never with `NO_COLOR` or
//! `TERM=dumb`), and in the systemd journal neither colour nor a timestamp, as the journal
//! stamps each line itself.

use std::ffi::OsString;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What kind of process logs, which decides how much it says when `SWARM_LOG` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// Runs until stopped (`run`): its log is all it has to say, so it says what it does.
    Service,
    /// Prints an answer and exits (`status`, `bench`): its stderr is for its own warnings and
    /// errors, so zenoh's and the MQTT crates' chatter only shows with `-v`.
    Command,
}

/// Filters from quietest to loudest. A command starts at the first, a service at the second;
/// each `-v` goes one further.
const LADDER: [&str; 4] = [
    "error,swarm_bus=warn,swarm_node=warn,swarm_bridge=warn,zenoh=off,rumqttd=off,rumqttc=off",
    "info,zenoh=warn,rumqttd=warn,rumqttc=warn",
    "debug,zenoh=info,rumqttd=info,rumqttc=info",
    "trace",
];

/// Logs to stderr. `SWARM_LOG` (an `EnvFilter`, e.g. `info,zenoh=debug`) wins over `verbose`
/// (the count of `-v` flags).
pub fn init(process: Process, verbose: u8) {
    let filter = match std::env::var("SWARM_LOG") {
        Ok(spec) if !spec.is_empty() => {
            EnvFilter::try_new(&spec).unwrap_or_else(|_| default_filter(process, verbose))
        }
        _ => default_filter(process, verbose),
    };
    let style = Style::detect(
        |name| std::env::var_os(name),
        std::io::stderr().is_terminal(),
        stderr_identity(),
    );
    subscriber(filter, style, std::io::stderr).init();
}

fn default_filter(process: Process, verbose: u8) -> EnvFilter {
    EnvFilter::new(default_directives(process, verbose))
}

fn default_directives(process: Process, verbose: u8) -> &'static str {
    let start = match process {
        Process::Command => 0,
        Process::Service => 1,
    };
    let step = (start + usize::from(verbose)).min(LADDER.len() - 1);
    LADDER[step]
}

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Style {
    ansi: bool,
    timestamps: bool,
}

impl Style {
    /// `env` reads a variable; `terminal` is whether stderr is one; `stderr` is its device and
    /// inode, when known.
    fn detect(
        env: impl Fn(&str) -> Option<OsString>,
        terminal: bool,
        stderr: Option<(u64, u64)>,
    ) -> Style {
        // systemd sets JOURNAL_STREAM for a service whose stderr is the journal, and children
        // inherit it even when their stderr goes elsewhere: only a matching device and inode
        // mean the journal (systemd.exec(5)).
        let journal = env("JOURNAL_STREAM")
            .and_then(|v| parse_journal_stream(&v))
            .is_some_and(|id| Some(id) == stderr);
        let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
        let dumb = env("TERM").is_some_and(|v| v == "dumb");
        Style {
            ansi: terminal && !journal && !set("NO_COLOR") && !dumb,
            timestamps: !journal,
        }
    }
}

/// `JOURNAL_STREAM` is `<device>:<inode>` in decimal.
fn parse_journal_stream(value: &std::ffi::OsStr) -> Option<(u64, u64)> {
    let (dev, ino) = value.to_str()?.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

fn subscriber<W>(
    filter: EnvFilter,
    style: Style,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::fmt::layer;
    // The two shapes are different types; one of the pair is always None.
    let (stamped, bare) = if style.timestamps {
        (
            Some(layer().with_writer(writer).with_ansi(style.ansi)),
            None,
        )
    } else {
        let lines = layer().with_writer(writer).with_ansi(style.ansi);
        (None, Some(lines.without_time()))
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            !is_per_message_span(meta)
        }))
        .with(stamped)
        .with(bare)
}

/// rumqttd opens `error_span!`s for every publication it routes, with the topic as a Debug
/// field; formatting them took a quarter of the bridge's CPU under a flood (perf, 4-client
/// QoS 0 flood). Its events still get through; they only lose that span context.
fn is_per_message_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with("rumqttd")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    const PLAIN: Style = Style {
        ansi: false,
        timestamps: true,
    };

    /// What `style` logs of one warning from `target` under `filter`.
    fn log_one(filter: &str, style: Style, target_zenoh: bool) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let sub = subscriber(EnvFilter::new(filter), style, move || writer.clone());
        tracing::subscriber::with_default(sub, || {
            if target_zenoh {
                tracing::warn!(target: "zenoh::net::runtime::orchestrator", "Scouting delay elapsed");
            } else {
                tracing::warn!("bridge trouble");
            }
        });
        out.text()
    }

    #[test]
    fn rumqttd_spans_are_dropped_but_its_events_and_our_spans_are_not() {
        let out = Captured::default();
        let writer = out.clone();
        let sub = subscriber(EnvFilter::new("info,rumqttd=warn"), PLAIN, move || {
            writer.clone()
        });
        tracing::subscriber::with_default(sub, || {
            tracing::error_span!(target: "rumqttd::router::routing", "publish", topic = "t-in-span")
                .in_scope(|| tracing::error!(target: "rumqttd::router::routing", "router trouble"));
            tracing::info_span!("gate", device = "board-7")
                .in_scope(|| tracing::warn!("bridge trouble"));
        });
        let text = out.text();
        assert!(text.contains("router trouble"), "{text}");
        assert!(!text.contains("t-in-span"), "{text}");
        assert!(
            text.contains("bridge trouble") && text.contains("board-7"),
            "{text}"
        );
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn colour_only_on_a_terminal_that_wants_it() {
        let on_terminal = |vars| Style::detect(env(vars), true, Some((1, 2)));
        assert!(on_terminal(&[]).ansi);
        assert!(on_terminal(&[("NO_COLOR", "")]).ansi, "empty NO_COLOR");
        assert!(!on_terminal(&[("NO_COLOR", "1")]).ansi);
        assert!(!on_terminal(&[("TERM", "dumb")]).ansi);
        assert!(on_terminal(&[("TERM", "xterm-256color")]).ansi);
        let to_file = Style::detect(env(&[]), false, Some((1, 2)));
        assert_eq!(to_file, PLAIN);
    }

    #[test]
    fn the_journal_gets_plain_unstamped_lines_only_when_stderr_is_it() {
        let journal = Style::detect(env(&[("JOURNAL_STREAM", "8:4242")]), false, Some((8, 4242)));
        assert_eq!(
            journal,
            Style {
                ansi: false,
                timestamps: false
            }
        );
        // Inherited by a child whose stderr went elsewhere: a terminal, or a file.
        let elsewhere = Style::detect(env(&[("JOURNAL_STREAM", "8:4242")]), true, Some((8, 7)));
        assert!(elsewhere.ansi && elsewhere.timestamps);
        let garbled = Style::detect(env(&[("JOURNAL_STREAM", "eight")]), false, Some((8, 4242)));
        assert_eq!(garbled, PLAIN);
    }

    #[test]
    fn plain_lines_carry_no_escapes_and_journal_lines_no_timestamp() {
        let plain = log_one("info", PLAIN, false);
        assert!(
            plain.contains("WARN") && !plain.contains('\x1b'),
            "{plain:?}"
        );
        assert!(plain.starts_with(|c: char| c.is_ascii_digit()), "{plain:?}");
        let coloured = log_one(
            "info",
            Style {
                ansi: true,
                timestamps: true,
            },
            false,
        );
        assert!(coloured.contains("\x1b["), "{coloured:?}");
        let journal = log_one(
            "info",
            Style {
                ansi: false,
                timestamps: false,
            },
            false,
        );
        assert!(journal.trim_start().starts_with("WARN"), "{journal:?}");
    }

    #[test]
    fn commands_hide_zenoh_until_asked_and_services_keep_its_warnings() {
        let quiet = default_directives(Process::Command, 0);
        assert_eq!(log_one(quiet, PLAIN, true), "");
        assert!(log_one(quiet, PLAIN, false).contains("bridge trouble"));
        let one_v = default_directives(Process::Command, 1);
        assert!(log_one(one_v, PLAIN, true).contains("Scouting delay elapsed"));
        let service = default_directives(Process::Service, 0);
        assert_eq!(service, one_v);
        assert!(log_one(service, PLAIN, true).contains("Scouting delay elapsed"));
        assert_eq!(default_directives(Process::Service, 200), "trace");
    }
}
