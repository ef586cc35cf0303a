//! The command line: flags grouped by concern, each command taking only the
//! flags it honours, every flag with an environment fallback. This module
//! turns them into the library's settings; nothing below it sees clap.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::apply::Options;
use crate::error::{Error, exit_codes_help};
use crate::event::MAX_INPUT_BYTES;
use crate::mirror::Mirror;
use crate::nautobot::{Client, Connection, Policy};
use crate::openstack::{self, OpenStack, config};
use crate::plan::Settings;
use crate::reconcile;

/// Mirror OpenStack Neutron network and subnet notifications into Nautobot.
///
/// Without a command, applies one notification (from --file, an argument,
/// or stdin): the decoded oslo message, the raw RabbitMQ body with its
/// "oslo.message" envelope, or an Argo event {"body": …}. Network events keep
/// an IPAM namespace and a UCVNI, subnet events a prefix. Logs go to stderr;
/// one JSON line on stdout says what happened to each object.
#[derive(Debug, Parser)]
#[command(
    name = "oslo-nautobot",
    version,
    after_help = exit_codes_help(),
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub event: EventArgs,

    #[command(flatten)]
    pub nautobot: NautobotArgs,

    #[command(flatten)]
    pub plan: PlanArgs,

    #[command(flatten)]
    pub openstack: OpenStackArgs,

    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides, up
    /// to debug (trace would show request bytes)
    #[arg(short = 'v', long = "verbose", global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

/// Ways of handling many events in one process.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply saved events in order over one kept-alive Nautobot connection:
    /// JSON lines, one JSON document per file, or a `rabbitmqadmin get`
    /// dump; prints one result line per event and a summary, and exits with
    /// the most urgent exit code seen
    Replay(Box<ReplayArgs>),

    /// Run as a service: consume Neutron notifications from RabbitMQ and apply
    /// each (needs a build with the "consume" feature)
    Consume(Box<ConsumeArgs>),

    /// Bring Nautobot in line with Neutron: list every network and subnet, and
    /// every object this tool owns (tagged namespaces and prefixes, the UCVNIs
    /// of its group); create what is missing, update what differs, report
    /// orphans (delete them with --prune); one JSON line per change, then a
    /// summary. A second run right after a successful one writes nothing
    Reconcile(Box<ReconcileArgs>),

    /// Create the tag (with its object types) and the UCVNI group if they
    /// are missing; safe to run any number of times
    Setup(Box<SetupArgs>),
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Delete orphans: objects this tool owns that Neutron no longer has
    /// (prefixes, then namespaces, then UCVNIs); never when a listing failed
    #[arg(long = "prune", env = "RECONCILE_PRUNE")]
    pub prune: bool,

    /// Refuse to delete more than this many objects in one run (exit 7): a
    /// wrong cloud or an empty region must not empty Nautobot
    #[arg(
        long = "max-prune",
        env = "RECONCILE_MAX_PRUNE",
        value_name = "N",
        default_value = "50"
    )]
    pub max_prune: usize,

    /// Print the difference (and the orphans --prune would delete), write
    /// nothing
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// Mirror every Keystone project as a tenant, not only those that own a
    /// network or subnet
    #[arg(long = "all-projects", env = "RECONCILE_ALL_PROJECTS")]
    pub all_projects: bool,

    #[command(flatten)]
    pub nautobot: NautobotArgs,

    #[command(flatten)]
    pub plan: PlanArgs,

    #[command(flatten)]
    pub openstack: OpenStackArgs,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub nautobot: NautobotArgs,

    #[command(flatten)]
    pub plan: PlanArgs,
}

/// The one event of the one-shot command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Input")]
pub struct EventArgs {
    /// The notification as JSON text (instead of --file or stdin)
    #[arg(value_name = "EVENT_JSON", conflicts_with = "file")]
    pub json: Option<String>,

