//! How long work reports itself. The library never prints; it is handed a [`Progress`] and the
//! binary decides whether that is a progress bar, plain log lines or nothing (DESIGN.md).

/// A sink for progress of one long task.
pub trait Progress {
    /// A task of `total` units begins.
    fn start(&self, what: &str, total: u64);
    /// `pos` units are done; `msg` is a short status (loss, PSNR, …).
    fn update(&self, pos: u64, msg: &str);
    /// A line worth keeping (validation results, checkpoints).
    fn log(&self, line: &str);
    /// The task is over.
    fn finish(&self);
}

/// Reports nothing (tests, library users who don't care).
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn update(&self, _: u64, _: &str) {}
    fn log(&self, _: &str) {}
    fn finish(&self) {}
}
