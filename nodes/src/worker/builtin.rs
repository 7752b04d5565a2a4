//! Handlers built into the node, for tests and benchmarks: `echo` returns its payload, `sleep`
//! waits the payload's milliseconds, `sysinfo` describes the machine.

use super::{Outcome, bounded};
use std::time::{Duration, Instant};
use swarm_bus::TaskState;

pub const NAMES: &[&str] = &["echo", "sleep", "sysinfo"];

/// The longest `sleep` a task may ask for.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// Output of a built-in is bounded like a command's.
const MAX_OUTPUT: usize = 64 * 1024;

pub async fn run(name: &str, payload: &[u8], timeout: Duration) -> Outcome {
    let started = Instant::now();
    let ok = |output: Vec<u8>| {
        let (output, truncated) = bounded(output, MAX_OUTPUT);
        Outcome {
            state: TaskState::Succeeded,
            exit_code: Some(0),
            output,
            truncated,
            duration: started.elapsed(),
            reason: None,
            score: None,
        }
    };
    match name {
        "echo" => ok(payload.to_vec()),
        "sleep" => {
            let ms = std::str::from_utf8(payload)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            let Some(ms) = ms else {
                return Outcome::failed(
                    "sleep: the payload is milliseconds, e.g. 250",
                    started.elapsed(),
                );
            };
            let wait = Duration::from_millis(ms).min(MAX_SLEEP);
            if wait > timeout {
                tokio::time::sleep(timeout).await;
                return Outcome::failed("timed out", started.elapsed());
            }
            tokio::time::sleep(wait).await;
            ok(format!("slept {ms} ms").into_bytes())
        }
        "sysinfo" => {
            let info = serde_json::json!({
                "hostname": hostname::get().ok().map(|h| h.to_string_lossy().into_owned()),
                "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                "os": std::env::consts::OS,
                "arch": std::env::consts::ARCH,
                "version": env!("CARGO_PKG_VERSION"),
            });
            ok(info.to_string().into_bytes())
        }
        other => Outcome::failed(format!("no built-in handler `{other}`"), started.elapsed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echo_sleep_and_sysinfo() {
        let long = Duration::from_secs(5);
        let echo = run("echo", b"hello", long).await;
        assert_eq!(
            (echo.state, echo.output.as_slice()),
            (TaskState::Succeeded, &b"hello"[..])
        );
        let slept = run("sleep", b"20", long).await;
        assert_eq!(slept.state, TaskState::Succeeded);
        assert!(slept.duration >= Duration::from_millis(20));
        let bad = run("sleep", b"soon", long).await;
        assert_eq!(bad.state, TaskState::Failed);
        let late = run("sleep", b"5000", Duration::from_millis(10)).await;
        assert_eq!(late.reason.as_deref(), Some("timed out"));
        let info = run("sysinfo", b"", long).await;
        let json: serde_json::Value = serde_json::from_slice(&info.output).unwrap();
        assert!(json["cpus"].as_u64().unwrap() >= 1);
        assert_eq!(run("rm", b"", long).await.state, TaskState::Failed);
    }
}
