//! `oslo-nautobot consume`: a long-running RabbitMQ consumer that applies
//! each notification with the same decoding, planning and applying as the
//! one-shot command.
//!
//! - **Two replicas, one at work.** The queue is a quorum queue (replicated
//!   by the RabbitMQ cluster) with `x-single-active-consumer`: RabbitMQ
//!   delivers to one consumer at a time, and a standby takes over when it
//!   goes away. A replica knows it is the active one once it gets a delivery.
//! - **Order.** Every event of one object goes to one lane (its network, or
//!   its project), applied one at a time in arrival order; lanes run in
//!   parallel over `--concurrency` workers.
//! - **Holds.** An event that fails for a passing reason (exit 75) or a setup
//!   problem (exit 7) stays at the head of its lane and is retried with
//!   backoff; only its lane waits. `--give-up-after` dead-letters it once it
//!   has failed that long.
//! - **Nothing lost.** A message is acknowledged only once applied, or once
//!   the broker has confirmed its copy on the dead-letter exchange. What is
//!   unacknowledged when the process dies or the connection drops goes back
//!   to the queue and is applied again (every change is idempotent).

mod metrics;
mod scheduler;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_lite::StreamExt;
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;

use crate::backoff;
use crate::error::{self, Error};
use crate::event::Notification;
use crate::mirror::{Mirror, decode_and_plan};
use crate::model::Plan;
use crate::plan;

use metrics::Metrics;
use scheduler::{Scheduler, Ticket};

/// How the queue is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    /// Replicated by the RabbitMQ cluster: survives a node going away.
    Quorum,
    /// On one node only (a single-node broker, or an existing classic queue).
    Classic,
}

/// Where and how to consume.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub vhost: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<std::path::PathBuf>,
    pub ca_cert: Option<std::path::PathBuf>,
    /// Exchanges the queue is bound to (Neutron's, Keystone's).
    pub exchanges: Vec<String>,
    pub exchange_durable: bool,
    pub queue: String,
    pub queue_type: QueueType,
    pub routing_key: String,
    pub prefetch: u16,
    pub dead_letter_exchange: Option<String>,
    pub max_backoff: Duration,
    /// Dead-letter an event still failing after this long (None: never).
    pub give_up_after: Option<Duration>,
    pub metrics_addr: String,
}

/// One delivered message, decoded and planned by the dispatcher.
struct Job {
    delivery: lapin::message::Delivery,
    /// The connection it came on: after a reconnect, the broker has taken
    /// it back and delivers it again.
    session: u64,
    event_type: String,
    plan: anyhow::Result<(Notification, Plan)>,
}

/// What the dispatcher and the workers share.
struct Shared {
    scheduler: Scheduler<Job>,
    metrics: Arc<Metrics>,
    settings: Settings,
    handle: tokio::runtime::Handle,
    /// The current connection's number, and its channel for dead letters
    /// (in confirm mode).
    session: AtomicU64,
    publisher: Mutex<Option<Channel>>,
    stopping: AtomicBool,
}

