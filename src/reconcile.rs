//! `oslo-nautobot reconcile`: Neutron is the source of truth. Every network
//! and subnet Neutron has, and every object this tool owns in Nautobot (the
//! tagged namespaces and prefixes, the UCVNIs of its group), are listed; the
//! model's comparison says what differs; what is missing or different is
//! written in bulk. Owned objects Neutron no longer has are orphans: always
//! reported, deleted only with `--prune`, never when a listing failed, and
//! never more than `--max-prune` in one run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::time::Instant;

use serde_json::{Value, json};

use crate::apply::{self, Applied, Done};
use crate::error::{self, Error, exit_code};
use crate::event::canonical_uuid;
use crate::model::{Found, Kind, Object, Step};
use crate::nautobot::Client;
use crate::nautobot::codec::filter;
use crate::openstack::OpenStack;
use crate::plan::{self, Settings};

/// What reconcile may do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Delete orphans (else they are only reported).
    pub prune: bool,
    /// Refuse to delete more than this many objects in one run.
    pub max_prune: usize,
    /// Print the difference, write nothing.
    pub dry_run: bool,
    /// Mirror every Keystone project as a tenant, not only those that own a
    /// network or subnet.
    pub all_projects: bool,
}

/// The run's counts, as the summary line shows them.
#[derive(Debug, Default)]
struct Counts {
    created: usize,
    updated: usize,
    deleted: usize,
    unchanged: usize,
    orphans: usize,
}