    /// Read the notification from this file ("-" for stdin)
    #[arg(long = "file", short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Print the plan (one JSON line per intended change) and change nothing;
    /// needs no token and no server
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// Where Nautobot is and how to talk to it.
#[derive(Debug, Args)]
#[command(next_help_heading = "Nautobot")]
pub struct NautobotArgs {
    /// Base URL of Nautobot
    #[arg(
        long = "nautobot-url",
        visible_alias = "nautobot_url",
        env = "NAUTOBOT_URL",
        value_name = "URL",
        default_value = "http://nautobot-default.nautobot.svc.cluster.local"
    )]
    pub url: String,

    /// Nautobot API token (prefer the token file: a command line is visible
    /// to every user of the machine)
    #[arg(
        long = "nautobot-token",
        visible_alias = "nautobot_token",
        env = "NAUTOBOT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// File holding the Nautobot API token, used when no token is given
    #[arg(
        long = "nautobot-token-file",
        env = "NAUTOBOT_TOKEN_FILE",
        value_name = "PATH",
        default_value = "/etc/nb-token/token"
    )]
    pub token_file: PathBuf,

    /// Nautobot REST API version sent in the Accept header
    #[arg(
        long = "api-version",
        env = "NAUTOBOT_API_VERSION",
        value_name = "VERSION",
        default_value = "3.0"
    )]
    pub api_version: String,

    /// CA bundle (PEM) that signs Nautobot's certificate, replacing the
    /// built-in Mozilla roots
    #[arg(long = "ca-cert", env = "SSL_CERT_FILE", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,

    /// Seconds to wait for a TCP connection
    #[arg(long = "connect-timeout", env = "NAUTOBOT_CONNECT_TIMEOUT", value_name = "SECONDS",
          default_value = "5", value_parser = seconds)]
    pub connect_timeout: Duration,

    /// Seconds one request may take, connect to last byte
    #[arg(long = "timeout", env = "NAUTOBOT_TIMEOUT", value_name = "SECONDS",
          default_value = "20", value_parser = seconds)]
    pub timeout: Duration,

    /// Attempts per request when Nautobot is unreachable, times out, or
    /// answers 429/502/503/504 (the first attempt included)
    #[arg(long = "attempts", env = "NAUTOBOT_ATTEMPTS", value_name = "N", default_value = "5",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,

    /// Seconds of an event after which a failed request is no longer
    /// retried. It bounds waiting and retrying, never a first attempt: every
    /// request of an event is tried at least once, so every run makes
    /// progress; after a request fails for good, the event stops (exit 75)
    #[arg(long = "retry-budget", env = "NAUTOBOT_RETRY_BUDGET", value_name = "SECONDS",
          default_value = "30", value_parser = seconds)]
    pub retry_budget: Duration,

    /// Objects per bulk request when an event (or reconcile) writes many:
    /// Nautobot spends about 150 ms per prefix, so 25 take about 4 s, far
    /// inside --timeout
    #[arg(long = "bulk-size", env = "NAUTOBOT_BULK_SIZE", value_name = "N", default_value = "25",
          value_parser = clap::value_parser!(u16).range(1..=500))]
    pub bulk_size: u16,
}

/// What the plan writes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Planning")]
pub struct PlanArgs {
    /// UCVNI group of the networks' UCVNIs (needed only when a UCVNI is written)
    #[arg(long = "ucvni-group", env = "UCVNI_GROUP_NAME", value_name = "NAME")]
    pub ucvni_group: Option<String>,

    /// Namespace of the prefixes of router:external networks
    #[arg(
        long = "global-namespace",
        env = "NAUTOBOT_GLOBAL_NAMESPACE",
        value_name = "NAME",
        default_value = "Global"
    )]
    pub global_namespace: String,

    /// Do not create missing tenants: an event for a project that is not in
    /// Nautobot yet then fails as transient (exit 75)
    #[arg(long = "no-create-tenants", env = "NO_CREATE_TENANTS")]
    pub no_create_tenants: bool,

    /// Tag on every namespace, prefix and tenant this tool writes: what
    /// reconcile may prune (created, with its object types, when missing)
    #[arg(
        long = "tag",
        env = "NAUTOBOT_TAG",
        value_name = "NAME",
        default_value = "oslo-nautobot",
        value_parser = non_empty
    )]
    pub tag: String,
}

