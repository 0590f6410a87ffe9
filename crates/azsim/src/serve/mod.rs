//! `azsim serve`: the ARM face. Azure Resource Manager's REST API (and the two Entra ID
//! endpoints a service-principal login needs) over HTTPS on 127.0.0.1, answering from the same
//! world store as the CLI face, so that the real azure-cli can run against the world.
//!
//! - [`tls`]: the certificate it generates; [`http`]: the HTTP/1.1 it speaks;
//! - [`auth`]: OpenID configuration, token endpoint, cloud metadata;
//! - [`routes`]: ARM resources over the store; [`wire`]: the wire shapes; [`lro`]: 202 and
//!   polling for SQL changes.
//!
//! Every request is logged to the invocation log (`via: "arm"`), and the world's faults fire
//! on the requests that serve a matching az command (see [`crate::faults`]).

pub mod auth;
pub mod http;
pub mod lro;
pub mod routes;
pub mod tls;
pub mod wire;

use crate::errors::{self, CommandError};
use crate::store::{Header, Store};
use crate::world::Subscription;
use crate::{faults, invocation_log, synth};
use anyhow::{Context, Result};
use http::{Reply, Request, Response};
use serde_json::{Value, json};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How `azsim serve` was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub world: PathBuf,
    /// 0 picks a free port.
    pub port: u16,
    pub port_file: Option<PathBuf>,
    pub cert_out: Option<PathBuf>,
    /// Polls of each SQL operation that answer `InProgress` before the result.
    pub lro_polls: u32,
    /// The `Retry-After` (seconds) of 202 answers and in-progress polls. azure-core falls back
    /// to its 30 s default for 0, so the least useful value is 1.
    pub retry_after: u64,
    /// Database lists omit `encryptionProtector` (a GET of one database still carries it).
    pub db_list_omits_protector: bool,
}

/// The state every connection shares.
pub struct Server {
    world: PathBuf,
    log: PathBuf,
    base: String,
    ops: lro::Operations,
    retry_after: u64,
    list_db_protector: bool,
}

/// Writes a file whole or not at all (a reader polling for it never sees half of it).
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Binds, writes the CA certificate and the port, and serves until killed.
pub fn run(options: Options) -> Result<()> {
    // Fail before listening when the world cannot be read.
    Store::open(&options.world)?.db().header()?;
    let listener = TcpListener::bind(("127.0.0.1", options.port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", options.port))?;
    let port = listener.local_addr()?.port();
    let tls = tls::generate()?;
    if let Some(path) = &options.cert_out {
        write_atomically(path, &tls.ca_pem)?;
    }
    let base = format!("https://127.0.0.1:{port}");
    if let Some(path) = &options.port_file {
        write_atomically(path, &format!("{port}\n"))?;
    }
    let server = Arc::new(Server {
        log: invocation_log::path(&options.world),
        world: options.world,
        base: base.clone(),
        ops: lro::Operations::new(options.lro_polls),
        retry_after: options.retry_after,
        list_db_protector: !options.db_list_omits_protector,
    });
    println!("{base}");
    std::io::stdout().flush()?;
    eprintln!("azsim: serving the ARM API on {base} (Ctrl-C to stop)");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let server = Arc::clone(&server);
        let config = Arc::clone(&tls.config);
        std::thread::spawn(move || {
            let _ = serve_tls(stream, config, &server);
        });
    }
    Ok(())
}

fn serve_tls(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    server: &Server,
) -> std::io::Result<()> {
    // An idle keep-alive connection is closed after two minutes: no thread lingers forever.
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_nodelay(true)?;
    let connection = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let tls = rustls::StreamOwned::new(connection, stream);
    http::serve_connection(tls, |request| server.handle(request))
}

fn arm_error(code: &str, message: impl Into<String>, status: u16) -> Response {
    routes::error_response(&CommandError::service(code, message), Some(status))
}

/// Splits a path into decoded segments.
fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(http::percent_decode)
        .collect()
}