/// Reconciles Nautobot with Neutron; one JSON line per change and a summary
/// on `out`. Returns the exit code (the most urgent of what went wrong).
pub fn run(
    client: &Client,
    openstack: &OpenStack,
    settings: &Settings,
    apply_options: &apply::Options,
    options: &Options,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let started = Instant::now();
    let progress = Progress::new();
    let mut session = client.session();
    let mut errors: Vec<anyhow::Error> = Vec::new();
    let mut counts = Counts::default();

    // Neutron first: if it cannot be listed, nothing is touched.
    progress.say("listing Neutron's networks and subnets");
    let networks = openstack.networks(None)?;
    let subnets = openstack.subnets(None)?;
    progress.say(&format!(
        "{} networks, {} subnets; listing what oslo-nautobot owns in Nautobot",
        networks.len(),
        subnets.len()
    ));
    let mut desired = Desired::of(&networks, &subnets, settings, &mut errors);
    progress.say("listing Keystone's projects and domains");
    let projects = openstack.projects()?;
    let domains = openstack.domains()?;
    desired.tenants(
        &projects,
        &domains,
        options.all_projects,
        settings,
        &mut errors,
    );

    let tag = settings.tag.as_deref().unwrap_or_default();
    let group = settings
        .ucvni_group
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if group.is_empty() {
        return Err(Error::setup(plan::NO_GROUP).into());
    }
    let mut owned_namespaces =
        apply::owned(&mut session, Kind::Namespace, &filter("tags", &[tag]))?;
    let mut owned_prefixes = apply::owned(&mut session, Kind::Prefix, &filter("tags", &[tag]))?;
    let mut owned_ucvnis =
        apply::owned(&mut session, Kind::Ucvni, &filter("ucvni_group", &[group]))?;
    let mut owned_tenants = apply::owned(&mut session, Kind::Tenant, &filter("tags", &[tag]))?;

    // Orphans: owned, and Neutron has nothing they stand for. They go before
    // anything is written: after a missed delete Neutron may have given a new
    // network the gone one's VNI, or a new external subnet its CIDR, and
    // Nautobot refuses the new object while the orphan holds the value.
    let orphans = desired.orphans(
        &owned_namespaces,
        &owned_prefixes,
        &owned_ucvnis,
        &owned_tenants,
    );
    // Only the listings and the plan have run so far: an error here means
    // the picture is partial.
    let listing_failed = !errors.is_empty();
    let total: usize = orphans.values().map(Vec::len).sum();
    if options.prune && total > 0 && listing_failed {
        log::warn!(
            "not pruning {total} orphan(s): this run met errors, and a partial picture must not delete anything"
        );
    }
    let prune = options.prune && !listing_failed && total > 0;
    if prune && total > options.max_prune {
        errors.push(
            Error::setup(format!(
                "refusing to delete {total} orphan(s), more than --max-prune {}: a wrong cloud or \
                 an empty region must not empty Nautobot; check the orphans listed, then raise \
                 --max-prune if they are right",
                options.max_prune
            ))
            .into(),
        );
    }
    let prune = prune && total <= options.max_prune;
    let mut transient = false;
    // Prefixes, then namespaces (empty by then), then UCVNIs, then tenants
    // (nothing of ours refers to them by then; Nautobot refuses, 409, when
    // something else still does).
    for (kind, owned) in [
        (Kind::Prefix, &mut owned_prefixes),
        (Kind::Namespace, &mut owned_namespaces),
        (Kind::Ucvni, &mut owned_ucvnis),
        (Kind::Tenant, &mut owned_tenants),
    ] {
        let Some(objects) = orphans.get(&kind) else {
            continue;
        };
        // What is gone (or, in a dry run, would be) holds no VNI or CIDR
        // for the comparison below.
        let gone: HashSet<String>;
        if prune && !options.dry_run {
            progress.say(&format!("deleting {} orphan {kind}(s)", objects.len()));
            let applied = apply::remove_all(&mut session, apply_options, kind, objects);
            report(out, &applied, &mut counts)?;
            let deleted: HashSet<String> = applied
                .outcomes
                .iter()
                .filter_map(|o| o.id.clone().or(o.name.clone()))
                .collect();
            gone = objects
                .iter()
                .filter(|(id, name)| deleted.contains(id) || deleted.contains(name))
                .map(|(id, _)| id.clone())
                .collect();
            counts.orphans += objects
                .iter()
                .filter(|(id, name)| !deleted.contains(id) && !deleted.contains(name))
                .count();
            transient |= applied
                .errors
                .iter()
                .any(|e| error::kind(e) == Some(error::Kind::Transient));
            errors.extend(applied.errors);
        } else {
            for (id, name) in objects {
                let action = if prune { "delete" } else { "orphan" };
                let mut entry = json!({"action": action, "kind": kind, "name": name});
                if kind != Kind::Namespace {
                    entry["id"] = json!(id);
                }
                writeln!(out, "{entry}")?;
                if prune {
                    counts.deleted += 1;
                } else {
                    counts.orphans += 1;
                }
            }
            gone = if prune {
                objects.iter().map(|(id, _)| id.clone()).collect()
            } else {
                HashSet::new()
            };
        }
        owned.retain(|_, (id, _)| !gone.contains(id));
    }
    // Related objects first: tenants and namespaces before what refers to them.
    // After a transient failure nothing more is tried: the next run resumes.
    for (desired, owned) in [
        (&desired.tenant_list, &owned_tenants),
        (&desired.namespaces, &owned_namespaces),
        (&desired.prefixes, &owned_prefixes),
        (&desired.ucvnis, &owned_ucvnis),
    ] {
        let wanted: Vec<&Object> = desired.iter().collect();
        if wanted.is_empty() || transient {
            continue;
        }
        progress.say(&format!("comparing {} {}s", wanted.len(), wanted[0].kind()));
        if options.dry_run {
            let comparison = apply::preview(&mut session, apply_options, &wanted, owned)?;
            counts.unchanged += comparison.unchanged.len();
            for object in &comparison.creates {
                counts.created += 1;
                line(out, "create", object, None)?;
            }
            for update in &comparison.updates {
                counts.updated += 1;
                line(out, "update", update.object, Some(&update.changes))?;
            }
            errors.extend(
                comparison
                    .conflicts
                    .into_iter()
                    .map(|c| Error::refused(c).into()),
            );
        } else {
            let applied = apply::converge(&mut session, apply_options, &wanted, owned);
            report(out, &applied, &mut counts)?;
            transient |= applied
                .errors
                .iter()
                .any(|e| error::kind(e) == Some(error::Kind::Transient));
            errors.extend(applied.errors);
        }
    }

    progress.done();

    for err in &errors {
        error::print("reconcile", err);
    }
    let code = error::worst(errors.iter().map(exit_code));
    let summary = json!({
        "summary": true,
        "dry_run": options.dry_run,
        "created": counts.created,
        "updated": counts.updated,
        "deleted": counts.deleted,
        "unchanged": counts.unchanged,
        "orphans": counts.orphans,
        "requests": {"neutron": openstack.requests(), "nautobot": session.requests()},
        "seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "exit": code,
    });
    writeln!(out, "{summary}")?;
    Ok(code)
}

