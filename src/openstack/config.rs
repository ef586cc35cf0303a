//! Where the OpenStack credentials come from, the OpenStack way: a cloud
//! named by `--os-cloud` / `OS_CLOUD` in `clouds.yaml` (with `secure.yaml`
//! beside it), else the `OS_*` variables. Nothing here talks to OpenStack.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::Error;

/// A string that must never be shown: `Debug` prints stars.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A user, project or domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    Id(String),
    Name(String),
}

/// How to authenticate with Keystone v3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Password {
        user: Named,
        user_domain: Named,
        password: Secret,
        /// The project to scope to; None for an unscoped token.
        project: Option<Named>,
        project_domain: Named,
    },
    /// An application credential fixes its own project: no scope is sent.
    ApplicationCredential {
        id: Option<String>,
        /// With a name instead of an id, the user owning it.
        name: Option<(String, Named, Named)>,
        secret: Secret,
    },
}

/// One cloud: where Keystone is, who we are, and which endpoints to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// The cloud's name in clouds.yaml, or "OS_* environment".
    pub name: String,
    pub auth_url: String,
    pub auth: Auth,
    pub region: Option<String>,
    /// Endpoint interface: public, internal or admin.
    pub interface: String,
    pub ca_cert: Option<PathBuf>,
}

impl Cloud {
    /// The secrets this cloud holds, to be redacted wherever text comes back.
    pub fn secrets(&self) -> Vec<String> {
        match &self.auth {
            Auth::Password { password, .. } => vec![password.0.clone()],
            Auth::ApplicationCredential { secret, .. } => vec![secret.0.clone()],
        }
    }
}

/// Reads environment variables (a seam for tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The cloud to use, if any: the named one from clouds.yaml, else one from
/// the `OS_*` variables when `OS_AUTH_URL` is set, else None (events are
/// trusted, reconcile cannot run).
pub fn discover(os_cloud: Option<&str>, env: Env) -> Result<Option<Cloud>, Error> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(name) = os_cloud.map(str::trim).filter(|n| !n.is_empty()) {
        return from_clouds_yaml(name, env).map(Some);
    }
    if var("OS_AUTH_URL").is_none() {
        return Ok(None);
    }
    let get = |key: &str| var(&format!("OS_{}", key.to_ascii_uppercase()));
    let cloud = build("OS_* environment", &get, &|key: &str| match key {
        "region_name" => var("OS_REGION_NAME"),
        "interface" => var("OS_INTERFACE").or_else(|| var("OS_ENDPOINT_TYPE")),
        "cacert" => var("OS_CACERT"),
        "auth_type" => var("OS_AUTH_TYPE"),
        _ => None,
    })?;
    Ok(Some(cloud))
}

/// The clouds.yaml files looked at, in order: `OS_CLIENT_CONFIG_FILE`, then
/// the current directory, the user's, and the system's.
fn search_path(env: Env) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(file) = env("OS_CLIENT_CONFIG_FILE").filter(|f| !f.is_empty()) {
        paths.push(PathBuf::from(file));
    }
    paths.push(PathBuf::from("clouds.yaml"));
    if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
        paths.push(Path::new(&home).join(".config/openstack/clouds.yaml"));
    }
    paths.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    paths
}

fn read_yaml(path: &Path) -> Result<Option<Value>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::setup(format!("cannot read {}: {e}", path.display()))),
    };
    serde_saphyr::from_str::<Value>(&text)
        .map(Some)
        // The parser's message may quote the line: it could hold a password.
        .map_err(|_| Error::setup(format!("{} is not valid YAML", path.display())))
}

