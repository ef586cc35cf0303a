//! Applying a plan: with the Nautobot client, the only code that talks to
//! Nautobot.
//!
//! One object is written with the fewest requests in the common case (a
//! create event POSTs, an update event PATCHes), and every fallback (create ↔
//! update, a missing namespace or tenant, a duplicate delivery racing its
//! twin) ends in the state a clean run would leave. Many objects of one kind
//! (a bulk event, a reconcile run) are read first, compared with the model,
//! and only what is missing or different is written, in bulk requests: a
//! rerun does not pay again for what the last run did.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{self, Error, Kind as ErrorKind};
use crate::model::{
    Comparison, FirstTry, Found, Kind, Namespace, Object, Plan, Ref, Step, Tenant, Update, compare,
    merged_tags,
};
use crate::nautobot::codec::{
    self, Missing, clash, create_body, decode, detail, duplicate_key, endpoint, filter, has_error,
    id_exists, missing_related, row_id, update_body,
};
use crate::nautobot::{ListError, Method, Reply, Session};
use crate::plan::NO_GROUP;

/// Behaviour switches for applying.
#[derive(Debug, Clone)]
pub struct Options {
    /// Create a minimal tenant when a project is not in Nautobot yet.
    pub create_tenants: bool,
    /// The ownership tags: a tenant made on the way carries them, whatever
    /// object needed it (UCVNIs carry none of their own).
    pub tags: Vec<Ref>,
    /// Objects per bulk request: small enough that one request stays far
    /// inside the request timeout (Nautobot spends ~150 ms per prefix).
    pub bulk_size: usize,
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Done {
    Created,
    Updated,
    Unchanged,
    Deleted,
    Absent,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub result: Done,
    /// For an update found by comparison: each field that differed, as
    /// Nautobot had it and as it was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Value>,
}

/// What applying a plan did: each object's fate, and the errors met in order
/// (one bad element of a bulk event does not hold back the others).
#[derive(Debug, Default)]
pub struct Applied {
    pub outcomes: Vec<Outcome>,
    pub errors: Vec<anyhow::Error>,
}

/// Rows of a listing in the model's terms, by key, and as a list.
fn found(kind: Kind, rows: &[Value], names: &HashMap<String, String>) -> (Found, Vec<Object>) {
    let mut found = Found::new();
    let mut listed = Vec::new();
    for row in rows {
        if let (Some(id), Some(object)) = (row_id(row), decode(kind, row, names)) {
            listed.push(object.clone());
            found.insert(object.key(), (id, object));
        }
    }
    (found, listed)
}

/// Ids per listing request: a filter of 40 UUIDs keeps the URL under 2 KiB.
const IDS_PER_GET: usize = 40;

/// Applies every step of a plan.
pub fn apply(session: &mut Session, plan: &Plan, options: &Options) -> Applied {
    let mut run = Run {
        session,
        options,
        done: Applied::default(),
    };
    // A plan that a real run cannot carry out is refused before the first
    // request: never a half-written event.
    let no_group = plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::Put(Object::Ucvni(u)) if u.group.is_none()));
    if no_group {
        run.done.errors.push(Error::setup(NO_GROUP).into());
        return run.done;
    }
    let mut puts: BTreeMap<Kind, Vec<&Object>> = BTreeMap::new();
    for step in &plan.steps {
        if let Step::Put(object) = step {
            puts.entry(object.kind()).or_default().push(object);
        }
    }
    // Related objects first: tenants and namespaces before what refers to them.
    for kind in [Kind::Tenant, Kind::Namespace, Kind::Prefix, Kind::Ucvni] {
        let Some(objects) = puts.remove(&kind) else {
            continue;
        };
        match objects.as_slice() {
            [one] => run.attempt(|run| run.put_one(one, plan.first)),
            many => run.attempt(|run| run.put_many(kind, many)),
        }
        if run.stopped() {
            return run.done;
        }
    }
    for step in &plan.steps {
        match step {
            Step::Put(_) => {}
            Step::Skip { kind, id, reason } => {
                log::warn!("{kind} {id}: not written: {reason}");
                run.record(*kind, Some(id), None, Done::Skipped);
            }
            Step::RemoveNamespace { name, prefixes } => {
                run.attempt(|run| run.remove_namespace(name, prefixes))
            }
            Step::Remove { kind, id } => run.attempt(|run| run.remove(*kind, id)),
        }
        if run.stopped() {
            break;
        }
    }
    run.done
}

/// The desired objects of one kind, compared with what Nautobot holds and
/// written where they differ: reconcile's. `actual` holds what was listed,
/// by key; a CIDR or VNI another listed object holds is a conflict.
pub fn converge(
    session: &mut Session,
    options: &Options,
    desired: &[&Object],
    actual: &Found,
) -> Applied {
    let mut run = Run {
        session,
        options,
        done: Applied::default(),
    };
    let scope: Vec<Object> = actual.values().map(|(_, o)| o.clone()).collect();
    run.attempt(|run| run.converge(desired, actual, &scope));
    run.done
}

/// What [`converge`] would write, without writing: reconcile's dry run.
pub fn preview<'o>(
    session: &mut Session,
    options: &Options,
    desired: &[&'o Object],
    actual: &Found,
) -> Result<Comparison<'o>, Error> {
    let mut run = Run {
        session,
        options,
        done: Applied::default(),
    };
    run.resolve_refs(desired)?;
    let actual = run.redecode_all(actual);
    let scope: Vec<Object> = actual.values().map(|(_, o)| o.clone()).collect();
    Ok(compare(desired, &actual, &scope))
}

/// Every object of one kind a listing filter names (`tags=…`,
/// `ucvni_group=…`), whatever the page size; none when Nautobot says the tag
/// or group does not exist (nothing can carry it then).
pub fn owned(session: &mut Session, kind: Kind, filter: &str) -> Result<Found, Error> {
    let path = format!("{}?{filter}", endpoint(kind));
    let rows = match session.list(&path) {
        Ok(rows) => rows,
        Err(ListError::Refused(reply))
            if reply.status == 400
                && reply
                    .body
                    .to_string()
                    .contains("not one of the available choices") =>
        {
            Vec::new()
        }
        Err(err) => return Err(err.into()),
    };
    if kind == Kind::Namespace {
        for row in &rows {
            if let (Some(id), Some(name)) = (row_id(row), row["name"].as_str()) {
                session.names.insert(id, name.to_owned());
            }
        }
    }
    Ok(found(kind, &rows, &session.names).0)
}

