//! The `tweedie` command line: a thin layer that validates flags into library configurations
//! and reports progress; all the work is in the library.

mod cli;

fn main() {
    if let Err(err) = cli::run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
