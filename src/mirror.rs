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
use crate::openstack::OpenStack;
use crate::plan::{self, Family, Settings};

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
    /// With OpenStack credentials, a create or update event is a trigger:
    /// what it names is read from Neutron as it is now. None: the event is
    /// taken as it is (no credentials, or --trust-events).
    pub openstack: Option<OpenStack>,
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
    /// budget), or in a dry run keeps the plan for showing. With OpenStack
    /// credentials the plan is first made again from Neutron's current state.
    pub fn apply(&self, notification: Notification, plan: Plan) -> Report {
        log::info!(
            "{} (message {})",
            notification.event_type,
            notification.message_id.as_deref().unwrap_or("-")
        );
        let before = self.openstack.as_ref().map_or(0, OpenStack::requests);
        let current = self.current(&notification, plan);
        let openstack_requests = self.openstack.as_ref().map_or(0, OpenStack::requests) - before;
        let (plan, read_from) = match current {
            Ok(current) => current,
            Err(err) => {
                return Report {
                    notification: Some(notification),
                    errors: vec![err],
                    openstack_requests,
                    ..Report::default()
                };
            }
        };
        for warning in &plan.warnings {
            log::warn!("{}: {warning}", notification.event_type);
        }
        let Some(client) = &self.client else {
            return Report {
                notification: Some(notification),
                plan: Some(plan),
                read_from: Some(read_from),
                openstack_requests,
                ..Report::default()
            };
        };
        let mut session = client.session();
        let applied = apply::apply(&mut session, &plan, &self.options);
        log::info!("{} HTTP request(s)", session.requests());
        Report {
            notification: Some(notification),
            plan: None,
            read_from: Some(read_from),
            outcomes: applied.outcomes,
            errors: applied.errors,
            requests: session.requests(),
            openstack_requests,
        }
    }

    /// The plan to apply: with OpenStack credentials, the objects a create or
    /// update event names as Neutron holds them now (a 404 makes it their
    /// delete); otherwise the event's own.
    fn current(
        &self,
        notification: &Notification,
        plan: Plan,
    ) -> anyhow::Result<(Plan, &'static str)> {
        let (Some(openstack), Some(lookup)) = (&self.openstack, plan::lookup(notification)?) else {
            return Ok((plan, EVENT));
        };
        let found = match (lookup.family, lookup.ids.as_slice()) {
            (Family::Network, [id]) => openstack.network(id)?.into_iter().collect(),
            (Family::Network, ids) => openstack.networks(Some(ids))?,
            (Family::Subnet, [id]) => openstack.subnet(id)?.into_iter().collect(),
            (Family::Subnet, ids) => openstack.subnets(Some(ids))?,
            (Family::Project, ids) => {
                let mut found = Vec::new();
                for id in ids {
                    let Some(mut project) = openstack.project(&id.replace('-', ""))? else {
                        continue;
                    };
                    let domain_id = project["domain_id"].as_str().unwrap_or_default().to_owned();
                    if let Some(domain) = openstack.domain(&domain_id)? {
                        project["domain_name"] = domain["name"].clone();
                    }
                    found.push(project);
                }
                found
            }
        };
        let found = with_external_flags(openstack, lookup.family, found)?;
        let plan = plan::from_current(&lookup, &found, plan.first, &self.settings)?;
        let source = match lookup.family {
            Family::Project => KEYSTONE,
            Family::Network | Family::Subnet => NEUTRON,
        };
        Ok((plan, source))
    }
}

/// Where an event's objects were read from.
pub const EVENT: &str = "event";
pub const NEUTRON: &str = "neutron";
pub const KEYSTONE: &str = "keystone";

/// Subnets as Neutron listed them, each with its network's
/// `router:external` when Neutron (without the subnet-external-network
/// extension) left it out: it decides the prefix's namespace.
fn with_external_flags(
    openstack: &OpenStack,
    family: Family,
    mut found: Vec<Value>,
) -> anyhow::Result<Vec<Value>> {
    if family != Family::Subnet {
        return Ok(found);
    }
    let mut networks: Vec<String> = found
        .iter()
        .filter(|s| s.get("router:external").is_none())
        .filter_map(|s| s["network_id"].as_str().map(str::to_owned))
        .collect();
    if networks.is_empty() {
        return Ok(found);
    }
    networks.sort();
    networks.dedup();
    let external: Vec<Value> = openstack.networks(Some(&networks))?;
    for subnet in found
        .iter_mut()
        .filter(|s| s.get("router:external").is_none())
    {
        let flag = external
            .iter()
            .find(|n| n["id"] == subnet["network_id"])
            .map_or(Value::Bool(false), |n| n["router:external"].clone());
        subnet["router:external"] = flag;
    }
    Ok(found)
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
    /// Requests to Nautobot.
    pub requests: u32,
    /// Where the objects came from: the event, or Neutron's current state.
    pub read_from: Option<&'static str>,
    /// Requests to OpenStack (Keystone and Neutron) for this event.
    pub openstack_requests: u32,
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
        if let Some(read_from) = self.read_from {
            summary["read_from"] = json!(read_from);
        }
        if self.openstack_requests > 0 {
            summary["openstack_requests"] = json!(self.openstack_requests);
        }
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
