//! `oslo-nautobot consume`: a long-running RabbitMQ consumer that applies
//! each notification with the same decoding and handlers as the one-shot
//! command, keeping one connection to RabbitMQ and one per worker to
//! Nautobot.
//!
//! Order: messages are spread over `--concurrency` workers by network, so
//! two events of one network never run at once and run in arrival order.
//! Nothing is lost: a message is acknowledged only once it is applied or
//! found permanently bad (then logged and, if configured, dead-lettered);
//! a transient failure keeps the message in its worker, retried with
//! backoff, which holds back later events of the same network instead of
//! letting them overtake it. Unacknowledged messages go back to the queue
//! when the connection drops, and are applied again (every change is
//! idempotent).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::backoff;
use crate::error::{self, Error};
use crate::event::Notification;
use crate::mirror::{Mirror, decode_and_plan};
use crate::model::Plan;
use crate::plan;

mod metrics;
use metrics::Metrics;

/// One delivered message, decoded and planned by the dispatcher.
struct Job {
    delivery: lapin::message::Delivery,
    channel: Channel,
    /// "-" when the message is not a notification at all.
    event_type: String,
    plan: anyhow::Result<(Notification, Plan)>,
    received: Instant,
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
    pub exchange: String,
    pub exchange_durable: bool,
    pub queue: String,
    pub routing_key: String,
    pub prefetch: u16,
    pub dead_letter_exchange: Option<String>,
    pub max_backoff: Duration,
    pub metrics_addr: String,
}

/// Consumes until SIGTERM or SIGINT, with one worker per mirror. Every
/// worker's Nautobot client is built before: a configuration problem (no
/// token, bad URL) stops the service before it takes a message.
pub fn run(args: &Settings, mirrors: Vec<Mirror>) -> anyhow::Result<u8> {
    let uri = amqp_uri(args)?;
    let tls = tls_config(args)?;
    let settings = mirrors
        .first()
        .map(|m| m.settings.clone())
        .ok_or_else(|| Error::setup("consume needs at least one worker"))?;
    let metrics = Arc::new(Metrics::default());
    metrics::serve(&args.metrics_addr, metrics.clone())
        .with_context(|| format!("metrics endpoint on {}", args.metrics_addr))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stopping = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for (i, mirror) in mirrors.into_iter().enumerate() {
        let (sender, receiver) = mpsc::channel::<Job>();
        senders.push(sender);
        let worker = Worker {
            mirror,
            handle: runtime.handle().clone(),
            metrics: metrics.clone(),
            stopping: stopping.clone(),
            dead_letter: args.dead_letter_exchange.clone(),
            max_backoff: args.max_backoff,
        };
        workers.push(
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || worker.run(receiver))?,
        );
    }

    let result = runtime.block_on(consume(
        &settings, &uri, tls, args, &senders, &metrics, &stopping,
    ));
    // Stop: workers finish what they hold, acknowledge it, and exit.
    stopping.store(true, Ordering::SeqCst);
    drop(senders);
    for worker in workers {
        let _ = worker.join();
    }
    runtime.block_on(async {
        if let Ok(Some((connection, _))) = &result {
            let _ = connection.close(200, "shutting down".into()).await;
        }
    });
    result.map(|_| error::OK)
}

