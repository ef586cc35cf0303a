//! One event, from input bytes to a report: decode, plan, and apply (or,
//! in a dry run, only plan). The one-shot command, `replay` and `consume`
//! are front ends of [`Mirror`]; this is the only place that knows a dry run
//! from a real one.

use serde_json::{Value, json};

use crate::apply::{self, Options, Outcome};
use crate::error::{self, exit_code};
use crate::event::{self, Notification};
use crate::model::Plan;
use crate::nautobot::Client;
use crate::plan::{self, Settings};

/// Decodes one input document and plans its changes: everything short of
/// talking to Nautobot. Any input problem surfaces here, before a request.
pub fn decode_and_plan(input: &[u8], settings: &Settings) -> anyhow::Result<(Notification, Plan)> {
    let notification = event::decode(input)?;
    let plan = plan::plan(&notification, settings)?;
    Ok((notification, plan))
}

/// Everything needed to apply events to one Nautobot.
pub struct Mirror {
    /// None for a dry run: plans are made and shown, nothing is sent.
    pub client: Option<Client>,
    pub settings: Settings,
    pub options: Options,
}

impl Mirror {
    /// Decodes, plans and applies one input document. Never fails: what went
    /// wrong is in the report.
    pub fn handle(&self, input: &[u8]) -> Report {
        match decode_and_plan(input, &self.settings) {
            Ok((notification, plan)) => self.apply(notification, plan),
            Err(err) => Report {
                errors: vec![err],
                ..Report::default()
            },
        }
    }

    /// Applies a planned event in a session of its own (a fresh retry
    /// budget), or in a dry run keeps the plan for showing.
    pub fn apply(&self, notification: Notification, plan: Plan) -> Report {
        log::info!(
            "{} (message {})",
            notification.event_type,
            notification.message_id.as_deref().unwrap_or("-")
        );
        for warning in &plan.warnings {
            log::warn!("{}: {warning}", notification.event_type);
        }
        let Some(client) = &self.client else {
            return Report {
                notification: Some(notification),
                plan: Some(plan),
                ..Report::default()
            };
        };
        let mut session = client.session();
        let applied = apply::apply(&mut session, &plan, &self.options);
        log::info!("{} HTTP request(s)", session.requests());
        Report {
            notification: Some(notification),
            plan: None,
            outcomes: applied.outcomes,
            errors: applied.errors,
            requests: session.requests(),
        }
    }
}

/// What happened to one event.
#[derive(Debug, Default)]
pub struct Report {
    pub notification: Option<Notification>,
    /// A dry run's plan.
    pub plan: Option<Plan>,
    pub outcomes: Vec<Outcome>,
    /// Errors in the order met; a bulk event carries on past a failed element.
    pub errors: Vec<anyhow::Error>,
    pub requests: u32,
}

impl Report {
    /// The most urgent exit code among the errors (0 when there are none).
    pub fn code(&self) -> u8 {
        error::worst(self.errors.iter().map(exit_code))
    }

    /// The one-line JSON summary: event, requests made, each object's fate,
    /// and, when something failed, the errors and the exit code. Printed
    /// whatever happened, so that the fate of the elements that succeeded is
    /// never lost.
    pub fn summary(&self) -> Value {
        let n = self.notification.as_ref();
        let mut summary = json!({
            "event_type": n.map(|n| &n.event_type),
            "message_id": n.and_then(|n| n.message_id.as_ref()),
            "requests": self.requests,
            "results": self.outcomes,
        });
        if let Some(plan) = &self.plan {
            summary["plan"] = plan.steps.iter().map(|s| s.to_json()).collect();
        }
        if !self.errors.is_empty() {
            summary["errors"] = self
                .errors
                .iter()
                .map(|e| json!(format!("{e:#}")))
                .collect();
            summary["exit"] = json!(self.code());
        }
        summary
    }

    /// The dry run's lines: one per step of the plan.
    pub fn plan_lines(&self) -> Vec<Value> {
        self.plan
            .iter()
            .flat_map(|p| p.steps.iter().map(|s| s.to_json()))
            .collect()
    }

    /// Each error on stderr, one line each, after `context` (the event's
    /// source, for replay).
    pub fn print_errors(&self, context: &str) {
        for err in &self.errors {
            error::print(context, err);
        }
    }
}