fn from_clouds_yaml(name: &str, env: Env) -> Result<Cloud, Error> {
    let searched = search_path(env);
    let mut found = None;
    for path in &searched {
        if let Some(doc) = read_yaml(path)? {
            found = Some((path.clone(), doc));
            break;
        }
    }
    let Some((path, doc)) = found else {
        let list: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::setup(format!(
            "OS_CLOUD is {name:?} but there is no clouds.yaml (looked at {})",
            list.join(", ")
        )));
    };
    let mut cloud = doc["clouds"][name].clone();
    if !cloud.is_object() {
        return Err(Error::setup(format!(
            "{} has no cloud named {name:?}",
            path.display()
        )));
    }
    // secure.yaml holds the secrets of the same clouds, beside clouds.yaml
    // (or where OS_CLIENT_SECURE_FILE says).
    let secure = env("OS_CLIENT_SECURE_FILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| path.with_file_name("secure.yaml"));
    if let Some(doc) = read_yaml(&secure)? {
        merge(&mut cloud, &doc["clouds"][name]);
    }
    let text = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if cloud["verify"] == Value::Bool(false) {
        return Err(Error::setup(format!(
            "cloud {name:?}: verify: false is not supported; give the CA bundle as cacert"
        )));
    }
    let label = format!("{name} ({})", path.display());
    build(
        &label,
        &|key: &str| text(&cloud["auth"][key]),
        &|key: &str| match key {
            "interface" => text(&cloud["interface"]).or_else(|| text(&cloud["endpoint_type"])),
            other => text(&cloud[other]),
        },
    )
}

/// Deep-merges `over` into `base` (secure.yaml over clouds.yaml).
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, over) if !over.is_null() => *base = over.clone(),
        _ => {}
    }
}

