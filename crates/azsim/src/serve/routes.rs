//! Requests to ARM resources: which resource a path names, which az command the request serves
//! (for fault matching and the invocation log), and the handlers over the world store.

use super::http::{Reply, Request, Response};
use super::lro::{Operation, Operations};
use super::wire;
use crate::commands::encryption_scope as scope;
use crate::commands::resource_group;
use crate::commands::sql_db::set_tde;
use crate::commands::sql_db_keys::{apply_change, revert_protector};
use crate::commands::sql_server::{find_key, register_key, set_protector};
use crate::errors::{self, CommandError};
use crate::store::{
    Db, Kind, Loc, Store, database_loc, managed_instance_loc, scope_loc, server_loc, storage_loc,
};
use crate::world::{SqlDatabase, SqlManagedInstance, SqlServer, StorageAccount, Subscription};
use serde_json::{Value, json};

/// A resource (or collection) path, with names decoded and in the case the caller sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    /// A resource group: only `HEAD` (`az group exists`) is served.
    Group {
        name: String,
    },
    StorageAccounts {
        rg: Option<String>,
    },
    StorageAccount {
        rg: String,
        name: String,
    },
    EncryptionScopes {
        rg: String,
        account: String,
    },
    EncryptionScope {
        rg: String,
        account: String,
        name: String,
    },
    Servers {
        rg: Option<String>,
    },
    Server {
        rg: String,
        name: String,
    },
    Protectors {
        rg: String,
        server: String,
    },
    Protector {
        rg: String,
        server: String,
        name: String,
    },
    Keys {
        rg: String,
        server: String,
    },
    Key {
        rg: String,
        server: String,
        name: String,
    },
    Databases {
        rg: String,
        server: String,
    },
    Database {
        rg: String,
        server: String,
        name: String,
    },
    /// A database's encryption protector action `.../encryptionProtector/{name}/revert`.
    DatabaseProtectorRevert {
        rg: String,
        server: String,
        db: String,
        name: String,
    },
    /// A database's geo-replication links (`az sql db update` reads them; azsim has none).
    ReplicationLinks {
        rg: String,
        server: String,
        db: String,
    },
    Tdes {
        rg: String,
        server: String,
        db: String,
    },
    Tde {
        rg: String,
        server: String,
        db: String,
        name: String,
    },
    ManagedInstances {
        rg: Option<String>,
    },
    ManagedInstance {
        rg: String,
        name: String,
    },
    MiProtectors {
        rg: String,
        mi: String,
    },
    MiProtector {
        rg: String,
        mi: String,
        name: String,
    },
    MiKeys {
        rg: String,
        mi: String,
    },
    MiKey {
        rg: String,
        mi: String,
        name: String,
    },
    /// An async operation status (`...AzureAsyncOperation/{id}`) or result
    /// (`...OperationResults/{id}`) URL that a 202 handed out.
    Operation {
        id: String,
        result: bool,
    },
}

fn is(segment: &str, word: &str) -> bool {
    segment.eq_ignore_ascii_case(word)
}

/// Parses the part after `/subscriptions/{id}/`. None: not a route azsim serves.
pub fn parse(rest: &[String]) -> Option<Resource> {
    let s: Vec<&str> = rest.iter().map(String::as_str).collect();
    let storage = |p: &str, t: &str| is(p, "Microsoft.Storage") && is(t, "storageAccounts");
    let sql = |p: &str, t: &str| is(p, "Microsoft.Sql") && is(t, "servers");
    let mi = |p: &str, t: &str| is(p, "Microsoft.Sql") && is(t, "managedInstances");
    let owned = |x: &str| x.to_string();
    Some(match s.as_slice() {
        [g, rg] if is(g, "resourceGroups") => Resource::Group { name: owned(rg) },
        ["providers", p, t] if storage(p, t) => Resource::StorageAccounts { rg: None },
        ["providers", p, t] if sql(p, t) => Resource::Servers { rg: None },
        ["providers", p, t] if mi(p, t) => Resource::ManagedInstances { rg: None },
        ["providers", p, "locations", _, kind, id] if is(p, "Microsoft.Sql") => {
            return parse_operation(kind, id);
        }
        [g, rg, "providers", p, t] if is(g, "resourceGroups") && storage(p, t) => {
            Resource::StorageAccounts {
                rg: Some(owned(rg)),
            }
        }
        [g, rg, "providers", p, t, name] if is(g, "resourceGroups") && storage(p, t) => {
            Resource::StorageAccount {
                rg: owned(rg),
                name: owned(name),
            }
        }
        [g, rg, "providers", p, t, a, c]
            if is(g, "resourceGroups") && storage(p, t) && is(c, "encryptionScopes") =>
        {
            Resource::EncryptionScopes {
                rg: owned(rg),
                account: owned(a),
            }
        }
        [g, rg, "providers", p, t, a, c, n]
            if is(g, "resourceGroups") && storage(p, t) && is(c, "encryptionScopes") =>
        {
            Resource::EncryptionScope {
                rg: owned(rg),
                account: owned(a),
                name: owned(n),
            }
        }
        [g, rg, "providers", p, t] if is(g, "resourceGroups") && sql(p, t) => Resource::Servers {
            rg: Some(owned(rg)),
        },
        [g, rg, "providers", p, t, srv, rest @ ..] if is(g, "resourceGroups") && sql(p, t) => {
            return parse_server_path(owned(rg), owned(srv), rest);
        }
        [g, rg, "providers", p, t] if is(g, "resourceGroups") && mi(p, t) => {
            Resource::ManagedInstances {
                rg: Some(owned(rg)),
            }
        }
        [g, rg, "providers", p, t, m, rest @ ..] if is(g, "resourceGroups") && mi(p, t) => {
            return parse_instance_path(owned(rg), owned(m), rest);
        }
        _ => return None,
    })
}

