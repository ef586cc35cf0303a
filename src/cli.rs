//! Command-line interface: flags with environment fallbacks.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::Mirror;
use crate::apply::Options;
use crate::error::{ConfigError, EXIT_CODES_HELP};
use crate::handlers::Settings;
use crate::nautobot::{Client, Policy};

/// Mirror one OpenStack Neutron network or subnet notification into Nautobot.
///
/// Reads one notification (from --file, an argument, or stdin): the decoded
/// oslo message, the raw RabbitMQ body with its "oslo.message" envelope, or an
/// Argo event {"body": …}. Network events keep an IPAM namespace and a UCVNI,
/// subnet events a prefix. Logs go to stderr; on success one JSON line on
/// stdout says what happened to each object.
#[derive(Debug, Parser)]
#[command(name = "oslo-nautobot", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The notification as JSON text (instead of --file or stdin)
    #[arg(value_name = "EVENT_JSON", conflicts_with = "file")]
    pub event: Option<String>,

    /// Read the notification from this file ("-" for stdin)
    #[arg(long = "file", short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Print the intended Nautobot changes as JSON lines and change nothing;
    /// needs no token and no server
    #[arg(long = "dry-run", global = true)]
    pub dry_run: bool,

    /// Base URL of Nautobot
    #[arg(
        long = "nautobot-url",
        global = true,
        visible_alias = "nautobot_url",
        env = "NAUTOBOT_URL",
        value_name = "URL",
        default_value = "http://nautobot-default.nautobot.svc.cluster.local"
    )]
    pub nautobot_url: String,

    /// Nautobot API token (prefer the token file: a command line is visible
    /// to every user of the machine)
    #[arg(
        long = "nautobot-token",
        global = true,
        visible_alias = "nautobot_token",
        env = "NAUTOBOT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub nautobot_token: Option<String>,

    /// File holding the Nautobot API token, used when no token is given
    #[arg(
        long = "nautobot-token-file",
        global = true,
        env = "NAUTOBOT_TOKEN_FILE",
        value_name = "PATH",
        default_value = "/etc/nb-token/token"
    )]
    pub nautobot_token_file: PathBuf,

    /// UCVNI group of the networks' UCVNIs (needed only when a UCVNI is written)
    #[arg(
        long = "ucvni-group",
        global = true,
        env = "UCVNI_GROUP_NAME",
        value_name = "NAME"
    )]
    pub ucvni_group: Option<String>,

    /// Namespace of the prefixes of router:external networks
    #[arg(
        long = "global-namespace",
        global = true,
        env = "NAUTOBOT_GLOBAL_NAMESPACE",
        value_name = "NAME",
        default_value = "Global"
    )]
    pub global_namespace: String,

    /// Do not create missing tenants: an event for a project that is not in
    /// Nautobot yet then fails as transient (exit 75)
    #[arg(long = "no-create-tenants", global = true, env = "NO_CREATE_TENANTS")]
    pub no_create_tenants: bool,

    /// Nautobot REST API version sent in the Accept header
    #[arg(
        long = "api-version",
        global = true,
        env = "NAUTOBOT_API_VERSION",
        value_name = "VERSION",
        default_value = "3.0"
    )]
    pub api_version: String,

    /// CA bundle (PEM) that signs Nautobot's certificate, replacing the
    /// built-in Mozilla roots
    #[arg(
        long = "ca-cert",
        global = true,
        env = "SSL_CERT_FILE",
        value_name = "PATH"
    )]
    pub ca_cert: Option<PathBuf>,

    /// Seconds to wait for a TCP connection
    #[arg(long = "connect-timeout", global = true, env = "NAUTOBOT_CONNECT_TIMEOUT", value_name = "SECONDS",
          default_value = "5", value_parser = seconds)]
    pub connect_timeout: Duration,

    /// Seconds one request may take, connect to last byte
    #[arg(long = "timeout", global = true, env = "NAUTOBOT_TIMEOUT", value_name = "SECONDS",
          default_value = "20", value_parser = seconds)]
    pub timeout: Duration,

    /// Attempts per request when Nautobot is unreachable, times out, or
    /// answers 429/502/503/504 (the first attempt included)
    #[arg(long = "attempts", global = true, env = "NAUTOBOT_ATTEMPTS", value_name = "N", default_value = "5",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,

    /// Seconds after which no request of an event is retried: bounds the
    /// time one event can take
    #[arg(long = "retry-budget", global = true, env = "NAUTOBOT_RETRY_BUDGET", value_name = "SECONDS",
          default_value = "30", value_parser = seconds)]
    pub retry_budget: Duration,

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
    Replay(ReplayArgs),

    /// Run as a service: consume Neutron notifications from RabbitMQ and apply
    /// each (needs a build with the "consume" feature)
    Consume(Box<ConsumeArgs>),
}

/// Where and how to consume; defaults match sensors/eventsource.yaml.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
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

    /// Exchange Neutron publishes to
    #[arg(
        long = "exchange",
        env = "AMQP_EXCHANGE",
        value_name = "NAME",
        default_value = "neutron"
    )]
    pub exchange: String,

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

    /// Address of the /healthz and /metrics endpoint
    #[arg(
        long = "metrics-addr",
        env = "METRICS_ADDR",
        value_name = "ADDR",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_addr: String,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Files to read in order ("-" for stdin; stdin when none is given)
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

impl Cli {
    pub fn settings(&self) -> Settings {
        Settings {
            ucvni_group: self.ucvni_group.clone(),
            global_namespace: self.global_namespace.clone(),
        }
    }

    /// A Nautobot client and everything else needed to apply events.
    pub fn mirror(&self) -> Result<Mirror, ConfigError> {
        let policy = Policy {
            connect_timeout: self.connect_timeout,
            request_timeout: self.timeout,
            attempts: self.attempts,
            budget: self.retry_budget,
            backoff: Duration::from_millis(250),
        };
        let token = self.token()?;
        let client = Client::new(
            &self.nautobot_url,
            &token,
            &self.api_version,
            self.ca_cert.as_deref(),
            policy,
        )?;
        Ok(Mirror {
            client,
            settings: self.settings(),
            options: Options {
                create_tenants: !self.no_create_tenants,
            },
        })
    }

    /// The token: from the flag or environment, else from the token file.
    fn token(&self) -> Result<String, ConfigError> {
        if let Some(token) = self
            .nautobot_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            return Ok(token.to_owned());
        }
        let path = &self.nautobot_token_file;
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "no Nautobot token: set NAUTOBOT_TOKEN or NAUTOBOT_TOKEN_FILE ({}: {e})",
                path.display()
            ))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(ConfigError(format!(
                "the token file {} is empty",
                path.display()
            )));
        }
        Ok(token.to_owned())
    }
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
        assert_eq!(cli.nautobot_url, "http://x");
        assert_eq!(cli.nautobot_token.as_deref(), Some("t"));
    }

    #[test]
    fn parses_seconds() {
        assert_eq!(seconds("1.5").unwrap(), Duration::from_millis(1500));
        assert!(seconds("0").is_err());
        assert!(seconds("nan").is_err());
        assert!(seconds("-1").is_err());
    }
}
