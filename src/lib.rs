//! oslo-nautobot: mirror OpenStack Neutron network/subnet notifications into
//! Nautobot.
//!
//! decode ([`event`]) → plan ([`plan`], pure: the desired objects of
//! [`model`]) → apply ([`apply`], the only code that talks to Nautobot,
//! through [`nautobot`]). [`mirror`] runs that path for one input document;
//! the one-shot command, [`replay`] and `consume` are its front ends.
//! [`error`] says what a failure means for the caller, as an exit code.

pub mod apply;
pub mod backoff;
pub mod cli;
#[cfg(feature = "consume")]
pub mod consume;
pub mod error;
pub mod event;
pub mod http;
pub mod mirror;
pub mod model;
pub mod nautobot;
pub mod openstack;
pub mod plan;
pub mod reconcile;
pub mod replay;
