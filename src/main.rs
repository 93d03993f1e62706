//! The `tweedie` command line: a thin layer that validates flags into library configurations
//! and reports progress; all the work is in the library.

mod cli;

/// mimalloc keeps freed pages for reuse; with the system allocator every large tensor was a
/// fresh mmap whose page faults cost about a tenth of a training step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The error and its causes on one line, each cause once: library errors that name a file
/// (`"{path}: {source}"`) also keep the I/O error as their source, and `{:#}` would print it
/// twice.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Output piped into a reader that stops early (`tweedie … | head`) ends the process quietly,
/// as it does any Unix tool: Rust ignores SIGPIPE, so every print after the reader left
/// would otherwise panic ("failed printing to stdout: Broken pipe").
fn quiet_broken_pipes() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    quiet_broken_pipes();
    tweedie::resources::keep_freed_memory();
    if let Err(e) = tweedie::interrupt::install() {
        eprintln!("warning: no SIGINT/SIGTERM checkpointing: {e}");
    }
    if let Err(err) = cli::run() {
        eprintln!("error: {}", one_line(&err));
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        #[derive(Debug, thiserror::Error)]
        #[error("run/config.json: {source}")]
        struct Named {
            source: std::io::Error,
        }
        let err = anyhow::Error::new(Named { source: io }).context("reading the run");
        assert_eq!(
            super::one_line(&err),
            "reading the run: run/config.json: No such file"
        );
    }
}