/// One change line: `action`, `kind`, `id`, `name`, and for an update the
/// fields that differ (as Nautobot has them and as they are written).
fn line(
    out: &mut dyn Write,
    action: &str,
    object: &Object,
    changes: Option<&Value>,
) -> std::io::Result<()> {
    let mut entry = json!({"action": action, "kind": object.kind()});
    if let Some(id) = object.id() {
        entry["id"] = json!(id);
    }
    if let Some(name) = object.name() {
        entry["name"] = json!(name);
    }
    match changes {
        Some(changes) => entry["fields"] = changes.clone(),
        None if action == "create" => {
            let mut fields = object.to_json();
            if let Value::Object(map) = &mut fields {
                for key in ["kind", "id", "name"] {
                    map.remove(key);
                }
            }
            entry["fields"] = fields;
        }
        None => {}
    }
    writeln!(out, "{entry}")
}

/// Prints what a write did and counts it.
fn report(out: &mut dyn Write, applied: &Applied, counts: &mut Counts) -> std::io::Result<()> {
    for outcome in &applied.outcomes {
        let action = match outcome.result {
            Done::Created => "create",
            Done::Updated => "update",
            Done::Deleted => "delete",
            Done::Unchanged => {
                counts.unchanged += 1;
                continue;
            }
            Done::Absent | Done::Skipped => continue,
        };
        match outcome.result {
            Done::Created => counts.created += 1,
            Done::Updated => counts.updated += 1,
            _ => counts.deleted += 1,
        }
        let mut entry = json!({"action": action, "kind": outcome.kind});
        if let Some(id) = &outcome.id {
            entry["id"] = json!(id);
        }
        if let Some(name) = &outcome.name {
            entry["name"] = json!(name);
        }
        if let Some(fields) = &outcome.fields {
            entry["fields"] = fields.clone();
        }
        writeln!(out, "{entry}")?;
    }
    Ok(())
}

/// What Nautobot should hold for Neutron's networks and subnets, and what
/// must be kept whatever happens (objects Neutron has that could not be
/// planned).
struct Desired {
    namespaces: Vec<Object>,
    prefixes: Vec<Object>,
    ucvnis: Vec<Object>,
    tenant_list: Vec<Object>,
    /// Ids (and namespace names) Neutron or Keystone has: never orphans.
    source_ids: HashSet<String>,
}

impl Desired {
    fn of(
        networks: &[Value],
        subnets: &[Value],
        settings: &Settings,
        errors: &mut Vec<anyhow::Error>,
    ) -> Self {
        let mut desired = Desired {
            namespaces: Vec::new(),
            prefixes: Vec::new(),
            ucvnis: Vec::new(),
            tenant_list: Vec::new(),
            source_ids: HashSet::new(),
        };
        let mut warnings = Vec::new();
        let mut external: HashMap<String, Value> = HashMap::new();
        for network in networks {
            let Some(id) = network["id"].as_str().and_then(canonical_uuid) else {
                continue;
            };
            desired.source_ids.insert(id.clone());
            external.insert(id.clone(), network["router:external"].clone());
            match plan::network_steps(
                &format!("neutron network {id}"),
                network,
                settings,
                &mut warnings,
            ) {
                Ok(steps) => desired.take(steps),
                Err(err) => errors.push(err.into()),
            }
        }
        for subnet in subnets {
            let Some(id) = subnet["id"].as_str().and_then(canonical_uuid) else {
                continue;
            };
            desired.source_ids.insert(id.clone());
            let mut subnet = subnet.clone();
            // Without Neutron's subnet-external-network extension the
            // network says whether the subnet is external.
            if subnet.get("router:external").is_none() {
                let network = subnet["network_id"].as_str().and_then(canonical_uuid);
                subnet["router:external"] = network
                    .and_then(|n| external.get(&n).cloned())
                    .unwrap_or(Value::Bool(false));
            }
            match plan::subnet_step(&format!("neutron subnet {id}"), &subnet, settings) {
                Ok(step) => desired.take([step]),
                Err(err) => errors.push(err.into()),
            }
        }
        for warning in warnings {
            log::warn!("{warning}");
        }
        desired
    }

