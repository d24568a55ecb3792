//! Opening an `s3://bucket/prefix` store: settings from the standard AWS
//! environment variables and shared profile files, bounded timeouts and
//! retries, then an [`ObjectBlobStore`] on `object_store`'s S3 client.
//!
//! Settings, first found wins (documented in `docs/cluster.md`):
//!
//! * credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//!   `AWS_SESSION_TOKEN`, else the profile `AWS_PROFILE` (default `default`)
//!   in `AWS_SHARED_CREDENTIALS_FILE` (`~/.aws/credentials`) or
//!   `AWS_CONFIG_FILE` (`~/.aws/config`), else `object_store`'s web-identity,
//!   container and instance-metadata providers;
//! * region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else
//!   `us-east-1`;
//! * endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's
//!   `endpoint_url`, else AWS. An `http://` endpoint allows plain HTTP;
//! * `ENGINE_S3_CONNECT_TIMEOUT` (5s), `ENGINE_S3_TIMEOUT` (30s per request;
//!   a request moves at most 8 MiB), `ENGINE_S3_RETRIES` (3) and
//!   `ENGINE_S3_RETRY_TIMEOUT` (60s, no retry starts after it).

use std::path::Path;
use std::sync::Arc;

use super::{BlobStore, StoreError, StoreSpec};

#[cfg(not(feature = "s3"))]
pub(super) fn open(spec: &StoreSpec, _: &str, _: &str, _: &Path) -> Result<Arc<dyn BlobStore>, StoreError> {
    Err(StoreError::Open {
        store: spec.to_string(),
        message: "this engine was built without S3 support (cargo feature `s3`)".into(),
    })
}

#[cfg(feature = "s3")]
pub(super) fn open(
    spec: &StoreSpec,
    bucket: &str,
    prefix: &str,
    cache_dir: &Path,
) -> Result<Arc<dyn BlobStore>, StoreError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
    use object_store::{BackoffConfig, ClientOptions, RetryConfig};

    let name = spec.to_string();
    let fail = |message: String| StoreError::Open { store: name.clone(), message };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let limits = Limits::from_env().map_err(fail)?;
    let profile = Profile::load(&env).map_err(fail)?;

    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if env("AWS_ACCESS_KEY_ID").is_none() {
        for (k, key) in [
            ("aws_access_key_id", AmazonS3ConfigKey::AccessKeyId),
            ("aws_secret_access_key", AmazonS3ConfigKey::SecretAccessKey),
            ("aws_session_token", AmazonS3ConfigKey::Token),
        ] {
            if let Some(v) = profile.get(k) {
                b = b.with_config(key, v);
            }
        }
    }
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).or_else(|| profile.get("region"));
    b = b.with_region(region.unwrap_or_else(|| "us-east-1".into()));
    let endpoint =
        env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")).or_else(|| profile.get("endpoint_url"));
    let mut allow_http = env("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if let Some(ep) = &endpoint {
        allow_http |= ep.starts_with("http://");
        b = b.with_endpoint(ep);
    }
    let client = ClientOptions::new()
        .with_connect_timeout(limits.connect_timeout)
        .with_timeout(limits.timeout)
        .with_allow_http(allow_http);
    b = b
        .with_client_options(client)
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: limits.retries,
            retry_timeout: limits.retry_timeout,
        })
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    let s3 = b.build().map_err(|e| fail(super::object::explain(&e)))?;
    let identity = format!("{} {name}", endpoint.as_deref().unwrap_or("aws"));
    let store = super::object::ObjectBlobStore::open(Arc::new(s3), prefix, &name, &identity, cache_dir)?;
    Ok(Arc::new(store))
}

/// Bounds on every request, from `ENGINE_S3_*`.
#[cfg(feature = "s3")]
struct Limits {
    connect_timeout: std::time::Duration,
    timeout: std::time::Duration,
    retries: usize,
    retry_timeout: std::time::Duration,
}

