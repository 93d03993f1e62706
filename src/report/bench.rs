//! What a benchmark's record says, as text: the lines `tweedie bench` prints.

use crate::experiments::bench::{Record, ScalingRow, Timing};
use std::fmt::Write;

/// What `tweedie bench` prints: each workload's line, with the `RESULT <workload> <ms>` and
/// `FLOPS <workload> <n>` lines `bench/compare.sh` reads.
pub fn summary(record: &Record) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", record.header);
    if let Some(g) = record.gemm_gflops {
        let _ = writeln!(
            out,
            "machine: single-precision GEMM (faer, 2048², all cores) {g:.1} GFLOP/s"
        );
        let _ = writeln!(out, "RESULT gemm_gflops {g:.3}");
    }
    for t in &record.timings {
        timing(&mut out, t, record.gemm_gflops);
    }
    if !record.scaling.is_empty() {
        scaling(&mut out, &record.scaling);
    }
    out
}

/// A workload's line: time, throughput, and its effective rate against the GEMM rate.
fn timing(out: &mut String, t: &Timing, gemm: Option<f64>) {
    let mut text = format!("{:<48} {:9.2} ms", t.what, t.seconds * 1e3);
    if let Some((n, unit)) = t.throughput() {
        text += &format!("  {n:8.1} {unit}");
    }
    if let Some(rate) = t.gflops() {
        text += &format!("  {rate:7.1} GFLOP/s");
        if let Some(g) = gemm {
            text += &format!(" ({:.0}% of GEMM)", 100.0 * rate / g);
        }
    }
    let _ = writeln!(out, "{text}");
    let _ = writeln!(out, "RESULT {} {:.4}", t.name, t.seconds * 1e3);
    if let Some(flops) = t.flops {
        let _ = writeln!(out, "FLOPS {} {flops:.0}", t.name);
    }
}

fn scaling(out: &mut String, rows: &[ScalingRow]) {
    let _ = writeln!(
        out,
        "{:>6} {:>6} {:>14} {:>14}",
        "size", "batch", "train img/s", "eval img/s"
    );
    for row in rows {
        if let ScalingRow::Throughput {
            size,
            batch,
            train,
            eval,
        } = row
        {
            let _ = writeln!(out, "{size:>6} {batch:>6} {train:>14.1} {eval:>14.1}");
        }
    }
    let _ = writeln!(out, "{:>6} {:>14} {:>14}", "size", "J (VJPs) s", "eigh s");
    for row in rows {
        if let ScalingRow::Jacobian {
            size,
            vjp_seconds,
            eigh_seconds,
        } = row
        {
            let _ = writeln!(out, "{size:>6} {vjp_seconds:>14.2} {eigh_seconds:>14.2}");
        }
    }
}