/// The operation URLs a 202 hands out: `...AzureAsyncOperation/{id}` (the status) or
/// `...OperationResults/{id}` (the result).
fn parse_operation(kind: &str, id: &str) -> Option<Resource> {
    let kind = kind.to_ascii_lowercase();
    if kind.ends_with("azureasyncoperation") {
        Some(Resource::Operation {
            id: id.to_string(),
            result: false,
        })
    } else if kind.ends_with("operationresults") {
        Some(Resource::Operation {
            id: id.to_string(),
            result: true,
        })
    } else {
        None
    }
}

/// A SQL server (`rest` empty) or what is under it: its encryption protector, its keys, its
/// databases and their TDE configuration.
fn parse_server_path(rg: String, server: String, rest: &[&str]) -> Option<Resource> {
    let owned = |x: &str| x.to_string();
    Some(match rest {
        [] => Resource::Server { rg, name: server },
        [c] if is(c, "encryptionProtector") => Resource::Protectors { rg, server },
        [c, n] if is(c, "encryptionProtector") => Resource::Protector {
            rg,
            server,
            name: owned(n),
        },
        [c] if is(c, "keys") => Resource::Keys { rg, server },
        [c, n] if is(c, "keys") => Resource::Key {
            rg,
            server,
            name: owned(n),
        },
        [c] if is(c, "databases") => Resource::Databases { rg, server },
        [c, n] if is(c, "databases") => Resource::Database {
            rg,
            server,
            name: owned(n),
        },
        [c, d, t, n, a]
            if is(c, "databases") && is(t, "encryptionProtector") && is(a, "revert") =>
        {
            Resource::DatabaseProtectorRevert {
                rg,
                server,
                db: owned(d),
                name: owned(n),
            }
        }
        [c, d, t] if is(c, "databases") && is(t, "replicationLinks") => {
            Resource::ReplicationLinks {
                rg,
                server,
                db: owned(d),
            }
        }
        [c, d, t] if is(c, "databases") && is(t, "transparentDataEncryption") => Resource::Tdes {
            rg,
            server,
            db: owned(d),
        },
        [c, d, t, n] if is(c, "databases") && is(t, "transparentDataEncryption") => Resource::Tde {
            rg,
            server,
            db: owned(d),
            name: owned(n),
        },
        _ => return None,
    })
}

/// A managed instance (`rest` empty) or what is under it: its encryption protector and keys.
fn parse_instance_path(rg: String, mi: String, rest: &[&str]) -> Option<Resource> {
    let owned = |x: &str| x.to_string();
    Some(match rest {
        [] => Resource::ManagedInstance { rg, name: mi },
        [c] if is(c, "encryptionProtector") => Resource::MiProtectors { rg, mi },
        [c, n] if is(c, "encryptionProtector") => Resource::MiProtector {
            rg,
            mi,
            name: owned(n),
        },
        [c] if is(c, "keys") => Resource::MiKeys { rg, mi },
        [c, n] if is(c, "keys") => Resource::MiKey {
            rg,
            mi,
            name: owned(n),
        },
        _ => return None,
    })
}

/// The az command a request serves: what a fault's `command` matches and the log records.
/// Requests az makes for bookkeeping (operation polls) serve no command.
pub fn command(resource: &Resource, method: &str) -> Option<&'static str> {
    let get = method.eq_ignore_ascii_case("GET");
    let change = method.eq_ignore_ascii_case("PUT") || method.eq_ignore_ascii_case("PATCH");
    Some(match resource {
        Resource::Group { .. } if method.eq_ignore_ascii_case("HEAD") => "group exists",
        Resource::StorageAccounts { .. } if get => "storage account list",
        Resource::StorageAccount { .. } if get => "storage account show",
        Resource::StorageAccount { .. } if change => "storage account update",
        Resource::EncryptionScopes { .. } if get => "storage account encryption-scope list",
        Resource::EncryptionScope { .. } if get => "storage account encryption-scope show",
        Resource::EncryptionScope { .. } if method.eq_ignore_ascii_case("PATCH") => {
            "storage account encryption-scope update"
        }
        Resource::EncryptionScope { .. } if method.eq_ignore_ascii_case("PUT") => {
            "storage account encryption-scope create"
        }
        Resource::Servers { .. } if get => "sql server list",
        Resource::Server { .. } if get => "sql server show",
        Resource::Protectors { .. } | Resource::Protector { .. } if get => {
            "sql server tde-key show"
        }
        Resource::Protector { .. } if change => "sql server tde-key set",
        Resource::Keys { .. } if get => "sql server key list",
        Resource::Key { .. } if get => "sql server key show",
        Resource::Key { .. } if change => "sql server key create",
        Resource::Databases { .. } if get => "sql db list",
        Resource::Database { .. } if get => "sql db show",
        Resource::Database { .. } if method.eq_ignore_ascii_case("PUT") => "sql db update",
        Resource::DatabaseProtectorRevert { .. } if method.eq_ignore_ascii_case("POST") => {
            "sql db tde key revert"
        }
        Resource::ReplicationLinks { .. } if get => "sql db replica list-links",
        Resource::Tdes { .. } | Resource::Tde { .. } if get => "sql db tde show",
        Resource::Tde { .. } if change => "sql db tde set",
        Resource::ManagedInstances { .. } if get => "sql mi list",
        Resource::ManagedInstance { .. } if get => "sql mi show",
        Resource::MiProtectors { .. } | Resource::MiProtector { .. } if get => {
            "sql mi tde-key show"
        }
        Resource::MiProtector { .. } if change => "sql mi tde-key set",
        Resource::MiKeys { .. } if get => "sql mi key list",
        Resource::MiKey { .. } if get => "sql mi key show",
        Resource::MiKey { .. } if change => "sql mi key create",
        _ => return None,
    })
}