    /// The tenants: of every project that owns a network or subnet (or of
    /// every project), as Keystone shows them; a project Keystone no longer
    /// has keeps a placeholder while its networks exist.
    fn tenants(
        &mut self,
        projects: &[Value],
        domains: &[Value],
        all: bool,
        settings: &Settings,
        errors: &mut Vec<anyhow::Error>,
    ) {
        let domain_names: HashMap<&str, &str> = domains
            .iter()
            .filter_map(|d| Some((d["id"].as_str()?, d["name"].as_str()?)))
            .collect();
        let mut owners: Vec<String> = self
            .prefixes
            .iter()
            .chain(&self.ucvnis)
            .filter_map(|o| o.tenant().map(str::to_owned))
            .collect();
        let keystone: HashMap<String, &Value> = projects
            .iter()
            .filter_map(|p| Some((p["id"].as_str().and_then(canonical_uuid)?, p)))
            .collect();
        if all {
            owners.extend(keystone.keys().cloned());
        }
        // Keystone has these: their tenants are never orphans, whether or not
        // this run mirrors them (project events do).
        self.source_ids.extend(keystone.keys().cloned());
        owners.sort();
        owners.dedup();
        for id in owners {
            self.source_ids.insert(id.clone());
            let step = match keystone.get(&id) {
                Some(project) => {
                    let mut project = (*project).clone();
                    let domain = project["domain_id"].as_str().unwrap_or_default();
                    if let Some(name) = domain_names.get(domain) {
                        project["domain_name"] = json!(name);
                    }
                    plan::tenant_step(&format!("keystone project {id}"), &project, settings)
                }
                None => Ok(Step::Put(Object::Tenant(
                    crate::model::Tenant::placeholder(&id, settings.tags()),
                ))),
            };
            match step {
                Ok(Step::Put(tenant)) => self.tenant_list.push(tenant),
                Ok(_) => {}
                Err(err) => errors.push(err.into()),
            }
        }
    }

    fn take(&mut self, steps: impl IntoIterator<Item = Step>) {
        for step in steps {
            if let Step::Put(object) = step {
                match object.kind() {
                    Kind::Namespace => self.namespaces.push(object),
                    Kind::Prefix => self.prefixes.push(object),
                    Kind::Ucvni => self.ucvnis.push(object),
                    _ => {}
                }
            }
        }
    }

    /// Owned objects nothing desired stands for, by kind: (Nautobot id, name).
    /// A namespace counts only when named by a UUID (a network's own).
    fn orphans(
        &self,
        namespaces: &Found,
        prefixes: &Found,
        ucvnis: &Found,
        tenants: &Found,
    ) -> BTreeMap<Kind, Vec<(String, String)>> {
        let wanted: HashSet<(Kind, String)> = self
            .namespaces
            .iter()
            .chain(&self.prefixes)
            .chain(&self.ucvnis)
            .chain(&self.tenant_list)
            .map(|o| (o.kind(), o.key().value))
            .collect();
        let mut orphans: BTreeMap<Kind, Vec<(String, String)>> = BTreeMap::new();
        for (kind, found) in [
            (Kind::Prefix, prefixes),
            (Kind::Namespace, namespaces),
            (Kind::Ucvni, ucvnis),
            (Kind::Tenant, tenants),
        ] {
            let mut list: Vec<(String, String)> = found
                .iter()
                .filter(|(key, _)| !wanted.contains(&(kind, key.value.clone())))
                .filter(|(key, _)| kind != Kind::Namespace || canonical_uuid(&key.value).is_some())
                // An object Neutron has (that could not be planned) is kept.
                .filter(|(key, _)| !self.source_ids.contains(&key.value))
                .map(|(key, (id, object))| {
                    (id.clone(), object.name().unwrap_or(&key.value).to_owned())
                })
                .collect();
            list.sort();
            if !list.is_empty() {
                orphans.insert(kind, list);
            }
        }
        orphans
    }
}

/// Progress on stderr, only when it is a terminal.
struct Progress {
    on: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            on: std::io::stderr().is_terminal(),
        }
    }

    fn say(&self, what: &str) {
        if self.on {
            eprint!("\r\x1b[2Kreconcile: {what}…");
        }
    }

    fn done(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}
