//! Script prober: run an operator's command; exit status 0 means up.
//!
//! The command is run directly, without a shell (an operator who wants one writes
//! `["sh", "-c", "..."]`), with `{address}`, `{port}` and `{endpoint}` substituted in every
//! element. Standard output and standard error share one pipe, so the first non-empty line of
//! their combined output becomes the reason ("exit 1: db unreachable").
//!
//! The script runs in its own process group. At the timeout the whole group gets SIGKILL and the
//! script is reaped, so a hung script and anything it started are really gone; after a normal
//! exit, stragglers left in the group (a forgotten `&`) are killed too, so that a check never
//! leaks processes interval after interval. The same happens if the probe itself is cancelled.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::net::{Attempt, io_reason};
use super::{ExecSpec, ProbeResult, Target};

/// Characters of output kept as the reason.
const MAX_DETAIL_CHARS: usize = 200;
/// Bytes of output searched for the first non-empty line; the rest is read and discarded.
const KEEP_BYTES: usize = 4096;
/// Output read at most; past it the script may block on a full pipe until the timeout.
const MAX_OUTPUT: usize = 1 << 20;
/// After the script exits, how long to wait for output still in flight from its group.
const DRAIN_GRACE: Duration = Duration::from_millis(50);
/// After SIGKILL, how long to wait for the kernel to let the script be reaped.
const REAP_GRACE: Duration = Duration::from_secs(2);

/// Substitutes `{address}`, `{port}` (empty when the target has none) and `{endpoint}` in one
/// command element. The endpoint name goes last, so that braces in it are left alone.
pub fn substitute(arg: &str, t: &Target) -> String {
    let port = t.port.map(|p| p.to_string()).unwrap_or_default();
    arg.replace("{address}", &t.address.to_string())
        .replace("{port}", &port)
        .replace("{endpoint}", &t.endpoint)
}

/// Sends SIGKILL to a process group when dropped: the script's whole tree goes with the probe.
struct GroupKill(Option<libc::pid_t>);

impl GroupKill {
    fn kill(&self) {
        if let Some(pgid) = self.0.filter(|&p| p > 0) {
            // SAFETY: kill has no memory-safety preconditions; a negative pid names a group,
            // and pgid > 0 so this never signals every process (-1) or our own group (0).
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The output seen so far: the first [`KEEP_BYTES`] bytes and a running total.
#[derive(Default)]
struct Output {
    kept: Vec<u8>,
    total: usize,
    eof: bool,
}

impl Output {
    fn take(&mut self, bytes: &[u8]) {
        let room = KEEP_BYTES.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.total += bytes.len();
    }

    /// Whether more output should be read.
    fn open(&self) -> bool {
        !self.eof && self.total < MAX_OUTPUT
    }

    /// The first non-empty line, trimmed and cut to [`MAX_DETAIL_CHARS`] characters.
    fn first_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.kept);
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        match line.char_indices().nth(MAX_DETAIL_CHARS) {
            Some((cut, _)) => format!("{}...", &line[..cut]),
            None => line.to_string(),
        }
    }

    /// `head`, then ": first line" when there was output.
    fn reason(&self, head: &str) -> String {
        match self.first_line() {
            line if line.is_empty() => head.to_string(),
            line => format!("{head}: {line}"),
        }
    }
}

/// Reads one chunk into `out`; end of file or an error closes the output.
async fn read_some(rx: &mut pipe::Receiver, chunk: &mut [u8], out: &mut Output) {
    match rx.read(chunk).await {
        Ok(0) | Err(_) => out.eof = true,
        Ok(n) => out.take(&chunk[..n]),
    }
}

/// "exit 1", or "killed by signal 9" for a script that did not exit on its own.
fn status_head(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("{status}"),
    }
}

/// Spawns the command in its own process group with stdin closed and stdout and stderr on one
/// pipe, whose read end is returned.
fn spawn(args: &[String]) -> io::Result<(Child, pipe::Receiver)> {
    let (reader, writer) = io::pipe()?;
    let writer2 = writer.try_clone()?;
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn();
    // Dropping the command closes our copies of the write end: end of file then comes when
    // the script (and whatever inherited its output) is gone.
    drop(cmd);
    let child = child?;
    let rx = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    Ok((child, rx))
}

/// Script probe: run the command; up when it exits with status 0 before the timeout, which
/// kills its process group ("killed after timeout 500ms"). The reason is "exit N", followed
/// by the first line of output if there was one.
pub async fn probe(s: &ExecSpec, t: &Target, timeout: Duration) -> ProbeResult {
    let a = Attempt::start(timeout);
    let args: Vec<String> = s.command.iter().map(|arg| substitute(arg, t)).collect();
    if args.is_empty() {
        return a.done(false, "empty command");
    }
    let (mut child, mut rx) = match spawn(&args) {
        Ok(spawned) => spawned,
        Err(e) => {
            return a.done(
                false,
                format!("cannot run {:?}: {}", args[0], io_reason(&e)),
            );
        }
    };
    let group = GroupKill(child.id().and_then(|id| libc::pid_t::try_from(id).ok()));
    let mut out = Output::default();
    let mut chunk = [0u8; 1024];

    // Each turn either ends the loop or reads at least one byte of at most MAX_OUTPUT, and the
    // deadline ends it in any case.
    let status = loop {
        tokio::select! {
            status = child.wait() => break Some(status),
            () = read_some(&mut rx, &mut chunk, &mut out), if out.open() => {}
            () = sleep_until(a.deadline) => break None,
        }
    };

    let Some(status) = status else {
        // The script is not reaped yet, so its pid still names our group: kill it all, reap.
        group.kill();
        let _ = child.start_kill();
        let _ = timeout_at(Instant::now() + REAP_GRACE, child.wait()).await;
        return a.done(
            false,
            out.reason(&format!("killed after timeout {timeout:?}")),
        );
    };
    let verdict = a.start.elapsed();
    let status = match status {
        Ok(status) => status,
        Err(e) => return a.done(false, format!("wait failed: {}", io_reason(&e))),
    };
    // Output written just before exit may still be in the pipe; take it, briefly.
    let drain_until = a.deadline.min(Instant::now() + DRAIN_GRACE);
    while out.open() {
        if timeout_at(drain_until, read_some(&mut rx, &mut chunk, &mut out))
            .await
            .is_err()
        {
            break;
        }
    }
    drop(group); // stragglers of a script that exited
    ProbeResult {
        ok: status.success(),
        rtt: verdict,
        detail: out.reason(&status_head(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            address: "::1".parse().unwrap(),
            port: Some(53),
            endpoint: "ns{1}".into(),
        }
    }

    #[test]
    fn substitutes_every_placeholder() {
        let t = target();
        assert_eq!(
            substitute("{address}:{port}/{endpoint}", &t),
            "::1:53/ns{1}"
        );
        let none = Target { port: None, ..t };
        assert_eq!(substitute("p={port}", &none), "p=");
    }

    #[test]
    fn first_non_empty_line_cut_to_200_chars() {
        let mut out = Output::default();
        out.take(b"\n  \r\n  db down \r\nsecond\n");
        assert_eq!(out.reason("exit 1"), "exit 1: db down");
        let mut long = Output::default();
        long.take("é".repeat(300).as_bytes());
        assert_eq!(long.first_line().chars().count(), MAX_DETAIL_CHARS + 3);
        assert_eq!(Output::default().reason("exit 0"), "exit 0");
    }
}
