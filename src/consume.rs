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

use crate::Mirror;
use crate::cli::{Cli, ConsumeArgs};
use crate::error::{self, ConfigError};
use crate::event::{self, Notification};
use crate::handlers::{self, Change, Settings};

mod metrics;
use metrics::Metrics;

/// One delivered message, decoded and planned by the dispatcher.
struct Job {
    delivery: lapin::message::Delivery,
    channel: Channel,
    /// "-" when the message is not a notification at all.
    event_type: String,
    plan: anyhow::Result<(Notification, Vec<Change>)>,
    received: Instant,
}

pub fn run(cli: &Cli, args: &ConsumeArgs) -> anyhow::Result<u8> {
    let uri = amqp_uri(args)?;
    let tls = tls_config(args)?;
    // Every worker's Nautobot client is built up front: a configuration
    // problem (no token, bad URL) stops the service before it takes a message.
    let mirrors = (0..args.concurrency)
        .map(|_| cli.mirror())
        .collect::<Result<Vec<_>, _>>()?;
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
        &cli.settings(),
        &uri,
        tls,
        args,
        &senders,
        &metrics,
        &stopping,
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
    settings: &Settings,
    uri: &AMQPUri,
    tls: OwnedTLSConfig,
    args: &ConsumeArgs,
    senders: &[mpsc::Sender<Job>],
    metrics: &Arc<Metrics>,
    stopping: &AtomicBool,
) -> anyhow::Result<Option<(Connection, Channel)>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    const FIRST_BACKOFF: Duration = Duration::from_millis(500);
    let mut backoff = FIRST_BACKOFF;
    let mut next_round_robin = 0usize;
    loop {
        let session = match open(uri, tls.clone(), args).await {
            Ok(session) => session,
            Err(err) if err.is::<ConfigError>() => return Err(err),
            Err(err) => {
                metrics.set_connected(false);
                log::warn!(
                    "RabbitMQ at {}: {err:#}; reconnecting in {backoff:.1?}",
                    display(uri)
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = terminate.recv() => return Ok(None),
                    _ = interrupt.recv() => return Ok(None),
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
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
                        let (event_type, plan) = match event::decode(&delivery.data) {
                            Ok(n) => (n.event_type.clone(), handlers::plan(&n, settings).map(|c| (n, c))),
                            Err(err) => ("-".to_owned(), Err(err.into())),
                        };
                        let key = plan.as_ref().ok().and_then(|(n, _)| handlers::network_of(n));
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
        if connected_at.elapsed() > Duration::from_secs(30) {
            backoff = FIRST_BACKOFF;
        }
        log::warn!(
            "lost RabbitMQ; unacknowledged messages return to the queue; reconnecting in {backoff:.1?}"
        );
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = terminate.recv() => return Ok(None),
            _ = interrupt.recv() => return Ok(None),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
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
    args: &ConsumeArgs,
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
            return Err(ConfigError(format!("dead-letter exchange {dead_letter:?}: {err}")).into());
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
        let (notification, changes) = match plan {
            Ok(planned) => planned,
            Err(err) => {
                let code = error::exit_code(&err);
                self.metrics.event(&event_type, code, received.elapsed());
                if code == error::NO_HANDLER {
                    // The queue carries every Neutron notification (ports,
                    // routers, …): most have nothing to do with us.
                    log::debug!("message {}: {err:#}", delivery.delivery_tag);
                } else {
                    log::error!("message {}: {err:#}", delivery.delivery_tag);
                    self.dead_letter(&channel, &delivery);
                }
                self.ack(&delivery);
                return;
            }
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            let report = self.mirror.apply(notification.clone(), &changes);
            let code = report.code();
            for err in &report.errors {
                log::warn!("{event_type} (message {}): {err:#}", delivery.delivery_tag);
            }
            // Transient trouble, or a setup problem an operator will fix:
            // hold the message (and its network's later ones) and retry.
            if code == error::TRANSIENT || code == error::CONFIG {
                if self.stopping.load(Ordering::SeqCst) {
                    self.requeue(&delivery);
                    return;
                }
                self.metrics.retry();
                log::warn!("{event_type}: retrying in {backoff:.1?}");
                self.sleep(backoff);
                backoff = (backoff * 2).min(self.max_backoff);
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

fn amqp_uri(args: &ConsumeArgs) -> Result<AMQPUri, ConfigError> {
    let mut uri: AMQPUri = args
        .amqp_url
        .parse()
        .map_err(|e| ConfigError(format!("AMQP URL: {e}")))?;
    if let Some(user) = &args.amqp_username {
        uri.authority.userinfo.username = user.clone();
    }
    if let Some(path) = &args.amqp_password_file {
        let password = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("AMQP password file {}: {e}", path.display())))?;
        uri.authority.userinfo.password = password.trim().to_owned();
    } else if let Some(password) = &args.amqp_password {
        uri.authority.userinfo.password = password.clone();
    }
    if let Some(vhost) = &args.amqp_vhost {
        uri.vhost = vhost.clone();
    }
    Ok(uri)
}

fn tls_config(args: &ConsumeArgs) -> Result<OwnedTLSConfig, ConfigError> {
    let cert_chain = match &args.amqp_ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("AMQP CA bundle {}: {e}", path.display())))?,
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