/// What the handlers need besides the request.
pub struct Ctx<'a> {
    pub store: &'a mut Store,
    pub sub: &'a Subscription,
    pub ops: &'a Operations,
    /// `https://127.0.0.1:PORT`, for the URLs of async operations.
    pub base: &'a str,
    pub api_version: &'a str,
    pub retry_after: u64,
    /// Whether database lists carry `encryptionProtector` (see [`wire::database`]).
    pub list_db_protector: bool,
}

/// ARM's error body with the HTTP status Azure uses for the code.
pub fn error_response(e: &CommandError, status: Option<u16>) -> Response {
    let (code, message, exit) = match e {
        CommandError::Service {
            code,
            message,
            exit,
        } => (code.as_str(), message.as_str(), *exit),
        CommandError::Client { message, .. } => ("InternalServerError", message.as_str(), 1),
    };
    let status = status.unwrap_or_else(|| status_for(code, exit));
    let mut response = Response::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    );
    if status == 429 {
        response = response.with_header("Retry-After", "1");
    }
    response
}

/// The status ARM answers an error code with; exit code 3 (az's not-found) means 404.
pub fn status_for(code: &str, exit: i32) -> u16 {
    match code {
        "ResourceNotFound"
        | "ResourceGroupNotFound"
        | "ParentResourceNotFound"
        | "SubscriptionNotFound"
        | "NotFound" => 404,
        "AuthorizationFailed" | "LinkedAuthorizationFailed" | "Forbidden" => 403,
        "AuthenticationFailed" | "InvalidAuthenticationToken" | "ExpiredAuthenticationToken" => 401,
        "TooManyRequests" | "ResourceRequestsThrottled" | "SubscriptionRequestsThrottled" => 429,
        "Conflict" | "AnotherOperationInProgress" => 409,
        "InternalServerError" | "GatewayAuthenticationFailed" | "InternalError" => 500,
        "ServiceUnavailable" => 503,
        "GatewayTimeout" => 504,
        _ if exit == 3 => 404,
        _ => 400,
    }
}

fn ok(value: Value) -> Reply {
    Reply::Send(Response::json(200, &value))
}

fn method_not_allowed(method: &str) -> Result<Reply, CommandError> {
    Err(CommandError::service(
        "MethodNotAllowed",
        format!("The requested method '{method}' is not allowed for this resource."),
    ))
}

fn group(db: &Db, sub: &str, rg: &str) -> Result<(), CommandError> {
    if db.group_exists(sub, rg)? {
        Ok(())
    } else {
        Err(errors::group_not_found(rg))
    }
}

fn account(db: &Db, sub: &str, rg: &str, name: &str) -> Result<StorageAccount, CommandError> {
    group(db, sub, rg)?;
    let loc = Loc {
        sub,
        rg,
        parent: "",
        name,
    };
    db.get(Kind::StorageAccount, loc)?.ok_or_else(|| {
        errors::arm_resource_not_found("Microsoft.Storage/storageAccounts", name, rg)
    })
}

/// A server; `nested` says the request names something under it (ParentResourceNotFound).
fn server(
    db: &Db,
    sub: &str,
    rg: &str,
    name: &str,
    nested: bool,
) -> Result<SqlServer, CommandError> {
    sql_parent(db, (sub, rg, name), nested, Kind::SqlServer, "servers")
}

/// A managed instance; `nested` says the request names something under it.
fn instance(
    db: &Db,
    sub: &str,
    rg: &str,
    name: &str,
    nested: bool,
) -> Result<SqlManagedInstance, CommandError> {
    sql_parent(
        db,
        (sub, rg, name),
        nested,
        Kind::SqlManagedInstance,
        "managedInstances",
    )
}

/// A SQL server or managed instance (`Microsoft.Sql/<arm_type>`) in its group, or ARM's error
/// for it: ParentResourceNotFound when the request names something under it (`nested`).
fn sql_parent<T: serde::de::DeserializeOwned>(
    db: &Db,
    (sub, rg, name): (&str, &str, &str),
    nested: bool,
    kind: Kind,
    arm_type: &str,
) -> Result<T, CommandError> {
    group(db, sub, rg)?;
    let loc = Loc {
        sub,
        rg,
        parent: "",
        name,
    };
    db.get(kind, loc)?.ok_or_else(|| {
        if nested {
            errors::parent_not_found(name)
        } else {
            errors::arm_resource_not_found(&format!("Microsoft.Sql/{arm_type}"), name, rg)
        }
    })
}

fn database(
    db: &Db,
    sub: &str,
    rg: &str,
    server_name: &str,
    name: &str,
) -> Result<SqlDatabase, CommandError> {
    server(db, sub, rg, server_name, true)?;
    let loc = Loc {
        sub,
        rg,
        parent: server_name,
        name,
    };
    db.get(Kind::SqlDatabase, loc)?
        .ok_or_else(|| errors::sql_not_found("Microsoft.Sql/servers/databases", name))
}

/// The only encryption protector and TDE configuration a server or database has is `current`.
fn current(kind: &str, name: &str) -> Result<(), CommandError> {
    if name.eq_ignore_ascii_case("current") {
        Ok(())
    } else {
        Err(errors::sql_not_found(kind, name))
    }
}

fn body_json(request: &Request) -> Result<Value, CommandError> {
    serde_json::from_slice(&request.body).map_err(|_| {
        CommandError::service(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized.",
        )
    })
}

/// A list answer: `{"value": [...]}` (no `nextLink`: one page holds everything).
fn list(items: Vec<Value>) -> Reply {
    ok(json!({ "value": items }))
}

