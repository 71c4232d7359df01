//! The `onomancer-gateway` binary's arguments, run as a process: `--help` and `--version` answer and
//! exit 0 without starting the gateway; unknown flags and arguments are refused with clap's error
//! (exit 2).

use std::process::Stdio;
use std::time::Duration;

/// Runs the binary with `args`. Redis points at a closed port, so a binary that wrongly started
/// would touch nothing; the time bound turns such a start into a failure instead of a hang.
async fn run(args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_onomancer-gateway"))
        .args(args)
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("ONOMANCER_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(20), child)
        .await
        .unwrap_or_else(|_| {
            panic!("onomancer-gateway {args:?} did not exit: it started instead of answering")
        })
        .expect("the binary runs")
}

#[tokio::test]
async fn help_and_version_answer_without_starting_and_unknown_flags_exit_2() {
    let help = run(&["--help"]).await;
    let out = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status.code(), Some(0), "{help:?}");
    assert!(out.contains("Usage: onomancer-gateway"), "{out}");
    assert!(out.contains("Settings are environment variables"), "{out}");
    assert_eq!(run(&["-h"]).await.status.code(), Some(0));

    let version = run(&["--version"]).await;
    assert_eq!(version.status.code(), Some(0), "{version:?}");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        concat!("onomancer-gateway ", env!("CARGO_PKG_VERSION"))
    );

    for bad in [&["--bogus"][..], &["extra"][..], &["--bogus", "--help"][..]] {
        let refused = run(bad).await;
        let err = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{bad:?}: {refused:?}");
        assert!(err.contains("error: unexpected argument"), "{bad:?}: {err}");
        assert!(refused.stdout.is_empty(), "{bad:?}");
    }
}

#[tokio::test]
async fn a_tenant_file_with_a_duplicate_key_stops_the_gateway_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let repo_config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    for f in ["defaults.json", "quotas.json", "tenants/thj.json"] {
        std::fs::copy(repo_config.join(f), dir.path().join(f)).unwrap();
    }
    let tenant = dir.path().join("tenants/acme.json");
    std::fs::write(
        &tenant,
        r#"{"tenantId": "acme", "name": "Acme", "config": {"discordServerId": "42"},
            "quotas": {"transformationsPerDay": 5},
            "quotas": {"transformationsPerDay": 500}}"#,
    )
    .unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_onomancer-gateway"))
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("ONOMANCER_CONFIG_DIR", dir.path())
        .env("ONOMANCER_HTTP_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), child)
        .await
        .expect("the gateway refuses the config at start")
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{}: quotas: duplicate key", tenant.display())),
        "{err}"
    );
}
