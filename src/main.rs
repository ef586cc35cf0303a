//! The command line, as a table of contents: parse the flags, start logging,
//! run the command, and turn its outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;

use oslo_nautobot::cli::{self, Cli};
use oslo_nautobot::error;
use oslo_nautobot::mirror::decode_and_plan;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match try_main(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            error::print("", &err);
            ExitCode::from(error::exit_code(&err))
        }
    }
}

/// Logs on stderr: warnings by default, more with -v. Never beyond debug:
/// at trace level ureq logs the bytes on the wire, the Authorization header
/// included.
fn init_logging(verbose: u8) {
    let level = ["warn", "info"]
        .get(usize::from(verbose))
        .unwrap_or(&"debug");
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(*level))
        .format_timestamp_millis()
        .init();
    log::set_max_level(log::max_level().min(log::LevelFilter::Debug));
}

/// Runs the command; returns the exit code of a run that got as far as its
/// work (errors met on the way are printed as they are met).
fn try_main(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        None => one_event(&cli),
        // replay, consume, reconcile, setup: each runs from its own flags.
        Some(command) => command.run(),
    }
}

/// The one-shot command: one event in, its summary (or, in a dry run, its
/// plan) out. Input problems come first: they need neither a token nor a
/// server.
fn one_event(cli: &Cli) -> anyhow::Result<u8> {
    let input = cli.event.read()?;
    let (notification, plan) = decode_and_plan(&input, &cli.plan.settings())?;
    let mirror = cli::mirror(&cli.nautobot, &cli.plan, &cli.openstack, cli.event.dry_run)?;
    let report = mirror.apply(notification, plan);
    report.print_errors("");
    let lines = match report.plan {
        Some(_) => report.plan_lines(),
        None => vec![report.summary()],
    };
    for line in lines {
        println!("{line}");
    }
    Ok(report.code())
}