/// Makes sure the tag (with its object types) and the UCVNI group exist:
/// `oslo-nautobot setup`, idempotent.
pub fn setup(session: &mut Session, options: &Options, tag: &str, group: &str) -> Applied {
    let mut run = Run {
        session,
        options,
        done: Applied::default(),
    };
    run.attempt(|run| run.ensure_tag(tag));
    run.attempt(|run| run.ensure_group(group));
    run.done
}

/// Removes objects of one kind by their Nautobot ids: reconcile's prune.
/// Prefixes and UCVNIs go in bulk; namespaces one by one, so that one still
/// holding a prefix someone else owns (Nautobot answers 409) is reported and
/// the others still go.
pub fn remove_all(
    session: &mut Session,
    options: &Options,
    kind: Kind,
    objects: &[(String, String)],
) -> Applied {
    let mut run = Run {
        session,
        options,
        done: Applied::default(),
    };
    if kind == Kind::Namespace {
        for (id, name) in objects {
            run.attempt(|run| {
                run.delete_namespace(id, name, |reply| {
                    Error::refused(format!(
                        "namespace {name} was not deleted: it still holds objects this tool does not own ({})",
                        reply.describe()
                    ))
                })
            });
        }
    } else {
        let ids: Vec<String> = objects.iter().map(|(id, _)| id.clone()).collect();
        run.attempt(|run| run.remove_many(kind, &ids, &HashSet::new()));
    }
    run.done
}

struct Run<'s, 'c> {
    session: &'s mut Session<'c>,
    options: &'s Options,
    done: Applied,
}

impl Run<'_, '_> {
    fn record(&mut self, kind: Kind, id: Option<&str>, name: Option<&str>, result: Done) {
        self.outcome(kind, id, name, result, None);
    }

    fn outcome(
        &mut self,
        kind: Kind,
        id: Option<&str>,
        name: Option<&str>,
        result: Done,
        fields: Option<Value>,
    ) {
        self.done.outcomes.push(Outcome {
            kind,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            result,
            fields,
        });
    }

    fn record_object(&mut self, object: &Object, result: Done, fields: Option<Value>) {
        self.outcome(object.kind(), object.id(), object.name(), result, fields);
    }

    fn attempt(&mut self, step: impl FnOnce(&mut Self) -> Result<(), Error>) {
        if let Err(err) = step(self) {
            self.done.errors.push(err.into());
        }
    }

    /// After a transient failure the rest of the event waits for the retry:
    /// Nautobot is down or overloaded, and each further request would only
    /// add to the wait. What was written so far stays written.
    fn stopped(&self) -> bool {
        self.done
            .errors
            .iter()
            .any(|e| error::kind(e) == Some(ErrorKind::Transient))
    }