#[cfg(feature = "s3")]
impl Limits {
    fn from_env() -> Result<Limits, String> {
        use std::time::Duration;
        let dur = |k: &str, default: Duration| -> Result<Duration, String> {
            match std::env::var(k) {
                Ok(v) => crate::units::parse_duration(&v).map_err(|e| format!("{k}=`{v}`: {e}")),
                Err(_) => Ok(default),
            }
        };
        let retries = match std::env::var("ENGINE_S3_RETRIES") {
            Ok(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 100)
                .ok_or_else(|| format!("ENGINE_S3_RETRIES=`{v}`: expected a whole number from 0 to 100"))?,
            Err(_) => 3,
        };
        Ok(Limits {
            connect_timeout: dur("ENGINE_S3_CONNECT_TIMEOUT", Duration::from_secs(5))?,
            timeout: dur("ENGINE_S3_TIMEOUT", Duration::from_secs(30))?,
            retries,
            retry_timeout: dur("ENGINE_S3_RETRY_TIMEOUT", Duration::from_secs(60))?,
        })
    }
}

/// The settings of one profile from the shared AWS files.
#[cfg(feature = "s3")]
#[derive(Default, Debug)]
struct Profile(std::collections::HashMap<String, String>);

#[cfg(feature = "s3")]
impl Profile {
    fn get(&self, k: &str) -> Option<String> {
        self.0.get(k).cloned()
    }

    /// The profile `AWS_PROFILE` (else `default`) from the credentials file,
    /// then the config file. Missing files are fine; a profile named
    /// explicitly that is in neither file is an error.
    fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Profile, String> {
        let home = env("HOME").map(std::path::PathBuf::from);
        let file = |var: &str, name: &str| {
            env(var).map(std::path::PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
        };
        let named = env("AWS_PROFILE").or_else(|| env("AWS_DEFAULT_PROFILE"));
        let profile = named.clone().unwrap_or_else(|| "default".into());
        let mut found = false;
        let mut out = Profile::default();
        let sources: [(Option<std::path::PathBuf>, String); 2] = [
            (file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), profile.clone()),
            (
                file("AWS_CONFIG_FILE", "config"),
                if profile == "default" { "default".into() } else { format!("profile {profile}") },
            ),
        ];
        for (path, section) in sources {
            let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else { continue };
            if let Some(values) = ini_section(&text, &section) {
                found = true;
                for (k, v) in values {
                    out.0.entry(k).or_insert(v);
                }
            }
        }
        if !found && let Some(p) = named {
            return Err(format!(
                "AWS_PROFILE=`{p}` names no profile in the AWS credentials or config file (~/.aws/credentials, ~/.aws/config)"
            ));
        }
        Ok(out)
    }
}

#[cfg(feature = "s3")]
/// The `key = value` pairs of `[section]` in an INI text, if it has one.
fn ini_section(text: &str, section: &str) -> Option<Vec<(String, String)>> {
    let mut inside = false;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            if inside {
                found.get_or_insert_with(Vec::new);
            }
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            found.get_or_insert_with(Vec::new).push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    found
}

#[cfg(all(test, feature = "s3"))]
mod tests {
    use super::*;

    #[test]
    fn reads_a_section_of_an_aws_ini_file() {
        let text = "# comment\n[default]\nregion = eu-west-1\n\n[profile dev]\naws_access_key_id=AKIA1\nAWS_Secret_Access_Key = s3cr=t\n";
        assert_eq!(ini_section(text, "default"), Some(vec![("region".to_string(), "eu-west-1".to_string())]));
        assert_eq!(
            ini_section(text, "profile dev"),
            Some(vec![
                ("aws_access_key_id".to_string(), "AKIA1".to_string()),
                ("aws_secret_access_key".to_string(), "s3cr=t".to_string())
            ])
        );
        assert_eq!(ini_section(text, "dev"), None);
    }
}
