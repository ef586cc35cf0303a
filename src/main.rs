//! The one-shot command: read one notification, apply it, report.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use serde_json::json;

use oslo_nautobot::cli::Cli;
use oslo_nautobot::error::{self, ConfigError, exit_code, severity};
use oslo_nautobot::event::{InputError, MAX_INPUT_BYTES};
use oslo_nautobot::handlers::Settings;
use oslo_nautobot::{apply, decode_and_plan, nautobot};

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
        2 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .init();
}

/// Runs one event; returns the exit code of a run that got as far as
/// applying (errors met while applying are printed here, one line each).
fn try_main(cli: &Cli) -> anyhow::Result<u8> {
    let input = read_input(cli)?;
    let settings = Settings {
        ucvni_group: cli.ucvni_group.clone(),
        global_namespace: cli.global_namespace.clone(),
    };
    let (notification, changes) = decode_and_plan(&input, &settings)?;
    log::info!(
        "{} (message {})",
        notification.event_type,
        notification.message_id.as_deref().unwrap_or("-")
    );
    if cli.dry_run {
        for change in &changes {
            println!("{}", serde_json::to_string(change)?);
        }
        return Ok(error::OK);
    }

    let token = token(cli)?;
    let policy = nautobot::Policy {
        connect_timeout: cli.connect_timeout,
        request_timeout: cli.timeout,
        attempts: cli.attempts,
        budget: cli.retry_budget,
        backoff: std::time::Duration::from_millis(250),
    };
    let client = nautobot::Client::new(
        &cli.nautobot_url,
        &token,
        &cli.api_version,
        cli.ca_cert.as_deref(),
        policy,
    )?;
    let options = apply::Options {
        create_tenants: !cli.no_create_tenants,
    };
    let (outcomes, errors) = apply::apply(&client, &changes, &options);
    log::info!("{} HTTP request(s)", client.requests());

    let mut code = error::OK;
    for err in &errors {
        eprintln!("oslo-nautobot: {err:#}");
        let this = exit_code(err);
        if severity(this) > severity(code) {
            code = this;
        }
    }
    if errors.is_empty() {
        let summary = json!({
            "event_type": notification.event_type,
            "message_id": notification.message_id,
            "requests": client.requests(),
            "results": outcomes,
        });
        println!("{summary}");
    }
    Ok(code)
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

/// The token: from the flag or environment, else from the token file.
fn token(cli: &Cli) -> anyhow::Result<String> {
    if let Some(token) = cli
        .nautobot_token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Ok(token.to_owned());
    }
    let path = &cli.nautobot_token_file;
    let text = std::fs::read_to_string(path)
        .map_err(|e| {
            ConfigError(format!(
                "no Nautobot token: set NAUTOBOT_TOKEN or NAUTOBOT_TOKEN_FILE ({}: {e})",
                path.display()
            ))
        })
        .context("reading the token")?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError(format!("the token file {} is empty", path.display())).into());
    }
    Ok(token.to_owned())
}
