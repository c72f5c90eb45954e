//! `mrtdose`: the command-line tool. Thin: parse flags, set up logging, hand over to [`mrtdose::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = mrtdose::cli::Cli::parse();
    mrtdose::logging::init(&cli.log_level);
    let stdout = std::io::stdout();
    match mrtdose::run(cli, &mut stdout.lock()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
