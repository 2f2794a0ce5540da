//! Running EOS CLI commands through `FastCli`, for the one thing eAPI is not used for
//! at boot: `virtual-machine ztps restart`. EOS prints CLI errors as `% ...` lines and
//! may still exit 0, so the output is checked, not just the exit status.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// The EOS default location.
pub const DEFAULT_FASTCLI: &str = "/usr/bin/FastCli";

/// How long to wait for output after the process exited or was killed: a grandchild
/// may hold the pipes open.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Why a FastCli run failed.
#[derive(Debug, thiserror::Error)]
pub enum FastCliError {
    /// The program is not there (not on EOS, or a wrong `[boot] fastcli` path).
    #[error("FastCli not found at {}: set [boot] fastcli to the FastCli path (on EOS /usr/bin/FastCli)", path.display())]
    NotFound {
        /// The configured path.
        path: PathBuf,
    },
    /// The program could not be started.
    #[error("cannot run {}: {source}", path.display())]
    Spawn {
        /// The configured path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// It ran longer than allowed and was killed.
    #[error("{} did not finish within {after:?} and was killed (commands: {commands:?})", path.display())]
    Timeout {
        /// The configured path.
        path: PathBuf,
        /// The limit.
        after: Duration,
        /// The commands, `\n`-joined.
        commands: String,
    },
    /// It exited with a failure status.
    #[error("{} failed ({status}) running {commands:?}: {}", path.display(), output_summary(stdout, stderr))]
    Exit {
        /// The configured path.
        path: PathBuf,
        /// How it exited.
        status: ExitStatus,
        /// The commands, `\n`-joined.
        commands: String,
        /// What it printed on stdout.
        stdout: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// EOS rejected a command (`% Invalid input`, `% Incomplete command`, ...).
    #[error("EOS CLI error running {commands:?}: {}", errors.join("; "))]
    Cli {
        /// The commands, `\n`-joined.
        commands: String,
        /// The `% ...` lines, without the `% `.
        errors: Vec<String>,
        /// The whole stdout.
        output: String,
    },
}

fn output_summary(stdout: &str, stderr: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout.trim()
    } else {
        stderr.trim()
    };
    if text.is_empty() {
        "no output".to_owned()
    } else {
        text.lines().collect::<Vec<_>>().join(" / ")
    }
}

/// Runs `FastCli -p 15 -c "<commands>"` (privilege 15, commands `\n`-separated).
#[derive(Debug, Clone)]
pub struct FastCli {
    /// Path to the FastCli program.
    pub path: PathBuf,
    /// Limit for one run; the process is killed when it passes.
    pub timeout: Duration,
}

impl Default for FastCli {
    fn default() -> Self {
        FastCli {
            path: PathBuf::from(DEFAULT_FASTCLI),
            timeout: Duration::from_secs(60),
        }
    }
}

impl FastCli {
    /// Runs the commands in one CLI session and returns stdout. An error if the program
    /// is missing, times out, exits non-zero, or prints a `% ...` error line.
    pub async fn run(&self, cmds: &[&str]) -> Result<String, FastCliError> {
        let commands = cmds.join("\n");
        let mut command = Command::new(&self.path);
        command
            .args(["-p", "15", "-c", &commands])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills anything it started too.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|source| spawn_error(&self.path, source))?;
        let stdout = tokio::spawn(read_all(child.stdout.take()));
        let stderr = tokio::spawn(read_all(child.stderr.take()));
        tracing::debug!(path = %self.path.display(), ?cmds, "FastCli");

        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status.map_err(|source| spawn_error(&self.path, source))?,
            Err(_elapsed) => {
                if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
                    // SAFETY: kill(2) on the process group we created; the leader is not
                    // reaped yet, so the group id cannot have been reused.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                // Kills the leader if the group kill failed, and reaps it.
                let _ = child.kill().await;
                stdout.abort();
                stderr.abort();
                return Err(FastCliError::Timeout {
                    path: self.path.clone(),
                    after: self.timeout,
                    commands,
                });
            }
        };
        let stdout = drain(stdout).await;
        let stderr = drain(stderr).await;

        if !status.success() {
            return Err(FastCliError::Exit {
                path: self.path.clone(),
                status,
                commands,
                stdout,
                stderr,
            });
        }
        let errors = cli_errors(&stdout);
        if !errors.is_empty() {
            return Err(FastCliError::Cli {
                commands,
                errors,
                output: stdout,
            });
        }
        Ok(stdout)
    }
}

fn spawn_error(path: &Path, source: io::Error) -> FastCliError {
    if source.kind() == io::ErrorKind::NotFound {
        FastCliError::NotFound {
            path: path.to_owned(),
        }
    } else {
        FastCliError::Spawn {
            path: path.to_owned(),
            source,
        }
    }
}

async fn read_all(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut buffer = Vec::new();
    if let Some(mut pipe) = pipe {
        // A read error leaves what was read so far; the exit status tells the rest.
        let _ = pipe.read_to_end(&mut buffer).await;
    }
    buffer
}

async fn drain(reader: tokio::task::JoinHandle<Vec<u8>>) -> String {
    let abort = reader.abort_handle();
    match tokio::time::timeout(DRAIN_GRACE, reader).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(Err(_)) => String::new(),
        Err(_) => {
            abort.abort();
            String::new()
        }
    }
}

/// The `% ...` lines EOS prints for rejected commands, without the `% `.
pub fn cli_errors(output: &str) -> Vec<String> {
    output
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix('%'))
        .map(|rest| rest.trim().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_lines_are_cli_errors() {
        let output = "vm restarted\n% Invalid input (at token 1: 'foo')\n  % Incomplete command\n100% done? no\n";
        assert_eq!(
            cli_errors(output),
            ["Invalid input (at token 1: 'foo')", "Incomplete command"]
        );
        assert!(cli_errors("").is_empty());
        assert!(
            cli_errors("! Interface does not exist. The configuration will not take effect\n")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn missing_program_names_the_path() {
        let fastcli = FastCli {
            path: "/nonexistent/FastCli".into(),
            timeout: Duration::from_secs(5),
        };
        let err = fastcli.run(&["show version"]).await.unwrap_err();
        assert!(matches!(err, FastCliError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/FastCli"), "{err}");
    }
}
