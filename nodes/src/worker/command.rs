//! Runs a configured command for a task: a clean environment (only the allowlisted variables
//! and the task's id), the payload on stdin, stdout read up to the bound, killed at the timeout.
//! A handler may score its answer (for `best-of`) by writing a number to `$SWARM_SCORE_FILE`.

use super::Outcome;
use super::settings::CommandHandler;
use std::process::Stdio;
use std::time::{Duration, Instant};
use swarm_bus::TaskState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn run(handler: &CommandHandler, task_id: &str, payload: &[u8]) -> Outcome {
    let started = Instant::now();
    let Some((program, args)) = handler.command.split_first() else {
        return Outcome::failed("the handler's command is empty", started.elapsed());
    };
    // A private file of its own (not a name in /tmp another user could plant), gone after.
    let score_file = match tempfile::NamedTempFile::new() {
        Ok(f) => f,
        Err(e) => {
            return Outcome::failed(format!("no file for the score: {e}"), started.elapsed());
        }
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(
            handler
                .env
                .iter()
                .filter_map(|name| std::env::var_os(name).map(|v| (name, v))),
        )
        .env("SWARM_TASK_ID", task_id)
        .env("SWARM_SCORE_FILE", score_file.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, so what a shell handler starts goes with it.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome::failed(format!("cannot start `{program}`: {e}"), started.elapsed());
        }
    };
    let _group = GroupKill(child.id());
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    let max = handler.max_output_bytes;
    let io = async move {
        // A handler that ignores its stdin must not block the task: write, then close.
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(payload).await;
        }
        let mut output = Vec::new();
        let mut truncated = false;
        if let Some(stdout) = stdout {
            // One byte past the bound tells that there was more, without reading it all.
            let mut limited = stdout.take(max as u64 + 1);
            let _ = limited.read_to_end(&mut output).await;
            if output.len() > max {
                output.truncate(max);
                truncated = true;
            }
        }
        (output, truncated)
    };
    let timeout = Duration::from_secs(u64::from(handler.timeout_s.max(1)));
    let finished = tokio::time::timeout(timeout, async {
        let (output, truncated) = io.await;
        (child.wait().await, output, truncated)
    })
    .await;
    match finished {
        Ok((Ok(status), output, truncated)) => {
            let ok = status.success();
            Outcome {
                state: if ok {
                    TaskState::Succeeded
                } else {
                    TaskState::Failed
                },
                exit_code: status.code(),
                output,
                truncated,
                duration: started.elapsed(),
                reason: (!ok).then(|| format!("{status}")),
                score: read_score(score_file.path()),
            }
        }
        Ok((Err(e), _, _)) => {
            Outcome::failed(format!("waiting for `{program}`: {e}"), started.elapsed())
        }
        // Dropping the future drops the child, which kill_on_drop kills.
        Err(_) => Outcome::failed(format!("timed out after {timeout:?}"), started.elapsed()),
    }
}

/// The number a handler wrote to its score file, if it wrote a finite one: read no further
/// than a number's length, so a handler filling the file costs nothing.
fn read_score(path: &std::path::Path) -> Option<f64> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(64)
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse::<f64>().ok().filter(|s| s.is_finite())
}

/// Kills the handler's process group when the run ends in any way (done, timed out, or its
/// task revoked and this future dropped): a shell's children do not outlive their task.
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(command: &[&str]) -> CommandHandler {
        CommandHandler {
            command: command.iter().map(|s| s.to_string()).collect(),
            timeout_s: 5,
            max_output_bytes: 16,
            env: vec![],
            idempotent: false,
        }
    }

    #[tokio::test]
    async fn a_handler_scores_its_answer_through_its_score_file_or_not_at_all() {
        let scored = run(
            &handler(&["sh", "-c", "echo 0.75 > \"$SWARM_SCORE_FILE\""]),
            "t1",
            b"",
        )
        .await;
        assert_eq!(scored.score, Some(0.75));
        let silent = run(&handler(&["true"]), "t1", b"").await;
        assert_eq!(silent.score, None);
        for junk in ["nan", "inf", "high", "1e999"] {
            let cmd = format!("echo {junk} > \"$SWARM_SCORE_FILE\"");
            let out = run(&handler(&["sh", "-c", &cmd]), "t1", b"").await;
            assert_eq!(out.score, None, "{junk}");
        }
    }

    #[tokio::test]
    async fn payload_in_output_out_exit_code_kept() {
        let out = run(&handler(&["cat"]), "t1", b"payload").await;
        assert_eq!(out.state, TaskState::Succeeded);
        assert_eq!(out.output, b"payload");
        let failed = run(&handler(&["sh", "-c", "exit 3"]), "t1", b"").await;
        assert_eq!(
            (failed.state, failed.exit_code),
            (TaskState::Failed, Some(3))
        );
    }

    #[tokio::test]
    async fn output_is_bounded_and_the_environment_is_only_the_allowlist() {
        let long = run(&handler(&["sh", "-c", "yes | head -c 100000"]), "t1", b"").await;
        assert_eq!((long.output.len(), long.truncated), (16, true));
        // PATH is allowed through, HOME (set wherever tests run) is not.
        let allow_path = CommandHandler {
            env: vec!["PATH".into()],
            ..handler(&["/bin/sh", "-c", "echo $SWARM_TASK_ID-${PATH:+p}-${HOME:+h}"])
        };
        assert!(
            std::env::var_os("HOME").is_some(),
            "the test needs HOME set"
        );
        let env = run(&allow_path, "t9", b"").await;
        assert_eq!(String::from_utf8_lossy(&env.output).trim(), "t9-p-");
    }

    #[tokio::test]
    async fn a_handler_past_its_timeout_is_killed() {
        let slow = CommandHandler {
            timeout_s: 1,
            ..handler(&["sleep", "30"])
        };
        let out = run(&slow, "t1", b"").await;
        assert_eq!(out.state, TaskState::Failed);
        assert!(out.reason.unwrap().contains("timed out"));
        assert!(out.duration < Duration::from_secs(10));
        // What the handler started in the background goes too.
        let shell = CommandHandler {
            timeout_s: 1,
            ..handler(&["/bin/sh", "-c", "sleep 31.4159 & sleep 31.4159"])
        };
        run(&shell, "t1", b"").await;
        let left = std::process::Command::new("pgrep")
            .args(["-f", "sleep 31.4159"])
            .output()
            .expect("pgrep");
        assert!(left.stdout.is_empty(), "left: {:?}", left.stdout);
        let missing = run(&handler(&["/no/such/program"]), "t1", b"").await;
        assert!(missing.reason.unwrap().contains("cannot start"));
    }
}
