//! What the machine can hold: commands that may need a lot of memory estimate it before
//! allocating and refuse with the estimate and an alternative, rather than being killed by the
//! kernel half-way.

/// Memory the system can still give without swapping (`MemAvailable` of `/proc/meminfo`);
/// `None` where that is not known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes in GiB, for messages.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}
