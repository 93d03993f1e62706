//! Helpers of the end-to-end tests: run the binary, expect success or a clear error.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn tweedie(args: &[&str]) -> Output {
    let out = assert_cmd::Command::cargo_bin("tweedie")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "tweedie {args:?} panicked:\n{stderr}"
    );
    out
}

pub fn ok(args: &[&str]) -> String {
    let out = tweedie(args);
    assert!(
        out.status.success(),
        "tweedie {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail; returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = tweedie(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "tweedie {args:?} succeeded unexpectedly"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("error: ")),
        "no clear error line: {stderr}"
    );
    stderr
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tiny synthetic data set of disks.
pub fn disks(dir: &Path, count: usize) -> PathBuf {
    let p = dir.join("disks.npy");
    ok(&[
        "data",
        "synth",
        "disks",
        "--size",
        "16",
        "--count",
        &count.to_string(),
        "--seed",
        "1",
        "--out",
        s(&p),
    ]);
    p
}

/// Starts `tweedie args`, waits (at most two minutes) until `ready()`, calls `while_running`
/// with its pid, sends `signal` (`-KILL`, `-TERM`, through the shell's own kill: no procps
/// needed) and returns the process's stderr. The process must not have finished by itself first.
#[cfg(unix)]
pub fn signal_when(
    args: &[String],
    ready: impl Fn() -> bool,
    signal: &str,
    while_running: impl FnOnce(u32),
) -> String {
    use std::process::{Command, Stdio};
    let child = Command::new(assert_cmd::cargo::cargo_bin("tweedie"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "tweedie {args:?}: never ready for the {signal}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    while_running(child.id());
    let status = Command::new("sh")
        .args(["-c", &format!("kill {signal} {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "tweedie {args:?} finished before the {signal}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The last step `metrics.jsonl` in `run` has logged (0 before the first line).
pub fn logged_step(run: &Path) -> u64 {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .ok()
        .and_then(|t| t.lines().last().map(str::to_string))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .and_then(|v| v["step"].as_u64())
        .unwrap_or(0)
}

/// A JSON file, parsed.
pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