/// Where OpenStack is: a cloud of clouds.yaml, or the OS_* variables
/// (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, the domain names,
/// OS_APPLICATION_CREDENTIAL_ID/_SECRET, OS_REGION_NAME, OS_INTERFACE,
/// OS_CACERT). Requests to OpenStack use the Nautobot timeouts and attempts.
#[derive(Debug, Args)]
#[command(next_help_heading = "OpenStack")]
pub struct OpenStackArgs {
    /// Cloud of clouds.yaml (OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
    /// ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml; secure.yaml
    /// beside it). With credentials, a create or update event is a trigger:
    /// what it names is read from Neutron as it is now
    #[arg(long = "os-cloud", env = "OS_CLOUD", value_name = "NAME")]
    pub os_cloud: Option<String>,

    /// Take create and update events as they are, without reading Neutron,
    /// even when OpenStack credentials are configured
    #[arg(long = "trust-events", env = "TRUST_EVENTS")]
    pub trust_events: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Files to read in order ("-" for stdin; stdin when none is given)
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Print each event's plan instead of applying it; needs no token and no
    /// server
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    #[command(flatten)]
    pub nautobot: NautobotArgs,

    #[command(flatten)]
    pub plan: PlanArgs,

    #[command(flatten)]
    pub openstack: OpenStackArgs,
}

/// Where and how to consume; defaults match sensors/eventsource.yaml.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub amqp: AmqpArgs,

    #[command(flatten)]
    pub nautobot: NautobotArgs,

    #[command(flatten)]
    pub plan: PlanArgs,

    #[command(flatten)]
    pub openstack: OpenStackArgs,
}

/// The RabbitMQ side of `consume`.
#[derive(Debug, Args)]
#[command(next_help_heading = "RabbitMQ")]
pub struct AmqpArgs {
    /// RabbitMQ URL (amqp:// or amqps://; the vhost is its path, "%2f" for "/")
    #[arg(
        long = "amqp-url",
        env = "AMQP_URL",
        value_name = "URL",
        default_value = "amqp://127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,

    /// Virtual host, overriding the URL's
    #[arg(long = "amqp-vhost", env = "AMQP_VHOST", value_name = "VHOST")]
    pub amqp_vhost: Option<String>,

    /// User name, overriding the URL's
    #[arg(long = "amqp-username", env = "AMQP_USERNAME", value_name = "USER")]
    pub amqp_username: Option<String>,

    /// Password, overriding the URL's (prefer the password file)
    #[arg(
        long = "amqp-password",
        env = "AMQP_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub amqp_password: Option<String>,