/// Consumes until SIGTERM or SIGINT, with one worker per mirror. Every
/// worker's clients are built before: a configuration problem (no token,
/// bad URL) stops the service before it takes a message.
pub fn run(settings: &Settings, mirrors: Vec<Mirror>) -> anyhow::Result<u8> {
    let uri = amqp_uri(settings)?;
    let tls = tls_config(settings)?;
    if settings.give_up_after.is_some() && settings.dead_letter_exchange.is_none() {
        return Err(Error::setup(
            "--give-up-after needs --dead-letter-exchange: an event given up on must be kept somewhere",
        )
        .into());
    }
    let plan_settings = mirrors
        .first()
        .map(|m| m.settings.clone())
        .ok_or_else(|| Error::setup("consume needs at least one worker"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let shared = Arc::new(Shared {
        scheduler: Scheduler::default(),
        metrics: Arc::new(Metrics::default()),
        settings: settings.clone(),
        handle: runtime.handle().clone(),
        session: AtomicU64::new(0),
        publisher: Mutex::new(None),
        stopping: AtomicBool::new(false),
    });
    let held = {
        let shared = shared.clone();
        Arc::new(move || shared.scheduler.held()) as metrics::HeldSource
    };
    metrics::serve(&settings.metrics_addr, shared.metrics.clone(), held)
        .with_context(|| format!("metrics endpoint on {}", settings.metrics_addr))?;

    let workers = mirrors
        .into_iter()
        .enumerate()
        .map(|(i, mirror)| {
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || Worker { mirror, shared }.run())
        })
        .collect::<Result<Vec<_>, _>>()?;

    let outcome = runtime.block_on(dispatch(&shared, &plan_settings, &uri, tls));
    // No new events are started; the ones being applied are finished and
    // acknowledged.
    shared.stopping.store(true, Ordering::SeqCst);
    shared.scheduler.stop();
    for worker in workers {
        let _ = worker.join();
    }
    let kept = outcome?;
    if let Some(kept) = &kept {
        // A round trip after the acknowledgements: the broker has them all.
        let barrier = kept
            .channel
            .basic_qos(settings.prefetch, BasicQosOptions::default());
        let _ =
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), barrier).await });
        // Leave without closing the connection. The broker then takes back
        // every message not acknowledged (those not started, and held ones)
        // before the standby becomes active, so it gets them in queue order.
        // A normal close lets the standby receive later messages before the
        // returned ones, and one network's events could swap.
        log::warn!("stopped: unstarted and held messages return to the queue, in order");
        std::process::exit(i32::from(error::OK));
    }
    Ok(error::OK)
}

/// The broker session a stop keeps open until the process leaves: dropping
/// the consumer would cancel it, and the standby would become active while
/// the messages not yet acknowledged are still here.
struct Kept {
    _connection: Connection,
    channel: Channel,
    _consumer: lapin::Consumer,
}

