use std::process::ExitCode;

use clap::Parser;

use airlock::cli::Cli;
use airlock::error::{EXIT_UNAVAILABLE, exit_code_for};

fn main() -> ExitCode {
    // The process that puts the terminal back if the full-screen airlock cannot.
    if let Some(ended) = airlock::tui::screen_guard::enter() {
        return ended;
    }
    std::panic::set_hook(Box::new(|info| {
        // One line for the user; details go to the log file, never a backtrace on screen.
        tracing::error!("panic: {info}");
        eprintln!("airlock: internal error: {info}. Please report this.");
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("airlock: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    match runtime.block_on(airlock::cli::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            // Errors quote Docker, files and servers: nothing in them drives the terminal.
            eprintln!(
                "airlock: {}",
                airlock::output::sanitize::for_person(&format!("{err:#}"))
            );
            exit_code_for(&err)
        }
    }
}