impl Ctx<'_> {
    fn legacy_tde(&self) -> bool {
        self.api_version.starts_with("2014-")
    }

    /// Answers a change that the SQL RP runs as a long-running operation: the change is
    /// already made (or refused) in the store; az learns the outcome by polling.
    fn accepted(
        &self,
        location: &str,
        operation: &str,
        outcome: Result<Value, CommandError>,
    ) -> Reply {
        self.accepted_as(location, operation, operation, outcome)
    }

    /// [`Self::accepted`] where the operation URLs' kind (`{kind}AzureAsyncOperation`) and the
    /// 202 body's `operation` differ, as for managed instances.
    fn accepted_as(
        &self,
        location: &str,
        kind: &str,
        operation: &str,
        outcome: Result<Value, CommandError>,
    ) -> Reply {
        let op = self.ops.start(Operation::new(outcome.map_err(|e| match e {
            CommandError::Service { code, message, .. } => (code, message),
            CommandError::Client { message, .. } => ("InternalServerError".into(), message),
        })));
        let sub = &self.sub.id;
        let prefix = format!(
            "{}/subscriptions/{sub}/providers/Microsoft.Sql/locations/{location}",
            self.base
        );
        let query = format!("api-version={}", self.api_version);
        let response = Response::json(
            202,
            &json!({"operation": operation, "startTime": op.start_time}),
        )
        .with_header(
            "Azure-AsyncOperation",
            format!("{prefix}/{kind}AzureAsyncOperation/{}?{query}", op.id),
        )
        .with_header(
            "Location",
            format!("{prefix}/{kind}OperationResults/{}?{query}", op.id),
        )
        .with_header("Retry-After", self.retry_after.to_string());
        Reply::Send(response)
    }

    /// Handles one resource request.
    pub fn handle(
        &mut self,
        method: &str,
        resource: &Resource,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let get = method.eq_ignore_ascii_case("GET");
        match resource {
            Resource::Group { name } if method.eq_ignore_ascii_case("HEAD") => {
                let found = resource_group::exists(&self.store.db(), &self.sub.id, name)?;
                Ok(Reply::Send(Response::empty(if found { 204 } else { 404 })))
            }
            Resource::StorageAccounts { rg } if get => self.storage_accounts(rg.as_deref()),
            Resource::StorageAccount { rg, name } if get => {
                let sa = account(&self.store.db(), &self.sub.id, rg, name)?;
                Ok(ok(wire::storage_account(&sa)))
            }
            Resource::StorageAccount { rg, name } if method.eq_ignore_ascii_case("PATCH") => {
                self.patch_storage_account(rg, name, request)
            }
            Resource::EncryptionScopes { rg, account } if get => {
                self.encryption_scopes(rg, account, request)
            }
            Resource::EncryptionScope { rg, account, name } => {
                self.encryption_scope(method, rg, account, name, request)
            }
            Resource::Servers { rg } if get => self.servers(rg.as_deref()),
            Resource::Server { rg, name } if get => Ok(ok(wire::sql_server(&server(
                &self.store.db(),
                &self.sub.id,
                rg,
                name,
                false,
            )?))),
            Resource::Protectors { rg, server: s } if get => {
                let srv = server(&self.store.db(), &self.sub.id, rg, s, true)?;
                Ok(list(vec![wire::protector(&srv)]))
            }
            Resource::Protector {
                rg,
                server: s,
                name,
            } => self.protector(method, rg, s, name, request),
            Resource::Keys { rg, server: s } if get => self.keys(rg, s),
            Resource::Key {
                rg,
                server: s,
                name,
            } => self.key(method, rg, s, name, request),
            Resource::Databases { rg, server: s } if get => self.databases(rg, s),
            Resource::Database { .. }
            | Resource::DatabaseProtectorRevert { .. }
            | Resource::ReplicationLinks { .. }
            | Resource::Tdes { .. }
            | Resource::Tde { .. } => self.handle_database(method, resource, request),
            Resource::ManagedInstances { .. }
            | Resource::ManagedInstance { .. }
            | Resource::MiProtectors { .. }
            | Resource::MiProtector { .. }
            | Resource::MiKeys { .. }
            | Resource::MiKey { .. } => self.handle_instance(method, resource, request),
            Resource::Operation { id, result } => self.operation(id, *result, request),
            _ => method_not_allowed(method),
        }
    }

    /// The routes of [`Ctx::handle`] for one database and what is under it.
    fn handle_database(
        &mut self,
        method: &str,
        resource: &Resource,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let get = method.eq_ignore_ascii_case("GET");
        match resource {
            Resource::Database {
                rg,
                server: s,
                name,
            } => self.database(method, rg, s, name, request),
            Resource::DatabaseProtectorRevert {
                rg,
                server: s,
                db,
                name,
            } if method.eq_ignore_ascii_case("POST") => self.revert(rg, s, db, name),
            Resource::ReplicationLinks { rg, server: s, db } if get => {
                database(&self.store.db(), &self.sub.id, rg, s, db)?;
                Ok(list(Vec::new()))
            }
            Resource::Tdes { rg, server: s, db } if get => {
                let d = database(&self.store.db(), &self.sub.id, rg, s, db)?;
                Ok(list(vec![wire::tde(&d, self.legacy_tde())]))
            }
            Resource::Tde {
                rg,
                server: s,
                db,
                name,
            } => self.tde(method, rg, s, db, name, request),
            _ => method_not_allowed(method),
        }
    }

    /// The managed-instance routes of [`Ctx::handle`].
    fn handle_instance(
        &mut self,
        method: &str,
        resource: &Resource,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let get = method.eq_ignore_ascii_case("GET");
        match resource {
            Resource::ManagedInstances { rg } if get => self.instances(rg.as_deref()),
            Resource::ManagedInstance { rg, name } if get => Ok(ok(wire::managed_instance(
                &instance(&self.store.db(), &self.sub.id, rg, name, false)?,
            ))),
            Resource::MiProtectors { rg, mi } if get => {
                let m = instance(&self.store.db(), &self.sub.id, rg, mi, true)?;
                Ok(list(vec![wire::mi_protector(&m)]))
            }
            Resource::MiProtector { rg, mi, name } => {
                self.mi_protector(method, rg, mi, name, request)
            }
            Resource::MiKeys { rg, mi } if get => {
                let m = instance(&self.store.db(), &self.sub.id, rg, mi, true)?;
                let mut keys: Vec<Value> =
                    m.keys.iter().map(|k| wire::mi_key(&m, Some(k))).collect();
                keys.push(wire::mi_key(&m, None));
                Ok(list(keys))
            }
            Resource::MiKey { rg, mi, name } => self.mi_key(method, rg, mi, name, request),
            _ => method_not_allowed(method),
        }
    }

    fn storage_accounts(&self, rg: Option<&str>) -> Result<Reply, CommandError> {
        let db = self.store.db();
        if let Some(rg) = rg {
            group(&db, &self.sub.id, rg)?;
        }
        let accounts: Vec<StorageAccount> =
            db.list(Kind::StorageAccount, &self.sub.id, rg, None)?;
        Ok(list(accounts.iter().map(wire::storage_account).collect()))
    }

    fn patch_storage_account(
        &mut self,
        rg: &str,
        name: &str,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let sub = self.sub.id.clone();
        let body = body_json(request)?;
        self.store.immediate(|db| {
            let mut sa = account(db, &sub, rg, name)?;
            wire::patch_storage_account(&mut sa, &body)?;
            db.put(Kind::StorageAccount, storage_loc(&sa), &sa)?;
            Ok(ok(wire::storage_account(&sa)))
        })
    }

    /// Encryption scopes - List, paged: `$maxpagesize` (else the world's page size),
    /// `$include`, `$filter` and the `$skipToken` of a `nextLink` this server handed out.
    fn encryption_scopes(
        &self,
        rg: &str,
        account: &str,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let db = self.store.db();
        let sa = scope::account(&db, &self.sub.id, rg, account)?;
        let q = scope::PageQuery {
            max: request.query_param("$maxpagesize"),
            include: request.query_param("$include"),
            filter: request.query_param("$filter"),
            skip_token: request.query_param("$skipToken"),
        };
        let page_size = db.header()?.settings.encryption_scope_page_size;
        let page = scope::page(&db, &sa, &q, page_size)?;
        let mut body = json!({
            "value": page.items.iter().map(|s| wire::encryption_scope(s, false, true)).collect::<Vec<_>>(),
        });
        if let Some(token) = page.next {
            body["nextLink"] = json!(scope::next_link(
                self.base,
                &sa,
                self.api_version,
                &q,
                &token
            ));
        }
        Ok(ok(body))
    }

    /// One encryption scope: GET, PATCH (update) and PUT (create, 201; or replace, 200).
    fn encryption_scope(
        &mut self,
        method: &str,
        rg: &str,
        account: &str,
        name: &str,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let sub = self.sub.id.clone();
        if method.eq_ignore_ascii_case("GET") {
            let db = self.store.db();
            let sa = scope::account(&db, &sub, rg, account)?;
            return Ok(ok(wire::encryption_scope(
                &scope::scope(&db, &sa, name)?,
                false,
                false,
            )));
        }
        let put = method.eq_ignore_ascii_case("PUT");
        if !put && !method.eq_ignore_ascii_case("PATCH") {
            return method_not_allowed(method);
        }
        let change = wire::parse_scope_change(&body_json(request)?)?;
        let now = crate::synth::now_iso();
        self.store.immediate(|db| {
            let sa = scope::account(db, &sub, rg, account)?;
            if put {
                let (s, created) = scope::put(db, &sa, name, &change, &now)?;
                let body = wire::encryption_scope(&s, true, false);
                return Ok(Reply::Send(Response::json(
                    if created { 201 } else { 200 },
                    &body,
                )));
            }
            let mut s = scope::scope(db, &sa, name)?;
            scope::patch(&mut s, &change, &now)?;
            db.put(Kind::EncryptionScope, scope_loc(&s), &s)?;
            Ok(ok(wire::encryption_scope(&s, false, false)))
        })
    }

    fn servers(&self, rg: Option<&str>) -> Result<Reply, CommandError> {
        let db = self.store.db();
        if let Some(rg) = rg {
            group(&db, &self.sub.id, rg)?;
        }
        let servers: Vec<SqlServer> = db.list(Kind::SqlServer, &self.sub.id, rg, None)?;
        Ok(list(servers.iter().map(wire::sql_server).collect()))
    }

    /// A server's encryption protector: GET shows it, PUT sets it as a long-running operation.
    fn protector(
        &mut self,
        method: &str,
        rg: &str,
        s: &str,
        name: &str,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let sub = self.sub.id.clone();
        current("Microsoft.Sql/servers/encryptionProtector", name)?;
        if method.eq_ignore_ascii_case("GET") {
            let srv = server(&self.store.db(), &sub, rg, s, true)?;
            return Ok(ok(wire::protector(&srv)));
        }
        if !method.eq_ignore_ascii_case("PUT") {
            return method_not_allowed(method);
        }
        let put = wire::parse_protector_put(&body_json(request)?)?;
        let (location, outcome) = self.store.immediate(|db| {
            let mut srv = server(db, &sub, rg, s, true)?;
            let outcome = set_protector(
                &mut srv.protector,
                &srv.keys,
                put.server_key_type,
                put.server_key_name.as_deref(),
                put.auto_rotation_enabled,
            );
            if outcome.is_ok() {
                db.put(Kind::SqlServer, server_loc(&srv), &srv)?;
            }
            Ok::<_, CommandError>((
                srv.location.clone(),
                outcome.map(|()| wire::protector(&srv)),
            ))
        })?;
        Ok(self.accepted(&location, "encryptionProtector", outcome))
    }

    /// A server's keys, with the service-managed key that every server has listed last.
    fn keys(&self, rg: &str, s: &str) -> Result<Reply, CommandError> {
        let srv = server(&self.store.db(), &self.sub.id, rg, s, true)?;
        let mut keys: Vec<Value> = srv
            .keys
            .iter()
            .map(|k| wire::server_key(&srv, Some(k)))
            .collect();
        keys.push(wire::server_key(&srv, None));
        Ok(list(keys))
    }

    /// One server key: GET shows it, PUT registers a Key Vault key as a long-running operation.
    fn key(
        &mut self,
        method: &str,
        rg: &str,
        s: &str,
        name: &str,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let sub = self.sub.id.clone();
        if method.eq_ignore_ascii_case("GET") {
            let srv = server(&self.store.db(), &sub, rg, s, true)?;
            if name.eq_ignore_ascii_case("ServiceManaged") {
                return Ok(ok(wire::server_key(&srv, None)));
            }
            let key = srv
                .keys
                .iter()
                .find(|k| {
                    crate::armid::server_key_name(&k.uri)
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .ok_or_else(|| errors::sql_not_found("Microsoft.Sql/servers/keys", name))?;
            return Ok(ok(wire::server_key(&srv, Some(key))));
        }
        if !method.eq_ignore_ascii_case("PUT") {
            return method_not_allowed(method);
        }
        let uri = wire::parse_key_put(name, &body_json(request)?)?;
        let (location, value) = self.store.immediate(|db| {
            let mut srv = server(db, &sub, rg, s, true)?;
            let count = srv.keys.len();
            let index = register_key(&mut srv.keys, &uri, name);
            if srv.keys.len() != count {
                db.put(Kind::SqlServer, server_loc(&srv), &srv)?;
            }
            Ok::<_, CommandError>((
                srv.location.clone(),
                wire::server_key(&srv, Some(&srv.keys[index])),
            ))
        })?;
        Ok(self.accepted(&location, "serverKey", Ok(value)))
    }

    fn instances(&self, rg: Option<&str>) -> Result<Reply, CommandError> {
        let db = self.store.db();
        if let Some(rg) = rg {
            group(&db, &self.sub.id, rg)?;
        }
        let all: Vec<SqlManagedInstance> =
            db.list(Kind::SqlManagedInstance, &self.sub.id, rg, None)?;
        Ok(list(all.iter().map(wire::managed_instance).collect()))
    }

    /// A managed instance's encryption protector: GET shows it, PUT sets it as a long-running
    /// operation (202 `UpsertManagedServerEncryptionProtector`, polled at
    /// `managedInstanceEncryptionProtectorAzureAsyncOperation`, as recorded).
    fn mi_protector(
        &mut self,
        method: &str,
        rg: &str,
        mi: &str,
        name: &str,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let sub = self.sub.id.clone();
        current("Microsoft.Sql/managedInstances/encryptionProtector", name)?;
        if method.eq_ignore_ascii_case("GET") {
            let m = instance(&self.store.db(), &sub, rg, mi, true)?;
            return Ok(ok(wire::mi_protector(&m)));
        }
        if !method.eq_ignore_ascii_case("PUT") {
            return method_not_allowed(method);
        }
        let put = wire::parse_protector_put(&body_json(request)?)?;
        let (location, outcome) = self.store.immediate(|db| {
            let mut m = instance(db, &sub, rg, mi, true)?;
            let outcome = set_protector(
                &mut m.protector,
                &m.keys,
                put.server_key_type,
                put.server_key_name.as_deref(),
                put.auto_rotation_enabled,
            );
            if outcome.is_ok() {
                db.put(Kind::SqlManagedInstance, managed_instance_loc(&m), &m)?;
            }
            Ok::<_, CommandError>((m.location.clone(), outcome.map(|()| wire::mi_protector(&m))))
        })?;
        Ok(self.accepted_as(
            &location,
            "managedInstanceEncryptionProtector",
            "UpsertManagedServerEncryptionProtector",
            outcome,
        ))
    }

    /// One managed instance key: GET shows it, PUT registers a Key Vault key as a long-running
    /// operation.
    fn mi_key(
        &mut self,
        method: &str,
        rg: &str,
        mi: &str,
        name: &str,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let sub = self.sub.id.clone();
        if method.eq_ignore_ascii_case("GET") {
            let m = instance(&self.store.db(), &sub, rg, mi, true)?;
            if name.eq_ignore_ascii_case("ServiceManaged") {
                return Ok(ok(wire::mi_key(&m, None)));
            }
            let key = find_key(&m.keys, name).ok_or_else(|| {
                errors::sql_not_found("Microsoft.Sql/managedInstances/keys", name)
            })?;
            return Ok(ok(wire::mi_key(&m, Some(key))));
        }
        if !method.eq_ignore_ascii_case("PUT") {
            return method_not_allowed(method);
        }
        let uri = wire::parse_key_put(name, &body_json(request)?)?;
        let (location, value) = self.store.immediate(|db| {
            let mut m = instance(db, &sub, rg, mi, true)?;
            let count = m.keys.len();
            let index = register_key(&mut m.keys, &uri, name);
            if m.keys.len() != count {
                db.put(Kind::SqlManagedInstance, managed_instance_loc(&m), &m)?;
            }
            Ok::<_, CommandError>((m.location.clone(), wire::mi_key(&m, Some(&m.keys[index]))))
        })?;
        Ok(self.accepted_as(
            &location,
            "managedInstanceKey",
            "UpsertManagedInstanceKey",
            Ok(value),
        ))
    }

    fn databases(&self, rg: &str, s: &str) -> Result<Reply, CommandError> {
        let db = self.store.db();
        let srv = server(&db, &self.sub.id, rg, s, true)?;
        let dbs: Vec<SqlDatabase> = db.list(
            Kind::SqlDatabase,
            &self.sub.id,
            Some(&srv.resource_group),
            Some(&srv.name),
        )?;
        let protector = self.list_db_protector;
        Ok(list(
            dbs.iter()
                .map(|d| wire::database(d, protector, false))
                .collect(),
        ))
    }

    /// A database: GET shows it (with its keys for `$expand=keys`, or az's
    /// `keys($filter=pointInTime(...))`: azsim keeps no key history, so the current keys);
    /// PUT (az's `sql db update`: everything it read, changed) updates its per-database key
    /// fields as a long-running operation (202 `UpdateLogicalDatabase`, as recorded; polled at
    /// `databaseAzureAsyncOperation`, the spec's `databaseOperationResults` Location). A
    /// refused change answers 400 at once. azsim creates no database.
    fn database(
        &mut self,
        method: &str,
        rg: &str,
        s: &str,
        name: &str,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let sub = self.sub.id.clone();
        if method.eq_ignore_ascii_case("GET") {
            let expand = request
                .query_param("$expand")
                .is_some_and(|e| e.to_ascii_lowercase().starts_with("keys"));
            let d = database(&self.store.db(), &sub, rg, s, name)?;
            return Ok(ok(wire::database(&d, true, expand)));
        }
        if !method.eq_ignore_ascii_case("PUT") {
            return method_not_allowed(method);
        }
        let change = wire::parse_database_put(&body_json(request)?)?;
        let (location, value) = self.store.immediate(|store| {
            let mut d = database(store, &sub, rg, s, name)?;
            apply_change(&mut d, &change)?;
            store.put(Kind::SqlDatabase, database_loc(&d), &d)?;
            Ok::<_, CommandError>((
                d.location.clone().unwrap_or_default(),
                wire::database(&d, true, false),
            ))
        })?;
        Ok(self.accepted_as(&location, "database", "UpdateLogicalDatabase", Ok(value)))
    }

    /// Database Encryption Protectors - Revert: a POST on `.../encryptionProtector/current/
    /// revert`, long-running (202 with Azure-AsyncOperation and the spec's
    /// `databaseEncryptionProtectorRevertOperationResults` Location, which az reads at the end:
    /// an empty 200, the spec's answer). The 202 body's `operation` name is azsim's: no
    /// recording of a revert exists. A refused revert answers 400 at once.
    fn revert(&mut self, rg: &str, s: &str, db: &str, name: &str) -> Result<Reply, CommandError> {
        let sub = self.sub.id.clone();
        current("Microsoft.Sql/servers/databases/encryptionProtector", name)?;
        let location = self.store.immediate(|store| {
            let mut d = database(store, &sub, rg, s, db)?;
            revert_protector(&mut d)?;
            store.put(Kind::SqlDatabase, database_loc(&d), &d)?;
            Ok::<_, CommandError>(d.location.clone().unwrap_or_default())
        })?;
        Ok(self.accepted_as(
            &location,
            "databaseEncryptionProtectorRevert",
            "RevertDatabaseEncryptionProtector",
            Ok(Value::Null),
        ))
    }

    /// A database's TDE configuration: GET shows it, PUT sets it (a long-running operation,
    /// except in the legacy api-version, which answered at once).
    fn tde(
        &mut self,
        method: &str,
        rg: &str,
        s: &str,
        db: &str,
        name: &str,
        request: &Request,
    ) -> Result<Reply, CommandError> {
        let sub = self.sub.id.clone();
        current(
            "Microsoft.Sql/servers/databases/transparentDataEncryption",
            name,
        )?;
        let legacy = self.legacy_tde();
        if method.eq_ignore_ascii_case("GET") {
            let d = database(&self.store.db(), &sub, rg, s, db)?;
            return Ok(ok(wire::tde(&d, legacy)));
        }
        if !method.eq_ignore_ascii_case("PUT") {
            return method_not_allowed(method);
        }
        let state = wire::parse_tde_put(&body_json(request)?)?;
        let (location, value) = self.store.immediate(|store| {
            let mut d = database(store, &sub, rg, s, db)?;
            set_tde(&mut d, state)?;
            store.put(Kind::SqlDatabase, database_loc(&d), &d)?;
            Ok::<_, CommandError>((
                d.location.clone().unwrap_or_default(),
                wire::tde(&d, legacy),
            ))
        })?;
        if legacy {
            // api-version 2014-04-01 answered the PUT at once, with a null location.
            let mut value = value;
            value["location"] = Value::Null;
            return Ok(ok(value));
        }
        Ok(self.accepted(&location, "transparentDataEncryption", Ok(value)))
    }

    /// A poll of a long-running operation: its status, or (`result`) its outcome once done.
    fn operation(&self, id: &str, result: bool, request: &Request) -> Result<Reply, CommandError> {
        let Some(poll) = self.ops.poll(id) else {
            return Err(errors::sql_not_found(
                "Microsoft.Sql/locations/operationResults",
                id,
            ));
        };
        let retry = self.retry_after.to_string();
        if result {
            return Ok(Reply::Send(match (&poll.status, &poll.outcome) {
                (s, _) if s == "InProgress" => Response::json(202, &json!({}))
                    .with_header(
                        "Location",
                        format!("{}{}?{}", self.base, request.path, request.query),
                    )
                    .with_header("Retry-After", retry),
                // An operation whose result has no body (a revert) answers an empty 200.
                (_, Ok(Value::Null)) => Response::empty(200),
                (_, Ok(value)) => Response::json(200, value),
                (_, Err((code, message))) => {
                    error_response(&CommandError::service(code, message.clone()), None)
                }
            }));
        }
        let mut body = json!({"name": id, "status": poll.status, "startTime": poll.start_time});
        if let (Err((code, message)), "Failed") = (&poll.outcome, poll.status.as_str()) {
            body["error"] = json!({"code": code, "message": message});
        }
        let mut response = Response::json(200, &body);
        if poll.status == "InProgress" {
            response = response.with_header("Retry-After", retry);
        }
        Ok(Reply::Send(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn parses_the_routes_az_uses_case_insensitively() {
        assert_eq!(
            parse(&segs("providers/Microsoft.Storage/storageAccounts")),
            Some(Resource::StorageAccounts { rg: None })
        );
        assert_eq!(
            parse(&segs(
                "resourcegroups/-rg.ops(1)/providers/microsoft.storage/storageaccounts/st1"
            )),
            Some(Resource::StorageAccount {
                rg: "-rg.ops(1)".into(),
                name: "st1".into()
            })
        );
        assert_eq!(
            parse(&segs(
                "resourceGroups/rg/providers/Microsoft.Sql/servers/s1/databases/db1/transparentDataEncryption/current"
            )),
            Some(Resource::Tde {
                rg: "rg".into(),
                server: "s1".into(),
                db: "db1".into(),
                name: "current".into()
            })
        );
        assert_eq!(
            parse(&segs(
                "providers/Microsoft.Sql/locations/eastus/encryptionProtectorAzureAsyncOperation/42"
            )),
            Some(Resource::Operation {
                id: "42".into(),
                result: false
            })
        );
        assert_eq!(
            parse(&segs("resourcegroups/-rg.ops(1)")),
            Some(Resource::Group {
                name: "-rg.ops(1)".into()
            })
        );
        assert_eq!(
            parse(&segs("resourceGroups/rg/providers/Microsoft.Web/sites/x")),
            None
        );
        assert_eq!(
            parse(&segs("providers/Microsoft.Sql/managedInstances")),
            Some(Resource::ManagedInstances { rg: None })
        );
        assert_eq!(
            parse(&segs(
                "resourcegroups/rg/providers/microsoft.sql/managedinstances/mi1/encryptionProtector/current"
            )),
            Some(Resource::MiProtector {
                rg: "rg".into(),
                mi: "mi1".into(),
                name: "current".into()
            })
        );
        assert_eq!(
            parse(&segs(
                "resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi1/keys/kv_k_v1"
            )),
            Some(Resource::MiKey {
                rg: "rg".into(),
                mi: "mi1".into(),
                name: "kv_k_v1".into()
            })
        );
        assert_eq!(
            parse(&segs(
                "providers/Microsoft.Sql/locations/westus/managedInstanceEncryptionProtectorAzureAsyncOperation/4be5"
            )),
            Some(Resource::Operation {
                id: "4be5".into(),
                result: false
            })
        );
        assert_eq!(
            parse(&segs(
                "resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi1/databases/db"
            )),
            None
        );
    }

    #[test]
    fn database_key_routes_and_the_commands_they_serve() {
        let revert = parse(&segs(
            "resourceGroups/rg/providers/Microsoft.Sql/servers/s1/databases/db1/encryptionProtector/current/revert",
        ))
        .unwrap();
        assert_eq!(
            revert,
            Resource::DatabaseProtectorRevert {
                rg: "rg".into(),
                server: "s1".into(),
                db: "db1".into(),
                name: "current".into()
            }
        );
        assert_eq!(command(&revert, "POST"), Some("sql db tde key revert"));
        assert_eq!(command(&revert, "GET"), None);
        let links = parse(&segs(
            "resourcegroups/rg/providers/microsoft.sql/servers/s1/databases/db1/replicationlinks",
        ))
        .unwrap();
        assert_eq!(command(&links, "GET"), Some("sql db replica list-links"));
        let db = parse(&segs(
            "resourceGroups/rg/providers/Microsoft.Sql/servers/s1/databases/db1",
        ))
        .unwrap();
        assert_eq!(command(&db, "PUT"), Some("sql db update"));
        assert_eq!(command(&db, "GET"), Some("sql db show"));
    }

    #[test]
    fn commands_for_fault_matching() {
        let acct = Resource::StorageAccount {
            rg: "rg".into(),
            name: "n".into(),
        };
        assert_eq!(command(&acct, "GET"), Some("storage account show"));
        assert_eq!(command(&acct, "PATCH"), Some("storage account update"));
        assert_eq!(command(&acct, "DELETE"), None);
        let op = Resource::Operation {
            id: "1".into(),
            result: false,
        };
        assert_eq!(command(&op, "GET"), None);
        let protector = Resource::MiProtector {
            rg: "rg".into(),
            mi: "m".into(),
            name: "current".into(),
        };
        assert_eq!(command(&protector, "GET"), Some("sql mi tde-key show"));
        assert_eq!(command(&protector, "PUT"), Some("sql mi tde-key set"));
        let instances = Resource::ManagedInstances { rg: None };
        assert_eq!(command(&instances, "GET"), Some("sql mi list"));
        let key = Resource::MiKey {
            rg: "rg".into(),
            mi: "m".into(),
            name: "k".into(),
        };
        assert_eq!(command(&key, "PUT"), Some("sql mi key create"));
        let group = Resource::Group { name: "rg".into() };
        assert_eq!(command(&group, "HEAD"), Some("group exists"));
        assert_eq!(command(&group, "GET"), None, "az group show is not served");
    }

    #[test]
    fn error_statuses_as_arm() {
        let cases = [
            ("ResourceNotFound", 1, 404),
            ("ResourceGroupNotFound", 1, 404),
            ("AuthorizationFailed", 1, 403),
            ("TooManyRequests", 1, 429),
            ("SubscriptionRequestsThrottled", 1, 429),
            ("GatewayAuthenticationFailed", 1, 500),
            ("SomethingNotFoundish", 3, 404),
            ("KeyVaultPolicyError", 1, 400),
        ];
        for (code, exit, status) in cases {
            assert_eq!(status_for(code, exit), status, "{code}");
        }
        let throttled =
            error_response(&CommandError::service("TooManyRequests", "slow down"), None);
        assert_eq!(throttled.header("Retry-After"), Some("1"));
        let body: Value = serde_json::from_slice(&throttled.body).unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": "TooManyRequests", "message": "slow down"}})
        );
        assert_eq!(
            error_response(&CommandError::service("X", "y"), Some(503)).status,
            503
        );
    }
}
