//! oslo-nautobot: mirror OpenStack Neutron network/subnet notifications into
//! Nautobot.
//!
//! decode ([`event`]) → plan ([`handlers`], pure) → apply ([`apply`], the only
//! Nautobot I/O, through [`nautobot`]). [`error`] maps failures to exit codes.

pub mod apply;
pub mod cli;
pub mod error;
pub mod event;
pub mod handlers;
pub mod nautobot;

use crate::event::Notification;
use crate::handlers::{Change, Settings};

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
