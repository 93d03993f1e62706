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