    /// File holding the password (whitespace trimmed)
    #[arg(
        long = "amqp-password-file",
        env = "AMQP_PASSWORD_FILE",
        value_name = "PATH"
    )]
    pub amqp_password_file: Option<PathBuf>,

    /// CA bundle (PEM) for amqps://
    #[arg(long = "amqp-ca-cert", env = "AMQP_CA_CERT", value_name = "PATH")]
    pub amqp_ca_cert: Option<PathBuf>,

    /// Exchange(s) the queue is bound to: Neutron's, and Keystone's for
    /// projects (repeat the flag, or separate them with commas)
    #[arg(
        long = "exchange",
        env = "AMQP_EXCHANGE",
        value_name = "NAME",
        default_value = "neutron",
        value_delimiter = ','
    )]
    pub exchange: Vec<String>,

    /// Declare the exchange durable; must match Neutron's amqp_durable_queues
    #[arg(long = "exchange-durable", env = "AMQP_EXCHANGE_DURABLE", value_name = "BOOL",
          default_value = "true", action = ArgAction::Set)]
    pub exchange_durable: bool,

    /// The service's own durable queue (not the EventSource's "oslo-nautobot")
    #[arg(
        long = "queue",
        env = "AMQP_QUEUE",
        value_name = "NAME",
        default_value = "oslo-nautobot-consume"
    )]
    pub queue: String,

    /// How the queue is declared: quorum (replicated by the RabbitMQ cluster)
    /// or classic; single active consumer either way, so that a second
    /// replica stands by and takes over
    #[arg(long = "queue-type", env = "AMQP_QUEUE_TYPE", value_name = "TYPE",
          default_value = "quorum", value_parser = ["quorum", "classic"])]
    pub queue_type: String,

    /// Routing key bound to the queue
    #[arg(
        long = "routing-key",
        env = "AMQP_ROUTING_KEY",
        value_name = "KEY",
        default_value = "notifications.info"
    )]
    pub routing_key: String,

    /// Messages taken from the queue before any is acknowledged
    #[arg(
        long = "prefetch",
        env = "AMQP_PREFETCH",
        value_name = "N",
        default_value = "32"
    )]
    pub prefetch: u16,

    /// Events applied at once (never two of the same network)
    #[arg(long = "concurrency", env = "CONSUME_CONCURRENCY", value_name = "N", default_value = "4",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Exchange that permanently failed messages are published to
    #[arg(
        long = "dead-letter-exchange",
        env = "AMQP_DEAD_LETTER_EXCHANGE",
        value_name = "NAME"
    )]
    pub dead_letter_exchange: Option<String>,

    /// Longest wait between retries of a transiently failing event, in seconds
    #[arg(long = "max-backoff", env = "CONSUME_MAX_BACKOFF", value_name = "SECONDS",
          default_value = "60", value_parser = seconds)]
    pub max_backoff: Duration,

    /// Dead-letter an event still failing (transiently, or for a setup
    /// problem) this many seconds after its first failure; needs
    /// --dead-letter-exchange. Default: never give up
    #[arg(long = "give-up-after", env = "CONSUME_GIVE_UP_AFTER", value_name = "SECONDS",
          value_parser = seconds)]
    pub give_up_after: Option<Duration>,

    /// Address of the /healthz and /metrics endpoint
    #[arg(
        long = "metrics-addr",
        env = "METRICS_ADDR",
        value_name = "ADDR",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_addr: String,
}

#[cfg(feature = "consume")]
impl AmqpArgs {
    pub fn settings(&self) -> crate::consume::Settings {
        crate::consume::Settings {
            url: self.amqp_url.clone(),
            vhost: self.amqp_vhost.clone(),
            username: self.amqp_username.clone(),
            password: self.amqp_password.clone(),
            password_file: self.amqp_password_file.clone(),
            ca_cert: self.amqp_ca_cert.clone(),
            exchanges: self.exchange.clone(),
            exchange_durable: self.exchange_durable,
            queue: self.queue.clone(),
            queue_type: match self.queue_type.as_str() {
                "classic" => crate::consume::QueueType::Classic,
                _ => crate::consume::QueueType::Quorum,
            },
            give_up_after: self.give_up_after,
            routing_key: self.routing_key.clone(),
            prefetch: self.prefetch,
            dead_letter_exchange: self.dead_letter_exchange.clone(),
            max_backoff: self.max_backoff,
            metrics_addr: self.metrics_addr.clone(),
        }
    }
}

impl PlanArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            ucvni_group: self.ucvni_group.clone(),
            global_namespace: self.global_namespace.clone(),
            tag: Some(self.tag.clone()),
        }
    }
}