/// Connects, declares, consumes and dispatches until SIGTERM/SIGINT,
/// reconnecting with backoff whenever the broker goes away.
async fn consume(
    settings: &plan::Settings,
    uri: &AMQPUri,
    tls: OwnedTLSConfig,
    args: &Settings,
    senders: &[mpsc::Sender<Job>],
    metrics: &Arc<Metrics>,
    stopping: &AtomicBool,
) -> anyhow::Result<Option<(Connection, Channel)>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    const FIRST_BACKOFF: Duration = Duration::from_millis(500);
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut failures = 0;
    let mut next_round_robin = 0usize;
    loop {
        let session = match open(uri, tls.clone(), args).await {
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
                    _ = tokio::time::sleep(wait) => {}
                    _ = terminate.recv() => return Ok(None),
                    _ = interrupt.recv() => return Ok(None),
                }
                continue;
            }
        };
        let (connection, channel, mut consumer) = session;
        metrics.set_connected(true);
        let connected_at = Instant::now();
        log::warn!("consuming {} on {}", args.queue, display(uri));
        let mut lag = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                delivery = consumer.next() => match delivery {
                    Some(Ok(delivery)) => {
                        let plan = decode_and_plan(&delivery.data, settings);
                        let event_type = match &plan {
                            Ok((n, _)) => n.event_type.clone(),
                            Err(_) => crate::event::decode(&delivery.data).map_or_else(|_| "-".to_owned(), |n| n.event_type),
                        };
                        let key = plan.as_ref().ok().and_then(|(n, _)| plan::network_of(n));
                        let worker = match &key {
                            Some(key) => shard(key, senders.len()),
                            None => { next_round_robin += 1; next_round_robin % senders.len() }
                        };
                        metrics.in_flight(1);
                        let job = Job { delivery, channel: channel.clone(), event_type, plan, received: Instant::now() };
                        if senders[worker].send(job).is_err() {
                            anyhow::bail!("worker {worker} stopped");
                        }
                    }
                    Some(Err(err)) => { log::warn!("consumer: {err}"); break; }
                    None => { log::warn!("consumer cancelled by the broker"); break; }
                },
                _ = lag.tick() => {
                    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
                    if let Ok(q) = channel.queue_declare(args.queue.as_str().into(), passive, FieldTable::default()).await {
                        metrics.set_queue_depth(q.message_count());
                    }
                }
                _ = terminate.recv() => return stop(connection, channel, consumer.tag(), stopping).await,
                _ = interrupt.recv() => return stop(connection, channel, consumer.tag(), stopping).await,
            }
        }
        metrics.set_connected(false);
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

/// Graceful stop: no new deliveries; in-flight ones are finished by the workers.
async fn stop(
    connection: Connection,
    channel: Channel,
    tag: lapin::types::ShortString,
    stopping: &AtomicBool,
) -> anyhow::Result<Option<(Connection, Channel)>> {
    log::warn!("stopping: finishing the events being applied, returning the rest to the queue");
    stopping.store(true, Ordering::SeqCst);
    let _ = channel
        .basic_cancel(tag, BasicCancelOptions::default())
        .await;
    Ok(Some((connection, channel)))
}

