//! What went wrong, as the caller must act on it, and the one table that maps
//! it to exit codes.
//!
//! Every area (decoding, Nautobot, OpenStack, RabbitMQ) reports its failures
//! as an [`Error`] of one [`Kind`]; `anyhow` carries them up, with context,
//! and [`exit_code`] finds the kind in the chain. The table [`EXIT_CODES`] is
//! the only list of codes: `--help` is generated from it and a test holds the
//! README to it.

use std::fmt::Write as _;

/// How a caller (Argo, a shell script, an operator, the consumer) should
/// treat a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The input is not a notification this tool can read: fix the input.
    Input,
    /// A valid notification of a type this tool does not handle.
    NoHandler,
    /// Configuration or authentication: an operator has to fix the setup.
    Setup,
    /// Nautobot refused the change for good: fix the data.
    Refused,
    /// Retrying later may succeed.
    Transient,
}

impl Kind {
    pub fn code(self) -> u8 {
        match self {
            Kind::Input => INPUT,
            Kind::NoHandler => NO_HANDLER,
            Kind::Setup => SETUP,
            Kind::Refused => REFUSED,
            Kind::Transient => TRANSIENT,
        }
    }
}

pub const OK: u8 = 0;
pub const INTERNAL: u8 = 1;
pub const USAGE: u8 = 2;
pub const INPUT: u8 = 5;
pub const NO_HANDLER: u8 = 6;
pub const SETUP: u8 = 7;
pub const REFUSED: u8 = 8;
/// EX_TEMPFAIL from sysexits.h.
pub const TRANSIENT: u8 = 75;

/// One row of the exit-code table.
pub struct ExitCode {
    pub code: u8,
    pub meaning: &'static str,
    /// Whether, and when, running the same thing again can succeed.
    pub retry: &'static str,
}

/// Every exit code this tool uses, in the order `--help` and the README list
/// them.
pub const EXIT_CODES: [ExitCode; 8] = [
    ExitCode {
        code: OK,
        meaning: "applied, or nothing to do",
        retry: "",
    },
    ExitCode {
        code: INTERNAL,
        meaning: "internal error: a bug, please report it",
        retry: "no",
    },
    ExitCode {
        code: USAGE,
        meaning: "command-line usage error",
        retry: "no",
    },
    ExitCode {
        code: INPUT,
        meaning: "input invalid; the message names the field",
        retry: "no",
    },
    ExitCode {
        code: NO_HANDLER,
        meaning: "no handler for this event type (e.g. the .start events)",
        retry: "no",
    },
    ExitCode {
        code: SETUP,
        meaning: "configuration or authentication (no token, bad URL, 401/403, TLS, missing UCVNI group)",
        retry: "after fixing the setup",
    },
    ExitCode {
        code: REFUSED,
        meaning: "Nautobot refused the change for good (validation, conflict)",
        retry: "after fixing the data",
    },
    ExitCode {
        code: TRANSIENT,
        meaning: "transient: Nautobot or OpenStack down, 5xx, 429, timeouts, retries spent",
        retry: "yes",
    },
];

/// The table as `--help` shows it.
pub fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for row in &EXIT_CODES {
        let _ = writeln!(text, "  {:<3} {}", row.code, row.meaning);
    }
    text.push_str(
        "\nA run that meets several failures exits with the most urgent: 75, then 7, then 8.",
    );
    text
}

/// A failure of one [`Kind`], with a message for a person. Messages never
/// carry a secret (tokens, passwords): the areas that hold secrets redact
/// them before building an error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn input(message: impl std::fmt::Display) -> Self {
        Self::new(Kind::Input, format!("invalid input: {message}"))
    }

    pub fn setup(message: impl Into<String>) -> Self {
        Self::new(Kind::Setup, message)
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Kind::Refused, message)
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(Kind::Transient, message)
    }
}

/// The kind of the first classified error in the chain, if any.
pub fn kind(err: &anyhow::Error) -> Option<Kind> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
        .map(|e| e.kind)
}

/// Maps an error to the exit code that tells the caller what to do next.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    kind(err).map_or(INTERNAL, Kind::code)
}

/// Orders exit codes by how urgently a caller must act on them. A transient
/// failure wins: a retry re-applies the whole event (every step is
/// idempotent), so it also repairs whatever else went wrong for a passing
/// reason.
pub fn severity(code: u8) -> u8 {
    match code {
        TRANSIENT => 5,
        SETUP => 4,
        REFUSED => 3,
        INTERNAL => 2,
        OK => 0,
        _ => 1,
    }
}

/// The most urgent of some exit codes (0 when there are none).
pub fn worst(codes: impl IntoIterator<Item = u8>) -> u8 {
    codes.into_iter().max_by_key(|&c| severity(c)).unwrap_or(OK)
}

/// Prints an error for a person on stderr, on one line: the program's name,
/// the context (an event's source, say), and the error with its causes.
pub fn print(context: &str, err: &anyhow::Error) {
    let context = if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    };
    let message = format!("{err:#}").replace(['\n', '\r'], " ");
    eprintln!("oslo-nautobot: {context}{message}");
}

/// Shortens a value for a message or a log line: hostile input and long
/// server answers must not become huge lines.
pub fn clip(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_kind_to_its_code() {
        let cases: Vec<(anyhow::Error, u8)> = vec![
            (Error::input("x").into(), INPUT),
            (Error::new(Kind::NoHandler, "x").into(), NO_HANDLER),
            (Error::setup("x").into(), SETUP),
            (Error::refused("x").into(), REFUSED),
            (Error::transient("x").into(), TRANSIENT),
            (anyhow::anyhow!("other"), INTERNAL),
        ];
        for (err, code) in cases {
            assert_eq!(exit_code(&err), code, "{err}");
        }
    }

    #[test]
    fn finds_the_kind_under_context() {
        let err = anyhow::Error::from(Error::input("x")).context("reading stdin");
        assert_eq!(exit_code(&err), INPUT);
    }

    #[test]
    fn the_table_lists_every_code_once_and_every_kind() {
        let codes: Vec<u8> = EXIT_CODES.iter().map(|r| r.code).collect();
        let mut unique = codes.clone();
        unique.dedup();
        assert_eq!(codes, unique);
        for kind in [
            Kind::Input,
            Kind::NoHandler,
            Kind::Setup,
            Kind::Refused,
            Kind::Transient,
        ] {
            assert!(codes.contains(&kind.code()), "{kind:?}");
        }
        let help = exit_codes_help();
        for row in &EXIT_CODES {
            assert!(help.contains(&format!("  {:<3} {}", row.code, row.meaning)));
        }
    }

    #[test]
    fn transient_is_most_urgent() {
        assert_eq!(worst([REFUSED, TRANSIENT, SETUP]), TRANSIENT);
        assert_eq!(worst([REFUSED, SETUP, OK]), SETUP);
        assert_eq!(worst([OK, REFUSED]), REFUSED);
        assert_eq!(worst([]), OK);
    }

    #[test]
    fn clips_on_character_boundaries() {
        assert_eq!(clip("  abc ", 5), "abc");
        assert_eq!(clip("αβγδ", 2), "αβ…");
    }
}
