//! The `tweedie` command line: a thin layer that validates flags into library configurations
//! and reports progress; all the work is in the library.

mod cli;

/// mimalloc keeps freed pages for reuse; with the system allocator every large tensor was a
/// fresh mmap whose page faults cost about a tenth of a training step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Err(err) = cli::run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