/// Declares the exchange, the queue and its binding exactly as the Argo
/// EventSource does, then starts consuming with manual acknowledgements.
async fn open(
    uri: &AMQPUri,
    tls: OwnedTLSConfig,
    args: &Settings,
) -> anyhow::Result<(Connection, Channel, lapin::Consumer)> {
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
    channel
        .exchange_declare(
            args.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .context(
            "declaring the exchange (its durability must match Neutron's amqp_durable_queues)",
        )?;
    channel
        .queue_declare(
            args.queue.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            args.queue.as_str().into(),
            args.exchange.as_str().into(),
            args.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    if let Some(dead_letter) = &args.dead_letter_exchange {
        // Publishing to a missing exchange closes the channel, and with it
        // every unacknowledged delivery: refuse to start instead.
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        let exists = channel
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
    Ok((connection, channel, consumer))
}

/// Whether a message that failed with this exit code stays (is retried in
/// its worker, holding back its network's later events) rather than being
/// acknowledged: transient trouble, and setup problems an operator will fix.
/// Decided by the code alone, wherever it was met. Planning never fails for
/// a setup reason (a missing UCVNI group is refused when applying), so
/// what fails to plan is bad input or another event type, and is let go.
fn holds(code: u8) -> bool {
    code == error::TRANSIENT || code == error::SETUP
}

/// The worker index for a network: the same network always lands on the
/// same worker, which handles its messages one at a time, in order.
fn shard(key: &str, workers: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % workers as u64) as usize
}

struct Worker {
    mirror: Mirror,
    handle: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    stopping: Arc<AtomicBool>,
    dead_letter: Option<String>,
    max_backoff: Duration,
}

impl Worker {
    fn run(self, jobs: mpsc::Receiver<Job>) {
        for job in jobs {
            // Once stopping, what has not started goes back to the queue, in
            // order: applying a later event of a network whose earlier one
            // was just requeued would reorder them.
            if self.stopping.load(Ordering::SeqCst) {
                self.requeue(&job.delivery);
            } else {
                self.process(job);
            }
            self.metrics.in_flight(-1);
        }
    }

    fn requeue(&self, delivery: &lapin::message::Delivery) {
        let requeue = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        let _ = self.handle.block_on(delivery.acker.nack(requeue));
    }

    fn process(&self, job: Job) {
        let Job {
            delivery,
            channel,
            event_type,
            plan,
            received,
        } = job;
        let context = format!("message {}", delivery.delivery_tag);
        let (notification, plan) = match plan {
            Ok(planned) => planned,
            Err(err) => {
                let code = error::exit_code(&err);
                // The queue carries every Neutron notification (ports,
                // routers, …): most have nothing to do with us.
                if code != error::NO_HANDLER {
                    error::print(&context, &err);
                }
                self.metrics.event(&event_type, code, received.elapsed());
                if code != error::NO_HANDLER {
                    self.dead_letter(&channel, &delivery);
                }
                self.ack(&delivery);
                return;
            }
        };
        let mut attempt = 0;
        loop {
            let report = self.mirror.apply(notification.clone(), plan.clone());
            let code = report.code();
            report.print_errors(&context);
            if holds(code) {
                if self.stopping.load(Ordering::SeqCst) {
                    self.requeue(&delivery);
                    return;
                }
                attempt += 1;
                self.metrics.retry();
                let wait = backoff::delay(Duration::from_secs(1), attempt, self.max_backoff);
                log::warn!("{event_type}: retrying in {wait:.1?}");
                self.sleep(wait);
                continue;
            }
            self.metrics.event(&event_type, code, received.elapsed());
            if code == error::OK {
                log::info!("{}", report.summary());
            } else {
                self.dead_letter(&channel, &delivery);
            }
            self.ack(&delivery);
            return;
        }
    }

    /// Sleeps, waking early when the service is asked to stop.
    fn sleep(&self, total: Duration) {
        let until = Instant::now() + total;
        while Instant::now() < until && !self.stopping.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
        }
    }

    fn ack(&self, delivery: &lapin::message::Delivery) {
        if let Err(err) = self
            .handle
            .block_on(delivery.acker.ack(BasicAckOptions::default()))
        {
            // The channel is gone: the broker has requeued the message and
            // will deliver it again; applying it twice is harmless.
            log::warn!("ack of message {}: {err}", delivery.delivery_tag);
        }
    }

    fn dead_letter(&self, channel: &Channel, delivery: &lapin::message::Delivery) {
        let Some(exchange) = &self.dead_letter else {
            return;
        };
        let publish = channel.basic_publish(
            exchange.as_str().into(),
            delivery.routing_key.clone(),
            BasicPublishOptions::default(),
            &delivery.data,
            delivery.properties.clone(),
        );
        if let Err(err) = self.handle.block_on(publish) {
            log::error!(
                "dead-lettering message {} to {exchange}: {err}",
                delivery.delivery_tag
            );
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

    #[test]
    fn one_network_always_lands_on_one_worker() {
        let a = shard("5b0e4c3e-7f36-4a0c-8a51-0c8f2b7d9a11", 4);
        for _ in 0..10 {
            assert_eq!(shard("5b0e4c3e-7f36-4a0c-8a51-0c8f2b7d9a11", 4), a);
        }
        let spread: std::collections::HashSet<usize> =
            (0..64).map(|i| shard(&format!("net-{i}"), 4)).collect();
        assert_eq!(spread.len(), 4);
    }
}
