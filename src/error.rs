//! Error kinds and the one place that maps them to exit codes.
//!
//! Each area keeps its own error type; `anyhow` carries them up to `main`, and
//! [`exit_code`] looks at the chain to decide what the caller (Argo, a shell
//! script, an operator) should do next: retry, fix the input, or fix the setup.

use crate::event::{InputError, UnhandledEvent};
use crate::nautobot::{Failure, NautobotError};

/// Applied, or nothing to do.
pub const OK: u8 = 0;
/// Something the code did not expect; should never happen.
pub const INTERNAL: u8 = 1;
/// The input is not a notification we can read.
pub const INPUT: u8 = 5;
/// A valid notification of a type this tool does not handle.
pub const NO_HANDLER: u8 = 6;
/// Configuration or authentication: an operator has to fix the setup.
pub const CONFIG: u8 = 7;
/// Nautobot refused the change for good; retrying the same event will not help.
pub const REFUSED: u8 = 8;
/// Transient: retrying later may succeed (EX_TEMPFAIL from sysexits.h).
pub const TRANSIENT: u8 = 75;

/// The exit-code table as shown in `--help` and the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   applied, or nothing to do
  2   command-line usage error
  5   input invalid (the message names the field)
  6   no handler for this event type (e.g. the .start events)
  7   configuration or authentication problem (no token, bad URL, 401/403)
  8   Nautobot refused the change for good (validation, conflict)
  75  transient failure, worth retrying later (Nautobot down, 5xx, 429, timeouts)";

/// A setting is missing or unusable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Maps an error to the exit code that tells the caller what to do next.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<InputError>() {
            return INPUT;
        }
        if cause.is::<UnhandledEvent>() {
            return NO_HANDLER;
        }
        if cause.is::<ConfigError>() {
            return CONFIG;
        }
        if let Some(e) = cause.downcast_ref::<NautobotError>() {
            return match e.failure {
                Failure::Transient => TRANSIENT,
                Failure::Setup => CONFIG,
                Failure::Refused => REFUSED,
            };
        }
    }
    INTERNAL
}

/// Orders exit codes by how urgently a caller must act on them. A transient
/// failure wins: a retry re-applies the whole event (every step is idempotent),
/// so it also repairs whatever else went wrong for a passing reason.
pub fn severity(code: u8) -> u8 {
    match code {
        TRANSIENT => 5,
        CONFIG => 4,
        REFUSED => 3,
        INTERNAL => 2,
        OK => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_kind_to_its_code() {
        let cases: Vec<(anyhow::Error, u8)> = vec![
            (InputError::new("x").into(), INPUT),
            (UnhandledEvent("port.create.end".into()).into(), NO_HANDLER),
            (ConfigError("x".into()).into(), CONFIG),
            (
                NautobotError::new(Failure::Transient, "x").into(),
                TRANSIENT,
            ),
            (NautobotError::new(Failure::Setup, "x").into(), CONFIG),
            (NautobotError::new(Failure::Refused, "x").into(), REFUSED),
            (anyhow::anyhow!("other"), INTERNAL),
        ];
        for (err, code) in cases {
            assert_eq!(exit_code(&err), code, "{err}");
        }
    }

    #[test]
    fn finds_the_kind_under_context() {
        let err = anyhow::Error::from(InputError::new("x")).context("reading stdin");
        assert_eq!(exit_code(&err), INPUT);
    }

    #[test]
    fn transient_is_most_severe() {
        assert!(severity(TRANSIENT) > severity(CONFIG));
        assert!(severity(CONFIG) > severity(REFUSED));
        assert!(severity(REFUSED) > severity(OK));
    }
}
