//! Where the S3 backend's credentials, region and endpoint come from: the
//! AWS CLI's sources in its order — the environment, the shared config and
//! credentials files (static keys, `role_arn` with `source_profile` or
//! `credential_source`, `credential_process`, SSO), a web identity token
//! file (how CI jobs and EKS pods authenticate by OIDC), the ECS container
//! endpoint — and the EC2 instance metadata service only when the
//! configuration asks for it ([`CredentialSources::Instance`], or an
//! explicit `AWS_EC2_METADATA_SERVICE_ENDPOINT`): silt never probes a
//! link-local address on its own.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::provider_config::ProviderConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_sdk_s3::config::Region;

use super::S3Config;

/// Which sources the credential chain tries beyond the AWS CLI's usual
/// ones (`[datastore.s3] credentials`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialSources {
    /// The environment, the profile files, a web identity token file, the
    /// ECS container endpoint. Never the EC2 instance metadata service
    /// (unless `AWS_EC2_METADATA_SERVICE_ENDPOINT` names one).
    #[default]
    Standard,
    /// Those, then the EC2 instance metadata service (IMDSv2): on an EC2
    /// instance whose role grants the bucket.
    Instance,
}

/// The variable that names the instance metadata service's endpoint.
const IMDS_ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";

/// True when the chain may ask the EC2 instance metadata service.
fn instance_metadata(config: &S3Config) -> bool {
    let disabled = std::env::var("AWS_EC2_METADATA_DISABLED")
        .is_ok_and(|value| value.eq_ignore_ascii_case("true"));
    !disabled
        && (config.credentials == CredentialSources::Instance
            || std::env::var_os(IMDS_ENDPOINT).is_some())
}

/// The sources the chain tries for `config`, in order, as the error that
/// none gave credentials names them.
pub fn sources(config: &S3Config) -> Vec<&'static str> {
    let mut sources = vec![
        "the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
        "the profile files (~/.aws/credentials and ~/.aws/config, profile AWS_PROFILE or [datastore.s3] profile)",
        "a web identity token file (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)",
        "the ECS container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI)",
    ];
    if instance_metadata(config) {
        sources.push("the EC2 instance metadata service");
    }
    sources
}

/// The credential chain for `config` (see the module's doc). Nothing is
/// read until the first request needs credentials.
pub(super) fn chain(config: &S3Config, region: &Region) -> CredentialsProviderChain {
    let conf = ProviderConfig::default().with_region(Some(region.clone()));
    let mut profile = ProfileFileCredentialsProvider::builder().configure(&conf);
    if let Some(name) = &config.profile {
        profile = profile.profile_name(name);
    }
    let chain = CredentialsProviderChain::first_try(
        "environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else("profile", profile.build())
    .or_else(
        "web identity token",
        WebIdentityTokenCredentialsProvider::builder()
            .configure(&conf)
            .build(),
    )
    .or_else(
        "ECS container",
        EcsCredentialsProvider::builder().configure(&conf).build(),
    );
    if instance_metadata(config) {
        chain.or_else(
            "EC2 instance metadata",
            ImdsCredentialsProvider::builder().configure(&conf).build(),
        )
    } else {
        chain
    }
}

/// The region as the AWS CLI finds it: `[datastore.s3] region`, else
/// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's `region`,
/// else `us-east-1`. (Never the instance metadata service.)
pub(super) fn region(config: &S3Config) -> Region {
    let named = config
        .region
        .clone()
        .or_else(|| non_empty_env("AWS_REGION"))
        .or_else(|| non_empty_env("AWS_DEFAULT_REGION"));
    Region::new(
        named
            .or_else(|| profile_region(config.profile.as_deref()))
            .unwrap_or_else(|| "us-east-1".to_owned()),
    )
}

/// The endpoint: `[datastore.s3] endpoint`, else `AWS_ENDPOINT_URL_S3`,
/// else `AWS_ENDPOINT_URL` (none: AWS itself).
pub(super) fn endpoint(config: &S3Config) -> Option<String> {
    config
        .endpoint
        .clone()
        .or_else(|| non_empty_env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| non_empty_env("AWS_ENDPOINT_URL"))
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The `region` of the selected profile in the shared config files.
fn profile_region(profile: Option<&str>) -> Option<String> {
    let mut builder = ProfileFileRegionProvider::builder();
    if let Some(name) = profile {
        builder = builder.profile_name(name);
    }
    let provider = builder.build();
    ready_now(provider.region())
        .flatten()
        .map(|region| region.to_string())
}

/// The output of a future that completes without waiting: the profile
/// provider's files are read with blocking I/O inside its `async fn`, so
/// its first poll finishes. `None` should it ever wait (then the caller
/// falls back to its default rather than block a runtime thread).
fn ready_now<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(credentials: CredentialSources) -> S3Config {
        S3Config {
            bucket: "b".to_owned(),
            prefix: String::new(),
            region: Some("eu-west-1".to_owned()),
            endpoint: None,
            path_style: None,
            profile: None,
            credentials,
            multipart_threshold_mib: None,
            part_size_mib: None,
            parts_in_flight: None,
        }
    }

    #[test]
    fn instance_metadata_is_a_source_only_when_asked_for() {
        // The test process never sets AWS_EC2_METADATA_SERVICE_ENDPOINT.
        assert!(std::env::var_os(IMDS_ENDPOINT).is_none());
        let standard = sources(&config(CredentialSources::Standard));
        assert_eq!(standard.len(), 4);
        assert!(!standard.iter().any(|s| s.contains("instance metadata")));
        let instance = sources(&config(CredentialSources::Instance));
        assert_eq!(instance.last(), Some(&"the EC2 instance metadata service"));
    }

    #[test]
    fn the_configured_region_and_endpoint_come_first() {
        let mut config = config(CredentialSources::Standard);
        config.endpoint = Some("http://127.0.0.1:9".to_owned());
        assert_eq!(region(&config).as_ref(), "eu-west-1");
        assert_eq!(endpoint(&config).as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn a_settings_file_is_parsed_as_kebab_case() {
        let parsed: S3Config =
            toml::from_str("bucket = \"b\"\ncredentials = \"instance\"\n").expect("parses");
        assert_eq!(parsed.credentials, CredentialSources::Instance);
        let parsed: S3Config = toml::from_str("bucket = \"b\"\n").expect("parses");
        assert_eq!(parsed.credentials, CredentialSources::Standard);
    }
}