impl Server {
    /// Answers one request (every request is logged first).
    pub fn handle(&self, request: Request) -> Reply {
        let segs = segments(&request.path);
        let method = request.method.to_ascii_uppercase();
        let resource = match segs.as_slice() {
            [s, _, rest @ ..] if s.eq_ignore_ascii_case("subscriptions") && !rest.is_empty() => {
                routes::parse(rest)
            }
            _ => None,
        };
        let command = resource.as_ref().and_then(|r| routes::command(r, &method));
        let mutating = command.is_some() && matches!(method.as_str(), "PUT" | "PATCH" | "POST");
        let target = request.target();
        if let Err(e) = invocation_log::append_arm(
            &self.log,
            synth::unix_seconds(),
            &method,
            &target,
            command,
            mutating,
        ) {
            return Reply::Send(arm_error(
                "InternalServerError",
                format!("azsim: {e:#}"),
                500,
            ));
        }
        match self.answer(&request, &method, &segs, resource, command) {
            Ok(reply) => reply,
            Err(e) => Reply::Send(routes::error_response(&e, None)),
        }
    }

    fn answer(
        &self,
        request: &Request,
        method: &str,
        segs: &[String],
        resource: Option<routes::Resource>,
        command: Option<&str>,
    ) -> Result<Reply, CommandError> {
        let words: Vec<&str> = segs.iter().map(String::as_str).collect();
        let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let get = method == "GET";
        let mut store = Store::open(&self.world)?;
        let header = store.db().header()?;
        let tenant = header.tenant_id.clone();
        if let Some(response) = self.sign_in(request, method, &words, &lower, &header) {
            return Ok(Reply::Send(response));
        }
        if !has_bearer_token(request) {
            return Ok(Reply::Send(self.authentication_failed(&tenant)));
        }
        let Some(api_version) = request.query_param("api-version") else {
            return Ok(Reply::Send(arm_error(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
                400,
            )));
        };
        let subs = store.db().subscriptions()?;
        if let Some(response) = tenant_lists(&lower, get, &subs, &tenant) {
            return Ok(Reply::Send(response));
        }
        let Some(sub_id) = (match lower.as_slice() {
            ["subscriptions", _, ..] => Some(words[1]),
            _ => None,
        }) else {
            return Err(no_route(method, request));
        };
        let sub = find_subscription(&subs, sub_id)?;
        if segs.len() == 2 && get {
            return Ok(Reply::Send(Response::json(
                200,
                &wire::subscription(&sub, &tenant),
            )));
        }
        let Some(resource) = resource else {
            return Err(no_route(method, request));
        };
        let fired = fire_faults(&store, &header, method, segs, command)?;
        if let Some(e) = fired.error {
            return Ok(Reply::Send(routes::error_response(&e, fired.error_status)));
        }
        let mut ctx = routes::Ctx {
            store: &mut store,
            sub: &sub,
            ops: &self.ops,
            base: &self.base,
            api_version: &api_version,
            retry_after: self.retry_after,
            list_db_protector: self.list_db_protector,
        };
        let reply = ctx.handle(method, &resource, request)?;
        if fired.crash {
            return Ok(Reply::Drop);
        }
        Ok(match reply {
            Reply::Send(mut response) if fired.malformed => {
                let text = String::from_utf8_lossy(&response.body).into_owned();
                response.body = faults::tear(&text).into_bytes();
                Reply::Send(response)
            }
            other => other,
        })
    }