impl NautobotArgs {
    /// The connection settings, with the token read from the flag, the
    /// environment or the token file.
    pub fn connection(&self) -> Result<Connection, Error> {
        Ok(Connection {
            url: self.url.clone(),
            token: self.token()?,
            api_version: self.api_version.clone(),
            ca_cert: self.ca_cert.clone(),
            policy: Policy {
                connect_timeout: self.connect_timeout,
                request_timeout: self.timeout,
                attempts: self.attempts,
                budget: self.retry_budget,
                backoff: Duration::from_millis(250),
            },
        })
    }

    fn token(&self) -> Result<String, Error> {
        if let Some(token) = self
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            return Ok(token.to_owned());
        }
        let path = &self.token_file;
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::setup(format!(
                "no Nautobot token: set NAUTOBOT_TOKEN or NAUTOBOT_TOKEN_FILE ({}: {e})",
                path.display()
            ))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(Error::setup(format!(
                "the token file {} is empty",
                path.display()
            )));
        }
        Ok(token.to_owned())
    }
}

impl OpenStackArgs {
    /// The OpenStack client, when credentials are configured.
    pub fn client(&self, nautobot: &NautobotArgs) -> Result<Option<OpenStack>, Error> {
        let env = |name: &str| std::env::var(name).ok();
        let Some(cloud) = config::discover(self.os_cloud.as_deref(), &env)? else {
            return Ok(None);
        };
        let policy = openstack::Policy {
            connect_timeout: nautobot.connect_timeout,
            request_timeout: nautobot.timeout,
            attempts: nautobot.attempts,
            backoff: Duration::from_millis(250),
        };
        OpenStack::new(cloud, policy).map(Some)
    }

    /// The client events read Neutron with: none when events are trusted.
    fn for_events(&self, nautobot: &NautobotArgs) -> Result<Option<OpenStack>, Error> {
        if self.trust_events {
            return Ok(None);
        }
        self.client(nautobot)
    }
}

/// A mirror of Nautobot from the flag groups; with `dry_run`, one that only
/// plans (no token, no Nautobot client; OpenStack is still read).
pub fn mirror(
    nautobot: &NautobotArgs,
    plan: &PlanArgs,
    openstack: &OpenStackArgs,
    dry_run: bool,
) -> Result<Mirror, Error> {
    let client = if dry_run {
        None
    } else {
        Some(Client::new(&nautobot.connection()?)?)
    };
    Ok(Mirror {
        client,
        openstack: openstack.for_events(nautobot)?,
        settings: plan.settings(),
        options: Options {
            create_tenants: !plan.no_create_tenants,
            tags: plan.settings().tags(),
            bulk_size: nautobot.bulk_size.into(),
        },
    })
}

impl Command {
    pub fn run(&self) -> anyhow::Result<u8> {
        match self {
            Command::Replay(args) => {
                let mirror = mirror(&args.nautobot, &args.plan, &args.openstack, args.dry_run)?;
                crate::replay::run(&mirror, &args.files)
            }
            Command::Reconcile(args) => args.run(),
            Command::Setup(args) => args.run(),
            #[cfg(feature = "consume")]
            Command::Consume(args) => {
                // Every worker's clients are built before the first message
                // is taken: a configuration problem stops the service at once.
                let mirrors = (0..args.amqp.concurrency)
                    .map(|_| mirror(&args.nautobot, &args.plan, &args.openstack, false))
                    .collect::<Result<Vec<_>, _>>()?;
                crate::consume::run(&args.amqp.settings(), mirrors)
            }
            #[cfg(not(feature = "consume"))]
            Command::Consume(_) => Err(Error::setup(
                "this binary was built without the consume feature (cargo build --features consume)",
            )
            .into()),
        }
    }
}