    fn call(&mut self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply, Error> {
        self.session.call(method, path, body)
    }

    // --- one object ---------------------------------------------------------

    fn put_one(&mut self, object: &Object, first: FirstTry) -> Result<(), Error> {
        if let Object::Tenant(t) = object
            && t.placeholder
        {
            // Only to exist: made when missing, left as it is otherwise.
            return self.ensure_tenant(&t.id, &t.tags, false);
        }
        let (done, fields) = match object {
            Object::Namespace(namespace) => self.put_namespace(namespace, first)?,
            _ => (self.write(object, first)?, None),
        };
        self.record_object(object, done, fields);
        Ok(())
    }

    /// A namespace exists, with our tags. An update event looks first (the
    /// namespace is there, tagged, in the common case); a create event
    /// creates first.
    fn put_namespace(
        &mut self,
        namespace: &Namespace,
        first: FirstTry,
    ) -> Result<(Done, Option<Value>), Error> {
        let object = Object::Namespace(namespace.clone());
        if first == FirstTry::Update
            && !namespace.tags.is_empty()
            && let Some((id, actual)) = self.find_namespace(&namespace.name, &namespace.tags)?
        {
            return self.retag_namespace(&object, id, &actual);
        }
        let reply = self.create(&object)?;
        match reply.status {
            201 => Ok((Done::Created, None)),
            _ if has_error(&reply, "name", "already exists") || duplicate_key(&reply) => {
                if namespace.tags.is_empty() {
                    return Ok((Done::Unchanged, None));
                }
                // Looked for with our tags first: there, in the common case.
                if let Some((id, actual)) = self.find_namespace(&namespace.name, &namespace.tags)? {
                    return self.retag_namespace(&object, id, &actual);
                }
                match self.find_namespace(&namespace.name, &[])? {
                    Some((id, actual)) => self.retag_namespace(&object, id, &actual),
                    None => Err(Error::transient(format!(
                        "namespace {} vanished while it was written; retry the event",
                        namespace.name
                    ))),
                }
            }
            _ => Err(reply.unexpected()),
        }
    }

    /// POSTs an object; when Nautobot says a tag it carries does not exist
    /// yet (a new deployment), makes the tag and POSTs again.
    fn create(&mut self, object: &Object) -> Result<Reply, Error> {
        let body = create_body(object);
        let path = endpoint(object.kind());
        let reply = self.call(Method::Post, path, Some(&body))?;
        if reply.status != 400 || missing_related(&reply.body) != Some(Missing::Tags) {
            return Ok(reply);
        }
        for tag in object.tags().iter().filter_map(|t| t.name.clone()) {
            self.ensure_tag(&tag)?;
        }
        self.call(Method::Post, path, Some(&body))
    }

    fn retag_namespace(
        &mut self,
        object: &Object,
        id: String,
        actual: &Object,
    ) -> Result<(Done, Option<Value>), Error> {
        let mut actual = self.redecode(actual);
        // Tags read back by id are compared once their names are known.
        if Update::of(object, id.clone(), &actual).is_some() && !actual.tags().is_empty() {
            self.resolve_tags(object.tags())?;
            actual = self.redecode(&actual);
        }
        let Some(update) = Update::of(object, id, &actual) else {
            return Ok((Done::Unchanged, None));
        };
        let body = Value::Object(update_body(object, update.tags.as_deref()));
        let reply = self.call(
            Method::Patch,
            &detail(Kind::Namespace, &update.id),
            Some(&body),
        )?;
        match reply.status {
            200 => Ok((Done::Updated, Some(update.changes))),
            _ => Err(reply.unexpected()),
        }
    }

    /// The namespace with this name: its Nautobot id and how it reads. With
    /// `tagged`, only when it carries those tags (a filter, so that the
    /// common case needs no lookup of the tags' ids).
    fn find_namespace(
        &mut self,
        name: &str,
        tagged: &[Ref],
    ) -> Result<Option<(String, Object)>, Error> {
        let mut path = format!("{}?{}", endpoint(Kind::Namespace), filter("name", &[name]));
        let tags: Vec<&str> = tagged.iter().filter_map(|t| t.name.as_deref()).collect();
        if !tags.is_empty() {
            path.push_str(&format!("&{}", filter("tags", &tags)));
        }
        let reply = self.call(Method::Get, &path, None)?;
        let row = match (reply.status, reply.body["results"].as_array()) {
            (200, Some(rows)) => rows.first().cloned(),
            // The tag itself does not exist yet: nothing carries it.
            (400, _) if !tags.is_empty() && has_error(&reply, "tags", "") => None,
            _ => return Err(reply.unexpected()),
        };
        let Some(row) = row else { return Ok(None) };
        let id = row_id(&row).ok_or_else(|| reply.unexpected())?;
        self.session.names.insert(id.clone(), name.to_owned());
        let mut actual =
            decode(Kind::Namespace, &row, &self.session.names).ok_or_else(|| reply.unexpected())?;
        if let Object::Namespace(n) = &mut actual {
            // Filtered by these tags: it carries them.
            n.tags.extend(tagged.iter().cloned());
        }
        Ok(Some((id, actual)))
    }

    /// Makes the object with this id look like `object`: POST or PATCH first
    /// as the event suggests, then the other on "already exists" / 404. A
    /// related namespace or tenant that is missing is created, then the write
    /// is repeated. The loop is bounded so that concurrent deletes cannot
    /// keep it going forever.
    fn write(&mut self, object: &Object, first: FirstTry) -> Result<Done, Error> {
        let kind = object.kind();
        let id = object.id().unwrap_or_default().to_owned();
        let path = detail(kind, &id);
        let mut next = first;
        // A unique-together clash (namespace + prefix, group + VNI) seen on a
        // create: it may be our own object, created a moment ago by a twin
        // delivery, so a PATCH decides; only if there is no such object is
        // it a real conflict.
        let mut clashed: Option<Reply> = None;
        let mut repaired: Vec<Missing> = Vec::new();
        for _ in 0..6 {
            let reply = match next {
                FirstTry::Create => {
                    self.call(Method::Post, endpoint(kind), Some(&create_body(object)))?
                }
                FirstTry::Update => {
                    let body = Value::Object(update_body(object, None));
                    self.call(Method::Patch, &path, Some(&body))?
                }
            };
            match (next, reply.status, missing_related(&reply.body)) {
                (FirstTry::Create, 201, _) => return Ok(Done::Created),
                (FirstTry::Update, 200, _) => {
                    self.retag(object, &reply.body)?;
                    return Ok(Done::Updated);
                }
                (FirstTry::Update, 404, _) => match clashed.take() {
                    Some(clash) => return Err(self.conflict(object, &clash)),
                    None => next = FirstTry::Create,
                },
                // A duplicate delivery, or its twin racing us: the object is
                // there, so bring it up to date (a placeholder tenant: as is).
                (FirstTry::Create, _, _)
                    if (reply.status == 400 && id_exists(&reply.body)) || duplicate_key(&reply) =>
                {
                    if matches!(object, Object::Tenant(t) if t.placeholder) {
                        return Ok(Done::Unchanged);
                    }
                    next = FirstTry::Update;
                }
                (_, 400, Some(missing)) => {
                    if repaired.contains(&missing) {
                        return Err(reply.unexpected());
                    }
                    self.repair(missing, object, &reply)?;
                    repaired.push(missing);
                }
                // Nautobot checks a tenant's name before its id: "name exists"
                // may be our own tenant; a PATCH by id decides.
                (FirstTry::Create, 400, _)
                    if matches!(object, Object::Tenant(_))
                        && has_error(&reply, "name", "already exists")
                        && clashed.is_none() =>
                {
                    clashed = Some(reply);
                    next = FirstTry::Update;
                }
                (FirstTry::Create, 400, _) if clash(&reply.body) && first == FirstTry::Create => {
                    clashed = Some(reply);
                    next = FirstTry::Update;
                }
                (_, 400, _) if clash(&reply.body) => return Err(self.conflict(object, &reply)),
                _ => return Err(reply.unexpected()),
            }
        }
        Err(Error::transient(format!(
            "{kind} {id} kept changing while it was written; retry the event"
        )))
    }

    /// After a PATCH that left the tags alone: adds ours if the answer shows
    /// the object lacks them, keeping the others.
    fn retag(&mut self, object: &Object, answer: &Value) -> Result<(), Error> {
        if object.tags().is_empty() {
            return Ok(());
        }
        if answer["tags"].as_array().is_some_and(|t| !t.is_empty()) {
            self.resolve_tags(object.tags())?;
        }
        let Some(actual) = decode(object.kind(), answer, &self.session.names) else {
            return Ok(());
        };
        if !object.differences(&actual).contains(&"tags") {
            return Ok(());
        }
        let body = codec::tags_only(&merged_tags(object, &actual));
        let path = detail(object.kind(), object.id().unwrap_or_default());
        let reply = self.call(Method::Patch, &path, Some(&body))?;
        match reply.status {
            200 => Ok(()),
            _ => Err(reply.unexpected()),
        }
    }

    /// Creates the related object Nautobot said is missing.
    fn repair(&mut self, missing: Missing, object: &Object, reply: &Reply) -> Result<(), Error> {
        match (missing, object) {
            (Missing::Namespace, Object::Prefix(prefix)) => {
                // The subnet event overtook its network's event.
                let name = prefix.namespace.label().to_owned();
                let namespace = Object::Namespace(Namespace {
                    tags: namespace_tags(&name, &prefix.tags),
                    name,
                });
                self.put_one(&namespace, FirstTry::Create)
            }
            (Missing::Tenant, _) => {
                let tenant = object.tenant().unwrap_or_default().to_owned();
                let tags = self.options.tags.clone();
                self.ensure_tenant(&tenant, &tags, true)
            }
            (Missing::UcvniGroup, Object::Ucvni(u)) => {
                let group = u
                    .group
                    .as_ref()
                    .map(Ref::label)
                    .unwrap_or_default()
                    .to_owned();
                self.ensure_group(&group)
            }
            (Missing::TenantGroup, Object::Tenant(t)) => {
                let group = t
                    .group
                    .as_ref()
                    .map(Ref::label)
                    .unwrap_or_default()
                    .to_owned();
                self.ensure_named(codec::TENANT_GROUPS, Kind::TenantGroup, &group)
            }
            (Missing::Tags, _) => {
                for tag in object.tags().iter().filter_map(|t| t.name.clone()) {
                    self.ensure_tag(&tag)?;
                }
                Ok(())
            }
            _ => Err(reply.unexpected()),
        }
    }

    /// The tag exists, for every object type this tool puts it on (a tag
    /// someone made for other types gets ours added, theirs kept).
    fn ensure_tag(&mut self, name: &str) -> Result<(), Error> {
        let path = format!("{}?{}", codec::TAGS, filter("name", &[name]));
        let reply = self.call(Method::Get, &path, None)?;
        let Some(tag) = reply.body["results"]
            .get(0)
            .filter(|_| reply.status == 200)
            .cloned()
        else {
            if reply.status != 200 {
                return Err(reply.unexpected());
            }
            let body = json!({"name": name, "content_types": codec::TAGGED,
                              "description": "Objects oslo-nautobot keeps in line with OpenStack"});
            let created = self.call(Method::Post, codec::TAGS, Some(&body))?;
            let done = match created.status {
                201 => Done::Created,
                // A twin made it meanwhile: look again.
                _ if has_error(&created, "name", "already exists") || duplicate_key(&created) => {
                    return self.ensure_tag(name);
                }
                _ => return Err(created.unexpected()),
            };
            self.session.lookups.remove(&(codec::TAGS, name.to_owned()));
            self.record(Kind::Tag, None, Some(name), done);
            return Ok(());
        };
        let mut types: Vec<String> = tag["content_types"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<&str> = codec::TAGGED
            .into_iter()
            .filter(|t| !types.iter().any(|have| have == t))
            .collect();
        if missing.is_empty() {
            self.record(Kind::Tag, None, Some(name), Done::Unchanged);
            return Ok(());
        }
        types.extend(missing.iter().map(|t| t.to_string()));
        let id = row_id(&tag).unwrap_or_default();
        let reply = self.call(
            Method::Patch,
            &format!("{}{id}/", codec::TAGS),
            Some(&json!({ "content_types": types })),
        )?;
        if reply.status != 200 {
            return Err(reply.unexpected());
        }
        self.outcome(Kind::Tag, None, Some(name), Done::Updated, None);
        Ok(())
    }

    /// The UCVNI group exists (a new deployment's first network creates it).
    fn ensure_group(&mut self, name: &str) -> Result<(), Error> {
        self.ensure_named(codec::UCVNI_GROUPS, Kind::UcvniGroup, name)
    }

    /// An object known by its unique name (a UCVNI group, a tenant group)
    /// exists: created when missing.
    fn ensure_named(&mut self, list: &'static str, kind: Kind, name: &str) -> Result<(), Error> {
        let reply = self.call(Method::Post, list, Some(&json!({ "name": name })))?;
        let done = match reply.status {
            201 => Done::Created,
            _ if has_error(&reply, "name", "already exists") || duplicate_key(&reply) => {
                Done::Unchanged
            }
            _ => return Err(reply.unexpected()),
        };
        if done == Done::Created {
            log::warn!("{kind} {name:?} did not exist in Nautobot: created it");
        }
        self.session.lookups.remove(&(list, name.to_owned()));
        self.record(kind, None, Some(name), done);
        Ok(())
    }

    /// A tenant for a project that is not in Nautobot yet: named by the
    /// project id until the project itself is mirrored.
    ///
    /// `on_demand`: made because another object needs it (which
    /// --no-create-tenants forbids), not for the project's own event.
    fn ensure_tenant(&mut self, id: &str, tags: &[Ref], on_demand: bool) -> Result<(), Error> {
        if on_demand && !self.options.create_tenants {
            return Err(Error::transient(format!(
                "tenant {id} (project {}) is not in Nautobot yet and tenant creation is off; \
                 retry once the project has reached Nautobot",
                id.replace('-', "")
            )));
        }
        log::info!("tenant {id} not in Nautobot yet: creating it");
        let tenant = Object::Tenant(Tenant::placeholder(id, tags.to_vec()));
        let reply = self.create(&tenant)?;
        let done = match reply.status {
            201 => Done::Created,
            _ if has_error(&reply, "id", "already exists") || duplicate_key(&reply) => {
                Done::Unchanged
            }
            // A twin delivery may have created it between Nautobot's id and
            // name checks; only a tenant with this name and another id is a
            // conflict.
            _ if has_error(&reply, "name", "already exists") => {
                let lookup = self.call(Method::Get, &detail(Kind::Tenant, id), None)?;
                match lookup.status {
                    200 => Done::Unchanged,
                    404 => {
                        return Err(Error::refused(format!(
                            "conflict: a tenant named {} exists in Nautobot with an id other than {id} ({})",
                            id.replace('-', ""),
                            reply.describe()
                        )));
                    }
                    _ => return Err(lookup.unexpected()),
                }
            }
            _ => return Err(reply.unexpected()),
        };
        self.record(Kind::Tenant, Some(id), None, done);
        Ok(())
    }

    /// A unique-together clash with another object: a data problem for a
    /// person, not for a retry. Names both sides.
    fn conflict(&mut self, object: &Object, reply: &Reply) -> Error {
        let message = match object {
            Object::Ucvni(u) => {
                let group = u.group.as_ref().map(Ref::label).unwrap_or_default();
                let holder = self
                    .ucvni_holder(group, u.vni)
                    .unwrap_or_else(|| "another network (lookup failed)".to_owned());
                format!(
                    "conflict: segmentation id {} in UCVNI group {group:?} is already held by \
                     network {holder}; network {} was not written ({})",
                    u.vni,
                    u.id,
                    reply.describe()
                )
            }
            Object::Prefix(p) => format!(
                "conflict: prefix {} already exists in namespace {} under another id; \
                 subnet {} was not written ({})",
                p.prefix,
                p.namespace.label(),
                p.id,
                reply.describe()
            ),
            Object::Tenant(t) => format!(
                "conflict: a tenant named {:?} exists in Nautobot with an id other than {} ({})",
                t.name,
                t.id,
                reply.describe()
            ),
            other => format!(
                "conflict: {} {:?}: {}",
                other.kind(),
                other.key().value,
                reply.describe()
            ),
        };
        Error::refused(message)
    }

    fn ucvni_holder(&mut self, group: &str, vni: u32) -> Option<String> {
        let path = format!(
            "{}?{}&ucvni_id={vni}",
            endpoint(Kind::Ucvni),
            filter("ucvni_group", &[group])
        );
        let reply = self.call(Method::Get, &path, None).ok()?;
        reply.body["results"][0]["id"].as_str().map(str::to_owned)
    }

    // --- related objects' names ----------------------------------------------

    /// Looks up the id of a status, tag or UCVNI group by name (once per
    /// session) so that answers, which give only ids, can be compared.
    fn resolve(&mut self, list: &'static str, name: &str) -> Result<Option<String>, Error> {
        let key = (list, name.to_owned());
        if let Some(id) = self.session.lookups.get(&key) {
            return Ok(id.clone());
        }
        let path = format!("{list}?{}", filter("name", &[name]));
        let reply = self.call(Method::Get, &path, None)?;
        if reply.status != 200 {
            return Err(reply.unexpected());
        }
        let id = reply.body["results"][0]["id"]
            .as_str()
            .map(str::to_ascii_lowercase);
        if let Some(id) = &id {
            self.session.names.insert(id.clone(), name.to_owned());
        }
        self.session.lookups.insert(key, id.clone());
        Ok(id)
    }

    fn resolve_tags(&mut self, tags: &[Ref]) -> Result<(), Error> {
        for tag in tags.iter().filter_map(|t| t.name.as_deref()) {
            self.resolve(codec::TAGS, tag)?;
        }
        Ok(())
    }

    /// Resolves every status, tag and group the desired objects name, so
    /// that what was read can be compared with them.
    fn resolve_refs(&mut self, desired: &[&Object]) -> Result<(), Error> {
        let mut wanted: Vec<(&'static str, &str)> = Vec::new();
        for object in desired {
            let status = match object {
                Object::Prefix(p) => Some(&p.status),
                Object::Ucvni(u) => Some(&u.status),
                _ => None,
            };
            wanted.extend(
                status
                    .and_then(|s| s.name.as_deref())
                    .map(|n| (codec::STATUSES, n)),
            );
            if let Object::Ucvni(u) = object {
                let group = u.group.as_ref().and_then(|g| g.name.as_deref());
                wanted.extend(group.map(|n| (codec::UCVNI_GROUPS, n)));
            }
            if let Object::Tenant(t) = object {
                let group = t.group.as_ref().and_then(|g| g.name.as_deref());
                wanted.extend(group.map(|n| (codec::TENANT_GROUPS, n)));
            }
            wanted.extend(
                object
                    .tags()
                    .iter()
                    .filter_map(|t| t.name.as_deref())
                    .map(|n| (codec::TAGS, n)),
            );
        }
        wanted.sort_unstable();
        wanted.dedup();
        for (list, name) in wanted {
            self.resolve(list, name)?;
        }
        // The namespaces prefixes are in: the listed ones are known by now,
        // others (the global one) are looked up by name.
        let known: HashSet<&String> = self.session.names.values().collect();
        let mut unknown: Vec<String> = desired
            .iter()
            .filter_map(|o| match o {
                Object::Prefix(p) => p.namespace.name.clone(),
                _ => None,
            })
            .filter(|name| !known.contains(name))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty() {
            let names: Vec<&str> = unknown.iter().map(String::as_str).collect();
            self.read(Kind::Namespace, "name", &names)?;
        }
        Ok(())
    }

    /// Every object read, with the names of its ids filled in.
    fn redecode_all(&self, found: &Found) -> Found {
        found
            .iter()
            .map(|(key, (id, object))| (key.clone(), (id.clone(), self.redecode(object))))
            .collect()
    }

    /// Fills in, from what the session now knows, the names of the ids an
    /// object was read with.
    fn redecode(&self, object: &Object) -> Object {
        let fill = |r: &Ref| Ref {
            id: r.id.clone(),
            name: r.name.clone().or_else(|| {
                r.id.as_ref()
                    .and_then(|id| self.session.names.get(id).cloned())
            }),
        };
        let mut object = object.clone();
        let tags = match &mut object {
            Object::Namespace(n) => &mut n.tags,
            Object::Prefix(p) => {
                p.namespace = fill(&p.namespace);
                p.status = fill(&p.status);
                &mut p.tags
            }
            Object::Ucvni(u) => {
                u.group = u.group.as_ref().map(fill);
                u.status = fill(&u.status);
                &mut u.tags
            }
            Object::Tenant(t) => {
                t.group = t.group.as_ref().map(fill);
                &mut t.tags
            }
        };
        *tags = tags.iter().map(fill).collect();
        object
    }

    // --- many objects ---------------------------------------------------------

    /// Many objects of one kind (a bulk event): what exists is read first,
    /// then only what is missing or different is written.
    fn put_many(&mut self, kind: Kind, objects: &[&Object]) -> Result<(), Error> {
        let first = objects[0];
        match kind {
            Kind::Namespace => {
                let names: Vec<&str> = objects.iter().filter_map(|o| o.name()).collect();
                let actual = self.read(kind, "name", &names)?;
                self.converge(objects, &actual, &[])
            }
            Kind::Prefix => {
                let mut by_namespace: BTreeMap<String, Vec<&Object>> = BTreeMap::new();
                for object in objects {
                    if let Object::Prefix(p) = object {
                        by_namespace
                            .entry(p.namespace.label().to_owned())
                            .or_default()
                            .push(object);
                    }
                }
                for (namespace, objects) in by_namespace {
                    let (actual, scope) = self.read_prefixes(&namespace, &objects)?;
                    self.converge(&objects, &actual, &scope)?;
                    if self.stopped() {
                        break;
                    }
                }
                Ok(())
            }
            Kind::Ucvni | Kind::Tenant => {
                let (actual, scope) = match first {
                    Object::Ucvni(u) => {
                        let group = u
                            .group
                            .as_ref()
                            .map(Ref::label)
                            .unwrap_or_default()
                            .to_owned();
                        self.read_group(&group)?
                    }
                    _ => {
                        let ids: Vec<&str> = objects.iter().filter_map(|o| o.id()).collect();
                        (self.read(kind, "id", &ids)?, Vec::new())
                    }
                };
                self.converge(objects, &actual, &scope)
            }
            // Never planned: made on demand only.
            Kind::Tag | Kind::UcvniGroup | Kind::TenantGroup => Ok(()),
        }
    }

    /// Objects of one kind by a multi-valued filter (`id` or `name`), a
    /// URL-sized chunk at a time.
    fn read(&mut self, kind: Kind, key: &str, values: &[&str]) -> Result<Found, Error> {
        let mut all = Found::new();
        for chunk in values.chunks(IDS_PER_GET) {
            let path = format!("{}?{}", endpoint(kind), filter(key, chunk));
            let rows = self.session.list(&path)?;
            if kind == Kind::Namespace {
                for row in &rows {
                    if let (Some(id), Some(name)) = (row_id(row), row["name"].as_str()) {
                        self.session.names.insert(id, name.to_owned());
                    }
                }
            }
            all.extend(found(kind, &rows, &self.session.names).0);
        }
        Ok(all)
    }

    /// The prefixes of one namespace as Nautobot holds them: a per-network
    /// namespace (named by a UUID) is listed whole, which also shows a CIDR
    /// held under another id; the shared global one only for these ids. A
    /// namespace that does not exist yet is created.
    fn read_prefixes(
        &mut self,
        namespace: &str,
        objects: &[&Object],
    ) -> Result<(Found, Vec<Object>), Error> {
        let ids: Vec<&str> = objects.iter().filter_map(|o| o.id()).collect();
        if crate::event::canonical_uuid(namespace).is_none() {
            return Ok((self.read(Kind::Prefix, "id", &ids)?, Vec::new()));
        }
        let Some((namespace_id, _)) = self.find_namespace(namespace, &[])? else {
            let tags = objects
                .first()
                .map(|o| o.tags().to_vec())
                .unwrap_or_default();
            let object = Object::Namespace(Namespace {
                name: namespace.to_owned(),
                tags: namespace_tags(namespace, &tags),
            });
            self.put_one(&object, FirstTry::Create)?;
            // Prefixes with these ids may still exist elsewhere.
            return Ok((self.read(Kind::Prefix, "id", &ids)?, Vec::new()));
        };
        let rows = self.prefixes_in(&namespace_id)?;
        // A prefix of one of these subnets in another namespace (its network
        // became external, say) is not listed: creating it answers "id
        // exists", and it is read and updated then.
        Ok(found(Kind::Prefix, &rows, &self.session.names))
    }

    /// Every prefix row in a namespace (by Nautobot id); empty when the
    /// namespace went away meanwhile.
    fn prefixes_in(&mut self, namespace_id: &str) -> Result<Vec<Value>, Error> {
        let path = format!("{}?namespace={namespace_id}", endpoint(Kind::Prefix));
        match self.session.list(&path) {
            Ok(rows) => Ok(rows),
            // A twin delivery of a delete removed it, its prefixes first.
            Err(ListError::Refused(reply))
                if has_error(&reply, "namespace", "not one of the available choices") =>
            {
                Ok(Vec::new())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The UCVNIs of a group, which must exist.
    fn read_group(&mut self, group: &str) -> Result<(Found, Vec<Object>), Error> {
        if self.resolve(codec::UCVNI_GROUPS, group)?.is_none() {
            // A new deployment: the group, and so its UCVNIs, are yet to be.
            self.ensure_group(group)?;
            return Ok((Found::new(), Vec::new()));
        }
        let path = format!(
            "{}?{}",
            endpoint(Kind::Ucvni),
            filter("ucvni_group", &[group])
        );
        let rows = self.session.list(&path)?;
        Ok(found(Kind::Ucvni, &rows, &self.session.names))
    }

    /// Compares desired objects with what was read and writes the difference:
    /// creates, then updates, in bulk. `scope`, when given, is everything in
    /// the listed namespace or group: a CIDR or VNI held there by another id
    /// is a conflict found before any write.
    fn converge(
        &mut self,
        desired: &[&Object],
        actual: &Found,
        scope: &[Object],
    ) -> Result<(), Error> {
        self.resolve_refs(desired)?;
        let actual = self.redecode_all(actual);
        let comparison = compare(desired, &actual, scope);
        for object in comparison.unchanged {
            self.record_object(object, Done::Unchanged, None);
        }
        for message in comparison.conflicts {
            self.done.errors.push(Error::refused(message).into());
        }
        let (creates, updates) = (comparison.creates, comparison.updates);
        self.create_many(creates)?;
        if !self.stopped() {
            self.update_many(updates)?;
        }
        Ok(())
    }

    /// Bulk POSTs, a chunk at a time. Bulk creates are all-or-none: a chunk
    /// with one bad element writes nothing and answers one error per
    /// element, so the good ones go again, the ones that exist become
    /// updates, missing related objects are created, and the rest are
    /// reported.
    fn create_many(&mut self, objects: Vec<&Object>) -> Result<(), Error> {
        let mut pending = objects;
        let mut repaired = Repairs::new();
        for round in 0..4 {
            repaired.round = round;
            if pending.is_empty() || self.stopped() {
                return Ok(());
            }
            let kind = pending[0].kind();
            let mut again = Vec::new();
            let mut existing = Vec::new();
            for chunk in pending.chunks(self.options.bulk_size.max(1)) {
                let body = Value::Array(chunk.iter().map(|o| create_body(o)).collect());
                let reply = self.call(Method::Post, endpoint(kind), Some(&body))?;
                match (reply.status, reply.body.as_array()) {
                    (201, rows) => {
                        // The namespaces just made: their ids name them in what
                        // is read next (the prefixes in them).
                        for row in rows.into_iter().flatten() {
                            if let (Some(id), Some(name)) = (row_id(row), row["name"].as_str())
                                && kind == Kind::Namespace
                            {
                                self.session.names.insert(id, name.to_owned());
                            }
                        }
                        for object in chunk {
                            self.record_object(object, Done::Created, None);
                        }
                    }
                    (400, Some(errors)) if errors.len() == chunk.len() => {
                        for (object, errors) in chunk.iter().zip(errors) {
                            match self.triage(object, errors, &reply, &mut repaired) {
                                Triage::Again => again.push(*object),
                                Triage::Exists => existing.push(*object),
                                Triage::Failed(err) => self.done.errors.push(err.into()),
                            }
                        }
                    }
                    // A twin inserted some of them meanwhile: find out which.
                    _ if duplicate_key(&reply) => existing.extend(chunk.iter().copied()),
                    _ => return Err(chunk_error(&reply, chunk.len())),
                }
            }
            if !existing.is_empty() {
                let keys: Vec<String> = existing.iter().map(|o| o.key().value).collect();
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                let filter_key = if kind == Kind::Namespace {
                    "name"
                } else {
                    "id"
                };
                let actual = self.read(kind, filter_key, &keys)?;
                let mut updates = Vec::new();
                for object in existing {
                    match actual.get(&object.key()) {
                        // Nautobot checks a tenant's name before its id: not
                        // there by id, the name is another tenant's.
                        None if object.kind() == Kind::Tenant => {
                            let message = format!(
                                "conflict: a tenant named {:?} exists in Nautobot with an id other than {}",
                                object.name().unwrap_or_default(),
                                object.key().value
                            );
                            self.done.errors.push(Error::refused(message).into());
                        }
                        // Deleted again meanwhile: create it.
                        None => again.push(object),
                        Some((id, have)) => {
                            let have = self.redecode(have);
                            match Update::of(object, id.clone(), &have) {
                                None => self.record_object(object, Done::Unchanged, None),
                                Some(update) => updates.push(update),
                            }
                        }
                    }
                }
                self.update_many(updates)?;
            }
            pending = again;
        }
        if !pending.is_empty() {
            return Err(Error::transient(format!(
                "{} object(s) kept changing while they were written; retry",
                pending.len()
            )));
        }
        Ok(())
    }

    /// Bulk PATCHes, a chunk at a time. Nautobot leaves out of its answer the
    /// ids it no longer has: those are created instead.
    fn update_many(&mut self, updates: Vec<Update>) -> Result<(), Error> {
        let mut gone = Vec::new();
        let mut repaired = Repairs::new();
        let mut pending = updates;
        for round in 0..4 {
            repaired.round = round;
            if pending.is_empty() || self.stopped() {
                break;
            }
            let kind = pending[0].object.kind();
            let mut again = Vec::new();
            let chunk_size = self.options.bulk_size.max(1);
            let mut rest = pending.into_iter().peekable();
            while rest.peek().is_some() {
                let chunk: Vec<Update> = rest.by_ref().take(chunk_size).collect();
                let body = Value::Array(
                    chunk
                        .iter()
                        .map(|u| {
                            let mut fields = update_body(u.object, u.tags.as_deref());
                            fields.insert("id".into(), json!(u.id));
                            Value::Object(fields)
                        })
                        .collect(),
                );
                let reply = self.call(Method::Patch, endpoint(kind), Some(&body))?;
                match (reply.status, reply.body.as_array()) {
                    (200, Some(rows)) => {
                        let answered: HashSet<String> = rows.iter().filter_map(row_id).collect();
                        for update in chunk {
                            if answered.contains(&update.id.to_ascii_lowercase()) {
                                self.record_object(
                                    update.object,
                                    Done::Updated,
                                    Some(update.changes),
                                );
                            } else {
                                gone.push(update.object);
                            }
                        }
                    }
                    (400, Some(errors)) if errors.len() == chunk.len() => {
                        for (update, errors) in chunk.into_iter().zip(errors) {
                            match self.triage(update.object, errors, &reply, &mut repaired) {
                                Triage::Again => again.push(update),
                                Triage::Exists => again.push(update),
                                Triage::Failed(err) => self.done.errors.push(err.into()),
                            }
                        }
                    }
                    _ => return Err(chunk_error(&reply, chunk.len())),
                }
            }
            pending = again;
        }
        if !pending.is_empty() {
            return Err(Error::transient(format!(
                "{} object(s) kept changing while they were updated; retry",
                pending.len()
            )));
        }
        self.create_many(gone)
    }

    /// What to do with one element of a refused bulk request.
    fn triage(
        &mut self,
        object: &Object,
        errors: &Value,
        reply: &Reply,
        repaired: &mut Repairs,
    ) -> Triage {
        if errors.as_object().is_some_and(|e| e.is_empty()) {
            return Triage::Again;
        }
        if id_exists(errors) || codec::field_error(errors, "name", "already exists") {
            return Triage::Exists;
        }
        if let Some(missing) = missing_related(errors) {
            let which = match missing {
                Missing::Tenant => object.tenant().unwrap_or_default().to_owned(),
                _ => String::new(),
            };
            let round = repaired.round;
            match repaired.done.get(&(missing, which.clone())) {
                // Repaired in this round, for another element: send it again.
                Some(&when) if when == round => return Triage::Again,
                // Repaired in an earlier round, and still missing: repairing
                // again will not help.
                Some(_) => return Triage::Failed(element_error(object, errors, reply)),
                None => {}
            }
            repaired.done.insert((missing, which), round);
            return match self.repair(missing, object, reply) {
                Ok(()) => Triage::Again,
                Err(err) => Triage::Failed(err),
            };
        }
        if clash(errors) {
            let message = format!(
                "conflict: {} {} clashes with another object in Nautobot: {}",
                object.kind(),
                object.key().value,
                errors
            );
            return Triage::Failed(Error::refused(message));
        }
        Triage::Failed(element_error(object, errors, reply))
    }

    // --- removing -------------------------------------------------------------

    fn remove(&mut self, kind: Kind, id: &str) -> Result<(), Error> {
        let reply = self.call(Method::Delete, &detail(kind, id), None)?;
        let done = match reply.status {
            204 => Done::Deleted,
            404 => Done::Absent,
            _ => return Err(reply.unexpected()),
        };
        self.record(kind, Some(id), None, done);
        Ok(())
    }

    /// Removes every prefix of the network's namespace and the prefixes of
    /// the subnets the event lists (an external network's live in the global
    /// namespace), then the namespace itself.
    fn remove_namespace(&mut self, name: &str, listed: &[String]) -> Result<(), Error> {
        let namespace = self.find_namespace(name, &[])?;
        let mut present: Vec<String> = match &namespace {
            Some((id, _)) => self.prefixes_in(id)?.iter().filter_map(row_id).collect(),
            None => Vec::new(),
        };
        let elsewhere: Vec<&str> = listed
            .iter()
            .map(String::as_str)
            .filter(|id| !present.iter().any(|p| p == id))
            .collect();
        if !elsewhere.is_empty() {
            let found = self.read(Kind::Prefix, "id", &elsewhere)?;
            present.extend(found.into_keys().map(|k| k.value));
        }
        let absent: HashSet<&str> = elsewhere
            .iter()
            .copied()
            .filter(|id| !present.iter().any(|p| p == id))
            .collect();
        self.remove_many(Kind::Prefix, &present, &absent)?;
        let Some((namespace_id, _)) = namespace else {
            self.record(Kind::Namespace, None, Some(name), Done::Absent);
            return Ok(());
        };
        // A prefix arrived between listing and deleting (a subnet event
        // racing the network's delete): the next attempt removes it.
        self.delete_namespace(&namespace_id, name, |reply| {
            Error::transient(format!("{}; retry the event", reply.describe()))
        })
    }

    /// Deletes one namespace by its Nautobot id. Nautobot answers 409 while
    /// it still holds a prefix: `busy` says what that means to the caller.
    fn delete_namespace(
        &mut self,
        id: &str,
        name: &str,
        busy: impl FnOnce(&Reply) -> Error,
    ) -> Result<(), Error> {
        let reply = self.call(Method::Delete, &detail(Kind::Namespace, id), None)?;
        let done = match reply.status {
            204 => Done::Deleted,
            404 => Done::Absent,
            409 => return Err(busy(&reply)),
            _ => return Err(reply.unexpected()),
        };
        self.record(Kind::Namespace, None, Some(name), done);
        Ok(())
    }

    /// Bulk DELETEs of objects known to exist (Nautobot ignores ids already
    /// gone); `absent` are reported as such.
    fn remove_many(
        &mut self,
        kind: Kind,
        ids: &[String],
        absent: &HashSet<&str>,
    ) -> Result<(), Error> {
        for chunk in ids.chunks(self.options.bulk_size.max(1)) {
            let body = Value::Array(chunk.iter().map(|id| json!({ "id": id })).collect());
            let reply = self.call(Method::Delete, endpoint(kind), Some(&body))?;
            if reply.status != 204 {
                return Err(chunk_error(&reply, chunk.len()));
            }
            for id in chunk {
                self.record(kind, Some(id), None, Done::Deleted);
            }
        }
        for id in absent {
            self.record(kind, Some(id), None, Done::Absent);
        }
        Ok(())
    }
}

/// The related objects created while writing one batch, and in which round:
/// each is created once, whatever number of elements lack it.
struct Repairs {
    round: u32,
    done: HashMap<(Missing, String), u32>,
}

impl Repairs {
    fn new() -> Self {
        Self {
            round: 0,
            done: HashMap::new(),
        }
    }
}

enum Triage {
    /// Fine on its own (or repaired): send it again.
    Again,
    /// It exists already: compare and update it.
    Exists,
    Failed(Error),
}

/// Only per-network namespaces (named by a UUID) are this tool's own to tag:
/// the global one belongs to the deployment.
fn namespace_tags(name: &str, tags: &[Ref]) -> Vec<Ref> {
    if crate::event::canonical_uuid(name).is_some() {
        tags.to_vec()
    } else {
        Vec::new()
    }
}

fn element_error(object: &Object, errors: &Value, reply: &Reply) -> Error {
    Error::refused(format!(
        "{} {} {} refused: {} ({} {})",
        reply.method,
        object.kind(),
        object.key().value,
        errors,
        reply.path,
        reply.status
    ))
}

fn chunk_error(reply: &Reply, objects: usize) -> Error {
    let err = reply.unexpected();
    Error::new(
        err.kind,
        format!("{} (a bulk request of {objects} object(s))", err.message),
    )
}