    /// The Entra ID and metadata endpoints a login reads before it has a token, so they need
    /// none. None: the request is for something else.
    fn sign_in(
        &self,
        request: &Request,
        method: &str,
        words: &[&str],
        lower: &[&str],
        header: &Header,
    ) -> Option<Response> {
        let tenant = &header.tenant_id;
        match (lower, method == "GET") {
            ([_, "v2.0", ".well-known", "openid-configuration"], true)
            | ([_, ".well-known", "openid-configuration"], true) => {
                Some(auth::openid_configuration(&self.base, words[0], tenant))
            }
            ([_, "oauth2", "v2.0", "token"], false) | ([_, "oauth2", "token"], false)
                if method == "POST" =>
            {
                Some(auth::token(words[0], tenant, request))
            }
            (["common", "discovery", "instance"], true) => {
                Some(auth::instance_discovery(&self.base, request))
            }
            (["metadata", "endpoints"], true) => Some(auth::metadata_endpoints(
                &self.base,
                request.query_param("api-version").as_deref(),
                &header.settings.cloud_name,
            )),
            _ => None,
        }
    }

    /// ARM's 401 for a request without a bearer token, with the challenge that tells az where
    /// to sign in.
    fn authentication_failed(&self, tenant: &str) -> Response {
        arm_error(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            401,
        )
        .with_header(
            "WWW-Authenticate",
            format!(
                "Bearer authorization_uri=\"{}/{tenant}\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header.\"",
                self.base
            ),
        )
    }
}

/// Any bearer token will do: azsim checks that az sends one, not what it holds.
fn has_bearer_token(request: &Request) -> bool {
    request
        .header("authorization")
        .is_some_and(|a| a.len() > 7 && a[..7].eq_ignore_ascii_case("bearer "))
}

/// The tenant-level lists (`/tenants`, `/subscriptions`). None: the request is for something
/// else.
fn tenant_lists(
    lower: &[&str],
    get: bool,
    subs: &[Subscription],
    tenant: &str,
) -> Option<Response> {
    match lower {
        ["tenants"] if get => Some(Response::json(
            200,
            &json!({"value": [wire::tenant(tenant)]}),
        )),
        ["subscriptions"] if get => {
            let value: Vec<Value> = subs.iter().map(|s| wire::subscription(s, tenant)).collect();
            let count = value.len();
            Some(Response::json(
                200,
                &json!({"value": value, "count": {"type": "Total", "value": count}}),
            ))
        }
        _ => None,
    }
}

fn find_subscription(subs: &[Subscription], id: &str) -> Result<Subscription, CommandError> {
    subs.iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .cloned()
        .ok_or_else(|| {
            CommandError::not_found(
                "SubscriptionNotFound",
                format!("The subscription '{id}' could not be found."),
            )
        })
}

/// Fires the faults of the az command a request serves and waits out the world's latency and
/// the faults' delays. A request that serves no command (sign-in, operation polls) neither
/// fires faults nor waits.
fn fire_faults(
    store: &Store,
    header: &Header,
    method: &str,
    segs: &[String],
    command: Option<&str>,
) -> Result<faults::Outcome, CommandError> {
    let Some(words) = command else {
        return Ok(faults::Outcome::default());
    };
    let words: Vec<&str> = words.split(' ').collect();
    let argv = [method.to_string(), segs.join("/")];
    let fired = faults::fire(&store.db(), &words, &argv)?;
    std::thread::sleep(
        synth::latency(header.settings.latency_ms, header.settings.jitter_ms) + fired.delay,
    );
    Ok(fired)
}

/// ARM's answer for a path no resource provider serves.
fn no_route(method: &str, request: &Request) -> CommandError {
    let path = http::percent_decode(&request.path);
    let provider = path
        .split('/')
        .skip_while(|s| !s.eq_ignore_ascii_case("providers"))
        .nth(1)
        .unwrap_or_default()
        .to_string();
    if provider.is_empty() {
        CommandError::not_found("NotFound", format!("azsim serves no {method} on '{path}'."))
    } else {
        errors::CommandError::not_found(
            "InvalidResourceType",
            format!(
                "The resource type for '{path}' could not be found in the namespace '{provider}' (azsim serves storage accounts and SQL servers only)."
            ),
        )
    }
}