/// Connects, declares, consumes and hands each delivery to its lane until
/// SIGTERM/SIGINT, reconnecting with backoff whenever the broker goes away.
/// Returns the session when stopped while connected.
async fn dispatch(
    shared: &Arc<Shared>,
    settings: &plan::Settings,
    uri: &AMQPUri,
    tls: OwnedTLSConfig,
) -> anyhow::Result<Option<Kept>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    const FIRST_BACKOFF: Duration = Duration::from_millis(500);
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let args = &shared.settings;
    let metrics = &shared.metrics;
    let mut router = Router::default();
    let mut failures = 0;
    loop {
        let opened = open(uri, tls.clone(), args).await;
        let (connection, channel, publisher, mut consumer) = match opened {
            Ok(session) => session,
            Err(err) if error::kind(&err) == Some(error::Kind::Setup) => return Err(err),
            Err(err) => {
                metrics.set_connected(false);
                failures += 1;
                let wait = backoff::delay(FIRST_BACKOFF, failures, MAX_BACKOFF);
                log::warn!(
                    "RabbitMQ at {}: {err:#}; reconnecting in {wait:.1?}",
                    display(uri)
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = terminate.recv() => return Ok(None),
                    _ = interrupt.recv() => return Ok(None),
                }
            }
        };
        let session = shared.session.fetch_add(1, Ordering::SeqCst) + 1;
        *lock(&shared.publisher) = Some(publisher);
        metrics.set_connected(true);
        let connected_at = Instant::now();
        log::warn!(
            "consuming {} on {} (standing by until the queue delivers to this replica)",
            args.queue,
            display(uri)
        );
        let mut lag = tokio::time::interval(Duration::from_secs(5));
        let stopped = loop {
            tokio::select! {
                delivery = consumer.next() => match delivery {
                    Some(Ok(delivery)) => {
                        metrics.set_active();
                        metrics.in_flight(1);
                        let plan = decode_and_plan(&delivery.data, settings);
                        let (event_type, key) = router.lane(&delivery.data, &plan, delivery.delivery_tag);
                        let job = Job { delivery, session, event_type, plan };
                        shared.scheduler.push(&key, job, session);
                    }
                    Some(Err(err)) => { log::warn!("consumer: {err}"); break false; }
                    None => { log::warn!("consumer cancelled by the broker"); break false; }
                },
                _ = lag.tick() => {
                    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
                    if let Ok(q) = channel.queue_declare(args.queue.as_str().into(), passive, FieldTable::default()).await {
                        metrics.set_queue_depth(q.message_count());
                    }
                }
                _ = terminate.recv() => break true,
                _ = interrupt.recv() => break true,
            }
        };
        if stopped {
            return Ok(Some(Kept {
                _connection: connection,
                channel,
                _consumer: consumer,
            }));
        }
        drop(connection);
        metrics.set_connected(false);
        let forgotten = shared.scheduler.forget_session(session);
        metrics.in_flight(-(forgotten as i64));
        // A session that ends at once (a broker refusing something on every
        // connection) must not turn into a tight reconnect loop.
        failures = if connected_at.elapsed() > MAX_BACKOFF {
            1
        } else {
            failures + 1
        };
        let wait = backoff::delay(FIRST_BACKOFF, failures, MAX_BACKOFF);
        log::warn!(
            "lost RabbitMQ; unacknowledged messages return to the queue; reconnecting in {wait:.1?}"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = terminate.recv() => return Ok(None),
            _ = interrupt.recv() => return Ok(None),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lane of an event: every event of one object goes to the same one.
/// Subnet events go with their network (a network's delete takes its
/// subnets' prefixes with it, so it must not overtake their creates); a
/// subnet delete that names only the subnet follows the network its earlier
/// events named.
#[derive(Default)]
struct Router {
    subnet_networks: HashMap<String, String>,
}

/// Subnets remembered for routing their later deletes; when full, the
/// memory starts again (an event of a forgotten subnet is no longer in
/// flight here, so its lane does not matter).
const REMEMBERED_SUBNETS: usize = 200_000;

impl Router {
    /// The event type (for the metrics and the log) and the lane of one
    /// delivered message. What needs no order (another event type, a body
    /// that fails to plan) gets a lane of its own: one such message held
    /// (its dead letter not confirmed) must not hold back the others.
    fn lane(
        &mut self,
        data: &[u8],
        plan: &anyhow::Result<(Notification, Plan)>,
        tag: u64,
    ) -> (String, String) {
        let (event_type, key) = match plan {
            Ok((n, _)) => (n.event_type.clone(), self.key(n)),
            // A valid event type with a bad payload is still that type.
            Err(_) => (
                // Shortened, never trimmed: "x.end\n" is not "x.end".
                crate::event::decode(data).map_or_else(
                    |_| "-".to_owned(),
                    |n| n.event_type.chars().take(128).collect(),
                ),
                "other".to_owned(),
            ),
        };
        match key.as_str() {
            "other" => (event_type, format!("unordered:{tag}")),
            _ => (event_type, key),
        }
    }

    fn key(&mut self, notification: &Notification) -> String {
        let payload = &notification.payload;
        let subnets = |p: &Value| -> Vec<String> {
            let mut ids: Vec<String> = [&p["subnet"]["id"], &p["subnet_id"]]
                .into_iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect();
            if let Some(many) = p["subnets"].as_array() {
                ids.extend(
                    many.iter()
                        .filter_map(|s| s["id"].as_str())
                        .map(str::to_ascii_lowercase),
                );
            }
            ids
        };
        if let Some(network) = plan::network_of(notification) {
            if self.subnet_networks.len() > REMEMBERED_SUBNETS {
                self.subnet_networks.clear();
            }
            for subnet in subnets(payload) {
                self.subnet_networks.insert(subnet, network.clone());
            }
            return format!("network:{network}");
        }
        if let Some(subnet) = subnets(payload).into_iter().next() {
            return match self.subnet_networks.get(&subnet) {
                Some(network) => format!("network:{network}"),
                None => format!("subnet:{subnet}"),
            };
        }
        if let Some(project) = plan::project_of(notification) {
            return format!("project:{project}");
        }
        "other".to_owned()
    }
}

/// Declares the exchanges, the queue and its bindings, a publishing channel
/// in confirm mode for dead letters, then starts consuming with manual
/// acknowledgements.
async fn open(
    uri: &AMQPUri,
    tls: OwnedTLSConfig,
    args: &Settings,
) -> anyhow::Result<(Connection, Channel, Channel, lapin::Consumer)> {
    let runtime = lapin::runtime::default_runtime()?;
    let connection = Connection::connect_uri_with_config(
        uri.clone(),
        ConnectionProperties::default(),
        tls,
        runtime,
    )
    .await?;
    let channel = connection.create_channel().await?;
    let durable = ExchangeDeclareOptions {
        durable: args.exchange_durable,
        ..ExchangeDeclareOptions::default()
    };
    for exchange in &args.exchanges {
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .with_context(|| {
                format!("declaring the exchange {exchange} (its durability must match the publisher's amqp_durable_queues)")
            })?;
    }
    let declared = channel
        .queue_declare(
            args.queue.as_str().into(),
            QueueDeclareOptions::durable(),
            queue_arguments(args.queue_type),
        )
        .await;
    if let Err(err) = declared {
        let text = err.to_string();
        if text.contains("PRECONDITION_FAILED") || text.contains("inequivalent") {
            return Err(Error::setup(format!(
                "the queue {:?} exists with other arguments ({text}). This consumer declares it \
                 durable, {} with x-single-active-consumer. To migrate: stop every consumer of \
                 it, let it drain (or move its messages), delete it (rabbitmqctl delete_queue \
                 {:?} -p <vhost>), and start again; or choose another --queue, or --queue-type \
                 to match",
                args.queue,
                match args.queue_type {
                    QueueType::Quorum => "a quorum queue",
                    QueueType::Classic => "a classic queue",
                },
                args.queue
            ))
            .into());
        }
        return Err(err.into());
    }
    for exchange in &args.exchanges {
        channel
            .queue_bind(
                args.queue.as_str().into(),
                exchange.as_str().into(),
                args.routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let publisher = connection.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    if let Some(dead_letter) = &args.dead_letter_exchange {
        // Publishing to a missing exchange closes the channel: refuse to
        // start instead.
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        let exists = publisher
            .exchange_declare(
                dead_letter.as_str().into(),
                ExchangeKind::Topic,
                passive,
                FieldTable::default(),
            )
            .await;
        if let Err(err) = exists {
            return Err(
                Error::setup(format!("dead-letter exchange {dead_letter:?}: {err}")).into(),
            );
        }
    }
    channel
        .basic_qos(args.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            args.queue.as_str().into(),
            "oslo-nautobot".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel, publisher, consumer))
}

/// A queue on which one consumer at a time receives: the standby waits.
fn queue_arguments(queue_type: QueueType) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    if queue_type == QueueType::Quorum {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    arguments
}

/// Whether a message that failed with this exit code stays at the head of
/// its lane (retried, holding back its lane only) rather than being let go:
/// transient trouble, and setup problems an operator will fix. Decided by
/// the code alone, wherever it was met.
fn holds(code: u8) -> bool {
    code == error::TRANSIENT || code == error::SETUP
}

struct Worker {
    mirror: Mirror,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(self) {
        while let Some(ticket) = self.shared.scheduler.next() {
            self.process(ticket);
        }
    }

    fn process(&self, ticket: Ticket<Job>) {
        let shared = &self.shared;
        let job = &ticket.job;
        if job.session != shared.session.load(Ordering::SeqCst) {
            // Delivered on a connection that is gone: the broker has it back.
            shared.scheduler.done(&ticket.key);
            shared.metrics.in_flight(-1);
            return;
        }
        let context = format!("{} (message {})", job.event_type, job.delivery.delivery_tag);
        let code = match &job.plan {
            Err(err) => {
                let code = error::exit_code(err);
                // The queue carries every notification (ports, routers, …):
                // most have nothing to do with us.
                if code != error::NO_HANDLER {
                    error::print(&context, err);
                }
                code
            }
            Ok((notification, plan)) => {
                let report = self.mirror.apply(notification.clone(), plan.clone());
                report.print_errors(&context);
                if report.code() == error::OK {
                    log::info!("{}", report.summary());
                }
                report.code()
            }
        };
        let given_up = ticket
            .failing_since
            .zip(shared.settings.give_up_after)
            .is_some_and(|(since, limit)| since.elapsed() >= limit);
        if holds(code) && !given_up {
            self.hold(ticket, &context);
            return;
        }
        if code != error::OK && code != error::NO_HANDLER {
            if given_up {
                log::error!("{context}: still failing after --give-up-after: dead-lettering it");
            }
            if let Err(why) = self.dead_letter(&job.delivery) {
                log::error!(
                    "{context}: dead-lettering failed ({why}); keeping it and trying again"
                );
                self.hold(ticket, &context);
                return;
            }
        }
        shared
            .metrics
            .event(&job.event_type, code, ticket.received.elapsed());
        if let Err(err) = shared
            .handle
            .block_on(job.delivery.acker.ack(BasicAckOptions::default()))
        {
            // The channel is gone: the broker has the message back and will
            // deliver it again; applying it twice is harmless.
            log::warn!("{context}: acknowledging failed: {err}");
        }
        shared.metrics.in_flight(-1);
        shared.scheduler.done(&ticket.key);
    }

    /// Keeps the event at the head of its lane, to be tried again after a
    /// backoff; only its lane waits.
    fn hold(&self, ticket: Ticket<Job>, context: &str) {
        let shared = &self.shared;
        shared.metrics.retry();
        let wait = backoff::delay(
            Duration::from_secs(1),
            ticket.attempts + 1,
            shared.settings.max_backoff,
        );
        log::warn!("{context}: held, its lane retries in {wait:.1?}");
        let session = ticket.job.session;
        shared.scheduler.hold(ticket, session, wait);
    }

    /// Publishes a copy on the dead-letter exchange, mandatory and confirmed:
    /// Ok only once the broker has routed and taken it. Without a dead-letter
    /// exchange there is nothing to do (the error was logged).
    fn dead_letter(&self, delivery: &lapin::message::Delivery) -> Result<(), String> {
        let shared = &self.shared;
        let Some(exchange) = &shared.settings.dead_letter_exchange else {
            return Ok(());
        };
        let publisher = lock(&shared.publisher).clone().ok_or("not connected")?;
        let confirmation = shared.handle.block_on(async {
            let confirm = publisher
                .basic_publish(
                    exchange.as_str().into(),
                    delivery.routing_key.clone(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &delivery.data,
                    delivery.properties.clone(),
                )
                .await?;
            confirm.await
        });
        match confirmation {
            Ok(Confirmation::Ack(None)) => {
                shared.metrics.dead_lettered();
                Ok(())
            }
            Ok(Confirmation::Ack(Some(_))) => Err(format!(
                "the dead-letter exchange {exchange:?} routes it to no queue"
            )),
            Ok(Confirmation::Nack(_)) => Err("the broker refused it".into()),
            Ok(Confirmation::NotRequested) => Err("no publisher confirms".into()),
            Err(err) => Err(err.to_string()),
        }
    }
}

fn amqp_uri(args: &Settings) -> Result<AMQPUri, Error> {
    let mut uri: AMQPUri = args
        .url
        .parse()
        .map_err(|e| Error::setup(format!("AMQP URL: {e}")))?;
    if let Some(user) = &args.username {
        uri.authority.userinfo.username = user.clone();
    }
    if let Some(path) = &args.password_file {
        let password = std::fs::read_to_string(path)
            .map_err(|e| Error::setup(format!("AMQP password file {}: {e}", path.display())))?;
        uri.authority.userinfo.password = password.trim().to_owned();
    } else if let Some(password) = &args.password {
        uri.authority.userinfo.password = password.clone();
    }
    if let Some(vhost) = &args.vhost {
        uri.vhost = vhost.clone();
    }
    Ok(uri)
}

fn tls_config(args: &Settings) -> Result<OwnedTLSConfig, Error> {
    let cert_chain = match &args.ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Error::setup(format!("AMQP CA bundle {}: {e}", path.display())))?,
        ),
        None => None,
    };
    Ok(OwnedTLSConfig {
        identity: None,
        cert_chain,
    })
}

/// The broker address for logs: never the credentials.
fn display(uri: &AMQPUri) -> String {
    format!(
        "{}:{}/{}",
        uri.authority.host, uri.authority.port, uri.vhost
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(event_type: &str, payload: Value) -> Notification {
        Notification {
            event_type: event_type.into(),
            message_id: None,
            payload,
        }
    }

    #[test]
    fn every_event_of_one_object_takes_one_lane() {
        let net = "5b0e4c3e-7f36-4a0c-8a51-0c8f2b7d9a11";
        let sub = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a";
        let mut router = Router::default();
        let lane = format!("network:{net}");
        assert_eq!(
            router.key(&event(
                "network.create.end",
                json!({"network": {"id": net}})
            )),
            lane
        );
        assert_eq!(
            router.key(&event(
                "subnet.create.end",
                json!({"subnet": {"id": sub, "network_id": net}})
            )),
            lane
        );
        // Before: a delete naming only the subnet went round-robin and could
        // overtake its own create.
        assert_eq!(
            router.key(&event("subnet.delete.end", json!({"subnet_id": sub}))),
            lane
        );
        let other = "1a2b3c4d-5e6f-4a0b-8c1d-2e3f4a5b6c7d";
        assert_eq!(
            router.key(&event("subnet.delete.end", json!({"subnet_id": other}))),
            format!("subnet:{other}")
        );
        assert_eq!(router.key(&event("port.create.end", json!({}))), "other");
    }

    #[test]
    fn what_needs_no_order_gets_a_lane_of_its_own_and_keeps_its_type() {
        let settings = plan::Settings {
            ucvni_group: None,
            global_namespace: "Global".into(),
            tag: None,
        };
        let mut router = Router::default();
        let mut lane = |data: &[u8], tag| {
            let plan = decode_and_plan(data, &settings);
            router.lane(data, &plan, tag)
        };
        // Before: all of these shared one lane "other", where one held
        // message stopped every other one.
        assert_eq!(lane(b"not JSON", 1), ("-".into(), "unordered:1".into()));
        assert_eq!(
            lane(br#"{"event_type": "port.create.end", "payload": {}}"#, 2),
            ("port.create.end".into(), "unordered:2".into())
        );
        // A hostile type that only looks like a handled one stays itself.
        assert_eq!(
            lane(
                br#"{"event_type": "network.create.end\n", "payload": {}}"#,
                4
            )
            .0,
            "network.create.end\n"
        );
        // Before: a handled type with a bad payload was counted as "-".
        assert_eq!(
            lane(br#"{"event_type": "network.create.end", "payload": {"network": {"name": "no id"}}}"#, 3),
            ("network.create.end".into(), "unordered:3".into())
        );
    }

    #[test]
    fn the_queue_is_single_active_consumer_quorum_by_default() {
        let quorum = queue_arguments(QueueType::Quorum);
        assert_eq!(
            quorum.inner().get("x-single-active-consumer"),
            Some(&AMQPValue::Boolean(true))
        );
        assert_eq!(
            quorum.inner().get("x-queue-type"),
            Some(&AMQPValue::LongString("quorum".into()))
        );
        assert!(
            !queue_arguments(QueueType::Classic)
                .inner()
                .contains_key("x-queue-type")
        );
    }

    #[test]
    fn holds_are_decided_by_exit_code_alone() {
        assert!(holds(error::TRANSIENT) && holds(error::SETUP));
        assert!(!holds(error::INPUT) && !holds(error::REFUSED) && !holds(error::NO_HANDLER));
    }
}
