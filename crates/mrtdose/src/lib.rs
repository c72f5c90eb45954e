//! The mrtdose command-line tool as a library, so that tests drive [`run`] directly.
//!
//! Each subcommand lives in its own module and only wires library crates (mrt-core, mrt-io, ...)
//! to the terminal: no imaging or physics code belongs here.

pub mod cli;
pub mod client;
pub mod dosimetry;
pub mod evaluate;
pub mod inspect;
pub mod logging;
pub mod phantom;
pub mod register;
pub mod run;
pub mod segment;

use std::io::Write;

/// A value for a text table: `prec` decimals, or `-` when absent.
pub(crate) fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.prec$}"))
}

use cli::{Cli, Command};

/// Runs one command, writing its result to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect(args) => inspect::run(&args, out),
        Command::Phantom(args) => phantom::run(&args, out),
        Command::PhantomTrial(args) => phantom::run_trial(&args, out),
        Command::Dosimetry(args) => dosimetry::run(&args, out),
        Command::Register(args) => register::run(&args, out),
        Command::Segment(args) => segment::run(&args, out),
        Command::Run(args) => run::run(&args, out),
        Command::Evaluate(args) => evaluate::run(&args, out),
        Command::Submit(args) => client::submit(&args, out),
        Command::Status(args) => client::status(&args, out),
        Command::Report(args) => client::report(&args, out),
    }
}
