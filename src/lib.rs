//! oslo-nautobot: mirror OpenStack Neutron network/subnet notifications into
//! Nautobot.
//!
//! decode ([`event`]) → plan ([`handlers`], pure) → apply ([`apply`], the only
//! Nautobot I/O, through [`nautobot`]). [`error`] maps failures to exit codes.
//! [`Mirror`] runs that path for one input document; the one-shot command and
//! [`replay`] are its front ends.

pub mod apply;
pub mod cli;
#[cfg(feature = "consume")]
pub mod consume;
pub mod error;
pub mod event;
pub mod handlers;
pub mod nautobot;
pub mod replay;

use serde_json::{Value, json};

use crate::apply::{Options, Outcome};
use crate::event::Notification;
use crate::handlers::{Change, Settings};
use crate::nautobot::Client;

/// Decodes one input document and plans its changes: everything short of
/// talking to Nautobot. Any input problem surfaces here, before a request.
pub fn decode_and_plan(
    input: &[u8],
    settings: &Settings,
) -> anyhow::Result<(Notification, Vec<Change>)> {
    let notification = event::decode(input)?;
    let changes = handlers::plan(&notification, settings)?;
    Ok((notification, changes))
}

/// Everything needed to apply events to one Nautobot.
pub struct Mirror {
    pub client: Client,
    pub settings: Settings,
    pub options: Options,
}

impl Mirror {
    /// Decodes, plans and applies one input document. Never fails: what went
    /// wrong is in the report.
    pub fn handle(&self, input: &[u8]) -> Report {
        match decode_and_plan(input, &self.settings) {
            Ok((notification, changes)) => self.apply(notification, &changes),
            Err(err) => Report {
                errors: vec![err],
                ..Report::default()
            },
        }
    }

    /// Applies a planned event with a fresh retry budget.
    pub fn apply(&self, notification: Notification, changes: &[Change]) -> Report {
        log::info!(
            "{} (message {})",
            notification.event_type,
            notification.message_id.as_deref().unwrap_or("-")
        );
        self.client.begin_event();
        let before = self.client.requests();
        let (outcomes, errors) = apply::apply(&self.client, changes, &self.options);
        Report {
            notification: Some(notification),
            outcomes,
            errors,
            requests: self.client.requests() - before,
        }
    }
}

/// What happened to one event.
#[derive(Debug, Default)]
pub struct Report {
    pub notification: Option<Notification>,
    pub outcomes: Vec<Outcome>,
    /// Errors in the order met; a bulk event carries on past a failed element.
    pub errors: Vec<anyhow::Error>,
    pub requests: u32,
}

impl Report {
    /// The most urgent exit code among the errors (0 when there are none).
    pub fn code(&self) -> u8 {
        self.errors
            .iter()
            .map(error::exit_code)
            .max_by_key(|&code| error::severity(code))
            .unwrap_or(error::OK)
    }

    /// The one-line JSON summary: event, requests made, and each object's fate.
    pub fn summary(&self) -> Value {
        let n = self.notification.as_ref();
        json!({
            "event_type": n.map(|n| &n.event_type),
            "message_id": n.and_then(|n| n.message_id.as_ref()),
            "requests": self.requests,
            "results": self.outcomes,
        })
    }
}