impl ReconcileArgs {
    /// Runs reconcile: it needs Nautobot (a dry run reads it too) and OpenStack.
    pub fn run(&self) -> anyhow::Result<u8> {
        let client = Client::new(&self.nautobot.connection()?)?;
        let openstack = self.openstack.client(&self.nautobot)?.ok_or_else(|| {
            Error::setup(
                "reconcile needs OpenStack credentials: set OS_CLOUD (and clouds.yaml) or the OS_* variables",
            )
        })?;
        let options = reconcile::Options {
            prune: self.prune,
            max_prune: self.max_prune,
            dry_run: self.dry_run,
            all_projects: self.all_projects,
        };
        let apply_options = Options {
            create_tenants: !self.plan.no_create_tenants,
            tags: self.plan.settings().tags(),
            bulk_size: self.nautobot.bulk_size.into(),
        };
        let settings = self.plan.settings();
        let mut out = std::io::stdout().lock();
        reconcile::run(
            &client,
            &openstack,
            &settings,
            &apply_options,
            &options,
            &mut out,
        )
    }
}

impl SetupArgs {
    /// Creates the tag and the UCVNI group where missing; one line each.
    pub fn run(&self) -> anyhow::Result<u8> {
        let client = Client::new(&self.nautobot.connection()?)?;
        let group = self
            .plan
            .ucvni_group
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .ok_or_else(|| Error::setup(crate::plan::NO_GROUP))?;
        let mut session = client.session();
        let options = Options {
            create_tenants: false,
            tags: Vec::new(),
            bulk_size: 1,
        };
        let applied = crate::apply::setup(&mut session, &options, &self.plan.tag, group);
        for outcome in &applied.outcomes {
            println!("{}", serde_json::to_string(outcome)?);
        }
        for err in &applied.errors {
            crate::error::print("setup", err);
        }
        Ok(crate::error::worst(
            applied.errors.iter().map(crate::error::exit_code),
        ))
    }
}

impl EventArgs {
    /// The one input document, refusing more than the size limit.
    pub fn read(&self) -> Result<Vec<u8>, Error> {
        if let Some(text) = &self.json {
            return Ok(text.clone().into_bytes());
        }
        let limit = MAX_INPUT_BYTES as u64 + 1;
        let mut bytes = Vec::new();
        match self.file.as_deref() {
            Some(path) if path.as_os_str() != "-" => {
                let file = std::fs::File::open(path)
                    .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?;
                file.take(limit).read_to_end(&mut bytes)
            }
            _ => {
                let stdin = std::io::stdin();
                if stdin.is_terminal() {
                    return Err(Error::input(
                        "no event: give --file PATH, the JSON as an argument, or pipe it on stdin",
                    ));
                }
                stdin.lock().take(limit).read_to_end(&mut bytes)
            }
        }
        .map_err(|e| Error::input(format!("cannot read the input: {e}")))?;
        Ok(bytes)
    }
}

fn non_empty(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(text.to_owned())
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
        return Err(format!("{text} is not between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn accepts_the_older_underscore_spellings() {
        let cli = Cli::try_parse_from([
            "oslo-nautobot",
            "--nautobot_url",
            "http://x",
            "--nautobot_token",
            "t",
        ])
        .unwrap();
        assert_eq!(cli.nautobot.url, "http://x");
        assert_eq!(cli.nautobot.token.as_deref(), Some("t"));
    }

    #[test]
    fn each_command_takes_only_the_flags_it_honours() {
        let replay = Cli::try_parse_from(["oslo-nautobot", "replay", "--dry-run", "a.jsonl"]);
        assert!(matches!(
            replay.unwrap().command,
            Some(Command::Replay(args)) if args.dry_run
        ));
        for refused in [
            vec!["oslo-nautobot", "consume", "--dry-run"],
            vec!["oslo-nautobot", "--amqp-url", "amqp://x"],
            vec!["oslo-nautobot", "replay", "--amqp-url", "amqp://x"],
        ] {
            let err = Cli::try_parse_from(&refused).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{refused:?}");
        }
    }

    #[test]
    fn parses_seconds() {
        assert_eq!(seconds("1.5").unwrap(), Duration::from_millis(1500));
        assert!(seconds("0").is_err());
        assert!(seconds("nan").is_err());
        assert!(seconds("-1").is_err());
    }
}
