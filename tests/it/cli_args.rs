//! The `onomancer` command's arguments, run as a process: `--help` and `--version` answer and
//! exit 0, `onomancer worker --help` prints the subcommand's help without starting a worker, and
//! unknown flags are refused with clap's error (exit 2).

use std::process::Stdio;
use std::time::Duration;

/// Runs `onomancer` with `args`. Redis points at a closed port, so a role that wrongly started
/// would touch nothing; the time bound turns such a start into a failure instead of a hang.
async fn run(args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_onomancer"))
        .args(args)
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(20), child)
        .await
        .unwrap_or_else(|_| {
            panic!("onomancer {args:?} did not exit: it started instead of answering")
        })
        .expect("the binary runs")
}

#[tokio::test]
async fn help_and_version_answer_without_starting_and_unknown_flags_exit_2() {
    for args in [
        &["--help"][..],
        &["worker", "--help"],
        &["gateway", "--help"],
        &["up", "-h"],
    ] {
        let help = run(args).await;
        let out = String::from_utf8_lossy(&help.stdout);
        assert_eq!(help.status.code(), Some(0), "{args:?}: {help:?}");
        assert!(out.contains("Usage: onomancer"), "{args:?}: {out}");
    }
    let version = run(&["--version"]).await;
    assert_eq!(version.status.code(), Some(0), "{version:?}");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        concat!("onomancer ", env!("CARGO_PKG_VERSION"))
    );
    for bad in [
        &["--bogus"][..],
        &["worker", "--bogus"],
        &["scheduler", "extra"],
    ] {
        let refused = run(bad).await;
        let err = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{bad:?}: {refused:?}");
        assert!(err.contains("error: unexpected argument"), "{bad:?}: {err}");
    }
}
