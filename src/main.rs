//! The command line: one event (the default: read, decode, plan, apply,
//! report), or many with `replay` and `consume`.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::Parser;

use oslo_nautobot::cli::{Cli, Command};
use oslo_nautobot::error::{self, exit_code};
use oslo_nautobot::event::{InputError, MAX_INPUT_BYTES};
use oslo_nautobot::{decode_and_plan, replay};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match try_main(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("oslo-nautobot: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        // Not trace: ureq would log the request bytes, token included (the
        // client caps the level at debug anyway).
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .init();
}

/// Runs the command; returns the exit code of a run that got as far as
/// applying (errors met while applying are printed here, one line each).
fn try_main(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Some(Command::Replay(args)) => return replay::run(cli, args),
        #[cfg(feature = "consume")]
        Some(Command::Consume(args)) => return oslo_nautobot::consume::run(cli, args),
        #[cfg(not(feature = "consume"))]
        Some(Command::Consume(_)) => {
            let why = "this binary was built without the consume feature (cargo build --features consume)";
            return Err(error::ConfigError(why.into()).into());
        }
        None => {}
    }
    let input = read_input(cli)?;
    // Input problems first: they need neither a token nor a server.
    let (notification, changes) = decode_and_plan(&input, &cli.settings())?;
    if cli.dry_run {
        for change in &changes {
            println!("{}", serde_json::to_string(change)?);
        }
        return Ok(error::OK);
    }
    let mirror = cli.mirror()?;
    let report = mirror.apply(notification, &changes);
    log::info!("{} HTTP request(s)", report.requests);
    for err in &report.errors {
        eprintln!("oslo-nautobot: {err:#}");
    }
    if report.errors.is_empty() {
        println!("{}", report.summary());
    }
    Ok(report.code())
}

/// Reads the one input document, refusing more than the size limit.
fn read_input(cli: &Cli) -> anyhow::Result<Vec<u8>> {
    if let Some(text) = &cli.event {
        return Ok(text.clone().into_bytes());
    }
    let limit = MAX_INPUT_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    match cli.file.as_deref() {
        Some(path) if path.as_os_str() != "-" => {
            let file = std::fs::File::open(path)
                .map_err(|e| InputError::new(format!("cannot read {}: {e}", path.display())))?;
            file.take(limit).read_to_end(&mut bytes)
        }
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(InputError::new(
                    "no event: give --file PATH, the JSON as an argument, or pipe it on stdin",
                )
                .into());
            }
            stdin.lock().take(limit).read_to_end(&mut bytes)
        }
    }
    .map_err(|e| InputError::new(format!("cannot read the input: {e}")))?;
    Ok(bytes)
}