/// A cloud from its auth settings (`auth`, keyed as in clouds.yaml's
/// `auth:` section) and its other settings (`region_name`, `interface`,
/// `cacert`, `auth_type`).
fn build(
    name: &str,
    auth: &dyn Fn(&str) -> Option<String>,
    other: &dyn Fn(&str) -> Option<String>,
) -> Result<Cloud, Error> {
    let missing = |what: &str| {
        Error::setup(format!(
            "OpenStack cloud {name}: no {what} (clouds.yaml auth.{what}, or OS_{})",
            what.to_ascii_uppercase()
        ))
    };
    let auth_url = auth("auth_url").ok_or_else(|| missing("auth_url"))?;
    if !crate::http::valid_base(auth_url.trim_end_matches('/')) {
        return Err(Error::setup(format!(
            "OpenStack cloud {name}: auth_url {auth_url:?} is not an http:// or https:// URL"
        )));
    }
    let named = |id: &str, name: &str| {
        auth(id)
            .map(Named::Id)
            .or_else(|| auth(name).map(Named::Name))
    };
    let domain = |prefix: &str| {
        named(
            &format!("{prefix}_domain_id"),
            &format!("{prefix}_domain_name"),
        )
        .or_else(|| named("domain_id", "domain_name"))
        .unwrap_or_else(|| Named::Id("default".into()))
    };
    let auth_type = other("auth_type").unwrap_or_default();
    let app_credential = auth_type.contains("applicationcredential")
        || auth("application_credential_secret").is_some();
    let method = if app_credential {
        let secret = auth("application_credential_secret")
            .ok_or_else(|| missing("application_credential_secret"))?;
        let id = auth("application_credential_id");
        let by_name = auth("application_credential_name").map(|n| {
            let user = named("user_id", "username").unwrap_or(Named::Name(String::new()));
            (n, user, domain("user"))
        });
        if id.is_none() && by_name.is_none() {
            return Err(missing("application_credential_id"));
        }
        Auth::ApplicationCredential {
            id,
            name: by_name,
            secret: Secret(secret),
        }
    } else {
        Auth::Password {
            user: named("user_id", "username").ok_or_else(|| missing("username"))?,
            user_domain: domain("user"),
            password: Secret(auth("password").ok_or_else(|| missing("password"))?),
            project: named("project_id", "project_name")
                .or_else(|| named("tenant_id", "tenant_name")),
            project_domain: domain("project"),
        }
    };
    let interface = other("interface").unwrap_or_else(|| "public".into());
    Ok(Cloud {
        name: name.to_owned(),
        auth_url,
        auth: method,
        region: other("region_name"),
        // "publicURL" is the older spelling.
        interface: interface.trim_end_matches("URL").to_owned(),
        ca_cert: other("cacert").map(PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn discover_with(
        cloud: Option<&str>,
        vars: &HashMap<String, String>,
    ) -> Result<Option<Cloud>, Error> {
        let env = |k: &str| vars.get(k).cloned();
        discover(cloud, &env)
    }

    #[test]
    fn nothing_configured_means_no_cloud() {
        assert_eq!(discover_with(None, &env_of(&[])).unwrap(), None);
    }

    #[test]
    fn reads_the_os_variables() {
        let vars = env_of(&[
            ("OS_AUTH_URL", "http://keystone:5000/v3"),
            ("OS_USERNAME", "admin"),
            ("OS_PASSWORD", "s3cret"),
            ("OS_PROJECT_NAME", "admin"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_REGION_NAME", "RegionTwo"),
            ("OS_INTERFACE", "internal"),
        ]);
        let cloud = discover_with(None, &vars).unwrap().unwrap();
        assert_eq!(cloud.region.as_deref(), Some("RegionTwo"));
        assert_eq!(cloud.interface, "internal");
        assert_eq!(
            cloud.auth,
            Auth::Password {
                user: Named::Name("admin".into()),
                user_domain: Named::Name("Default".into()),
                password: Secret("s3cret".into()),
                project: Some(Named::Name("admin".into())),
                project_domain: Named::Id("default".into()),
            }
        );
        assert!(!format!("{cloud:?}").contains("s3cret"), "Debug hides it");
        let app = env_of(&[
            ("OS_AUTH_URL", "http://keystone:5000/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "abc"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "xyz"),
            ("OS_AUTH_TYPE", "v3applicationcredential"),
        ]);
        let cloud = discover_with(None, &app).unwrap().unwrap();
        assert!(
            matches!(cloud.auth, Auth::ApplicationCredential { id: Some(ref id), .. } if id == "abc")
        );
    }

    #[test]
    fn finds_the_cloud_in_clouds_yaml_with_secure_yaml_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("clouds.yaml"),
            "clouds:\n  prod:\n    auth:\n      auth_url: https://keystone.example:5000\n      username: mirror\n      project_name: service\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    interface: internal\n    cacert: /etc/ssl/ca.pem\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("secure.yaml"),
            "clouds:\n  prod:\n    auth:\n      password: 'p: w#1'\n",
        )
        .unwrap();
        let vars = env_of(&[(
            "OS_CLIENT_CONFIG_FILE",
            dir.path().join("clouds.yaml").to_str().unwrap(),
        )]);
        let cloud = discover_with(Some("prod"), &vars).unwrap().unwrap();
        assert_eq!(cloud.auth_url, "https://keystone.example:5000");
        assert_eq!(cloud.interface, "internal");
        assert_eq!(cloud.ca_cert, Some(PathBuf::from("/etc/ssl/ca.pem")));
        assert!(matches!(&cloud.auth, Auth::Password { password, .. } if password.0 == "p: w#1"));
        assert!(cloud.name.starts_with("prod"));

        let err = discover_with(Some("staging"), &vars).unwrap_err();
        assert_eq!(err.kind, crate::error::Kind::Setup);
        assert!(err.message.contains("no cloud named \"staging\""), "{err}");
    }

    #[test]
    fn a_missing_clouds_yaml_or_field_is_a_setup_error_naming_it() {
        let vars = env_of(&[
            ("OS_CLIENT_CONFIG_FILE", "/nonexistent/clouds.yaml"),
            ("HOME", "/nonexistent"),
        ]);
        let err = discover_with(Some("prod"), &vars).unwrap_err();
        assert!(err.message.contains("/nonexistent/clouds.yaml"), "{err}");
        let vars = env_of(&[("OS_AUTH_URL", "http://k:5000/v3"), ("OS_USERNAME", "u")]);
        let err = discover_with(None, &vars).unwrap_err();
        assert!(err.message.contains("no password"), "{err}");
    }
}
