//! `azsim serve`, the ARM face, over real HTTPS: a rustls client that trusts only the CA the
//! server wrote checks the sign-in endpoints, the resources in their wire shapes, ARM's errors,
//! SQL's long-running operations, fault injection and the invocation log. (The conformance
//! suite, scripts/conformance.sh, puts the real azure-cli against the same server.)

use crate::harness::{AZSIM, Sim};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROD: &str = "7d2f8a41-3c6b-4e19-9a5d-1b0e6f4c2a87";
const TENANT: &str = "5b1e9c37-2d84-4f6a-8c03-a7e4d9b2f615";
const API: &str = "api-version=2024-11-01-preview";

/// `azsim serve` running on a world of its own, and a TLS client that trusts its CA.
struct Serve {
    sim: Sim,
    child: Child,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Serve {
    /// A demo world, optionally changed by `edit`, served with `extra` options.
    fn start(edit: impl FnOnce(&mut Value), extra: &[&str]) -> Serve {
        let sim = Sim::seeded("--fleet demo");
        let mut value = sim.dump();
        edit(&mut value);
        sim.load(&value);
        let (port_file, ca) = (sim.dir().join("port"), sim.dir().join("ca.pem"));
        let child = sim
            .command(AZSIM)
            .arg("serve")
            .arg("--port-file")
            .arg(&port_file)
            .arg("--cert-out")
            .arg(&ca)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !port_file.exists() {
            assert!(Instant::now() < deadline, "azsim serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let port: u16 = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&ca).expect("the CA is PEM"))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Serve {
            sim,
            child,
            port,
            tls: Arc::new(tls),
        }
    }

    fn demo() -> Serve {
        Serve::start(|_| {}, &[])
    }

    /// One request on a new TLS connection; None when the server closed it unanswered.
    fn try_send(
        &self,
        method: &str,
        target: &str,
        body: Option<&str>,
        bearer: bool,
    ) -> Option<Reply> {
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).unwrap();
        let sock = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let body = body.unwrap_or("");
        let auth = if bearer {
            "Authorization: Bearer any-token\r\n"
        } else {
            ""
        };
        let content_type = if target.contains("/oauth2/") {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        tls.write_all(head.as_bytes()).unwrap();
        tls.write_all(body.as_bytes()).unwrap();
        tls.flush().unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw);
        if raw.is_empty() {
            return None;
        }
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Reply {
            status,
            headers,
            body: body.to_string(),
        })
    }

    fn send(&self, method: &str, target: &str, body: Option<&str>) -> Reply {
        self.try_send(method, target, body, true)
            .expect("the server answered")
    }

    fn get(&self, target: &str) -> Reply {
        self.send("GET", target, None)
    }
}

fn arm(path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("/subscriptions/{PROD}{path}{sep}{API}")
}

fn error_code(reply: &Reply) -> String {
    reply.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn sign_in_endpoints_for_a_service_principal_login() {
    let s = Serve::demo();
    let config = s.get(&format!("/{TENANT}/v2.0/.well-known/openid-configuration"));
    assert_eq!(config.status, 200);
    let base = format!("https://127.0.0.1:{}", s.port);
    assert_eq!(config.json()["issuer"], format!("{base}/{TENANT}/v2.0"));
    assert_eq!(
        config.json()["token_endpoint"],
        format!("{base}/{TENANT}/oauth2/v2.0/token")
    );
    let form = "client_id=app&client_secret=anything&grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.core.windows.net%2F%2F.default";
    let token = s
        .try_send(
            "POST",
            &format!("/{TENANT}/oauth2/v2.0/token"),
            Some(form),
            false,
        )
        .unwrap();
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(token.json()["token_type"], "Bearer");
    assert!(
        token.json()["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let other = s
        .try_send("POST", "/other-tenant/oauth2/v2.0/token", Some(form), false)
        .unwrap();
    assert_eq!(other.status, 400);
    let subs = s.get("/subscriptions?api-version=2022-12-01").json();
    let ids: Vec<&str> = subs["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["subscriptionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [PROD, "c4a9e613-8f27-4d5b-b0c1-9e3a7d5f2b64"]);
    assert_eq!(subs["value"][0]["tenantId"], TENANT);
    assert_eq!(
        s.get(&format!("/subscriptions/{PROD}?api-version=2022-12-01"))
            .json()["displayName"],
        "Contoso Production"
    );
    assert_eq!(
        s.get("/tenants?api-version=2022-12-01").json()["value"][0]["tenantId"],
        TENANT
    );
}

#[test]
fn resources_in_wire_shapes_with_encoded_names() {
    let s = Serve::demo();
    let all = s
        .get(&arm("/providers/Microsoft.Storage/storageAccounts"))
        .json();
    assert_eq!(
        all["value"].as_array().unwrap().len(),
        10,
        "the PROD subscription's accounts"
    );
    let one = s.get(&arm(
        "/resourceGroups/-rg.ops%281%29/providers/Microsoft.Storage/storageAccounts/stopsbackup01",
    ));
    assert_eq!(one.status, 200);
    let enc = &one.json()["properties"]["encryption"];
    assert_eq!(enc["keySource"], "Microsoft.Keyvault");
    assert_eq!(
        enc["keyvaultproperties"]["keyversion"], "",
        "an empty version stays empty"
    );
    assert_eq!(
        enc["keyvaultproperties"]["keyvaulturi"],
        "https://kv-ops-prod.vault.azure.net/"
    );
    let hr = s
        .get(&arm(
            "/resourceGroups/rg-hr/providers/Microsoft.Storage/storageAccounts/sthrdocs01",
        ))
        .json();
    assert!(
        hr["properties"]["encryption"]["keyvaultproperties"]
            .get("keyversion")
            .is_none(),
        "a null version is absent"
    );
    let in_group = s
        .get(&arm(
            "/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/databases",
        ))
        .json();
    let names: Vec<&str> = in_group["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"master"));
    let customers = in_group["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "customers")
        .unwrap();
    assert!(
        customers["properties"]["encryptionProtector"]
            .as_str()
            .unwrap()
            .starts_with("https://kv-web-prod.vault.azure.net/keys/")
    );
    let tde = s.get(&arm("/resourceGroups/rg-payments/providers/Microsoft.Sql/servers/sql-payments-prod/databases/ledger/transparentDataEncryption/current")).json();
    assert_eq!(tde["properties"], json!({"state": "Disabled"}));
    let legacy = s.get(&format!("/subscriptions/{PROD}/resourceGroups/rg-payments/providers/Microsoft.Sql/servers/sql-payments-prod/databases/ledger/transparentDataEncryption/current?api-version=2014-04-01")).json();
    assert_eq!(legacy["properties"], json!({"status": "Disabled"}));
    let protector = s.get(&arm("/resourceGroups/rg-payments/providers/Microsoft.Sql/servers/sql-payments-prod/encryptionProtector/current")).json();
    assert_eq!(protector["kind"], "azurekeyvault");
    assert_eq!(protector["properties"]["autoRotationEnabled"], true);
    let keys = s
        .get(&arm(
            "/resourceGroups/rg-hr/providers/Microsoft.Sql/servers/sql-hr-prod/keys",
        ))
        .json();
    assert_eq!(
        keys["value"].as_array().unwrap().len(),
        3,
        "two Key Vault keys and ServiceManaged"
    );
}

#[test]
fn arm_errors_with_azure_status_codes() {
    let s = Serve::demo();
    let cases = [
        (
            arm("/resourceGroups/rg-nosuch/providers/Microsoft.Storage/storageAccounts/x"),
            404,
            "ResourceGroupNotFound",
        ),
        (
            arm("/resourceGroups/rg-payments/providers/Microsoft.Storage/storageAccounts/nosuch"),
            404,
            "ResourceNotFound",
        ),
        (
            arm("/resourceGroups/rg-web/providers/Microsoft.Sql/servers/nosuch/databases"),
            404,
            "ParentResourceNotFound",
        ),
        (
            arm(
                "/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/databases/nosuch",
            ),
            404,
            "ResourceNotFound",
        ),
        (
            format!(
                "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Sql/servers?{API}"
            ),
            404,
            "SubscriptionNotFound",
        ),
        (
            arm("/resourceGroups/rg/providers/Microsoft.Web/sites/x"),
            404,
            "InvalidResourceType",
        ),
        (
            format!("/subscriptions/{PROD}/providers/Microsoft.Sql/servers"),
            400,
            "MissingApiVersionParameter",
        ),
    ];
    for (target, status, code) in cases {
        let r = s.get(&target);
        assert_eq!(
            (r.status, error_code(&r)),
            (status, code.to_string()),
            "{target}"
        );
    }
    let anonymous = s
        .try_send("GET", &arm("/providers/Microsoft.Sql/servers"), None, false)
        .unwrap();
    assert_eq!(
        (anonymous.status, error_code(&anonymous)),
        (401, "AuthenticationFailed".to_string())
    );
    assert!(anonymous.header("WWW-Authenticate").is_some());
}

/// `az group exists` is a `HEAD` of the resource group (azure-mgmt-resource's
/// `check_existence`, which takes 204 as true and 404 as false and fails on anything else):
/// answered without a body, the name compared case-insensitively and percent-decoded, in the
/// subscription of the path; logged and fault-matched as `group exists`.
#[test]
fn group_exists_is_a_head_answered_204_or_404() {
    let s = Serve::start(
        |w| {
            w["faults"] = json!([{"command": "group exists", "argvContains": "rg-denied",
                                  "error": {"code": "AuthorizationFailed", "message": "no read"}}]);
        },
        &[],
    );
    let head = |target: &str| s.send("HEAD", target, None);
    let found = head(&arm("/resourcegroups/rg-web"));
    assert_eq!((found.status, found.body.as_str()), (204, ""));
    assert_eq!(found.header("Content-Length"), None, "a 204 has no length");
    assert_eq!(head(&arm("/resourceGroups/RG-WEB")).status, 204);
    assert_eq!(head(&arm("/resourcegroups/-rg.ops%281%29")).status, 204);
    let missing = head(&arm("/resourcegroups/rg-nosuch"));
    assert_eq!((missing.status, missing.body.as_str()), (404, ""));
    assert_eq!(head(&arm("/resourcegroups/rg%20bad")).status, 404);
    // rg-finance-dev is a group of Contoso Finance only.
    assert_eq!(head(&arm("/resourcegroups/rg-finance-dev")).status, 404);
    let finance = "c4a9e613-8f27-4d5b-b0c1-9e3a7d5f2b64";
    assert_eq!(
        head(&format!(
            "/subscriptions/{finance}/resourcegroups/rg-finance-dev?{API}"
        ))
        .status,
        204
    );
    let denied = head(&arm("/resourcegroups/rg-denied"));
    assert_eq!((denied.status, denied.body.as_str()), (403, ""));
    assert_eq!(
        s.get(&arm("/resourcegroups/rg-web")).status,
        400,
        "only HEAD is served on a group"
    );
    let log: Vec<Value> = s
        .sim
        .calls("")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let heads: Vec<&Value> = log.iter().filter(|l| l["argv"][0] == "HEAD").collect();
    assert_eq!(heads.len(), 8);
    assert!(
        heads
            .iter()
            .all(|l| l["command"] == "group exists" && l["mutating"] == false)
    );
}

#[test]
fn storage_patch_as_the_service_takes_it() {
    let s = Serve::demo();
    let path =
        arm("/resourceGroups/rg-customer/providers/Microsoft.Storage/storageAccounts/stcustomer01");
    let mmk = s.send("PATCH", &path, Some(r#"{"properties": {"encryption": {"keySource": "Microsoft.Storage", "identity": {"userAssignedIdentity": "/x"}}}}"#));
    assert_eq!(mmk.status, 200, "{}", mmk.body);
    let enc = &mmk.json()["properties"]["encryption"];
    assert_eq!(enc["keySource"], "Microsoft.Storage");
    assert!(
        enc.get("keyvaultproperties").is_none() && enc.get("identity").is_none(),
        "{enc}"
    );
    let uai = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u";
    let back = json!({"properties": {"encryption": {"keySource": "Microsoft.Keyvault",
        "keyvaultproperties": {"keyvaulturi": "https://kv-customer-prod.vault.azure.net/", "keyname": "k", "keyversion": ""},
        "identity": {"userAssignedIdentity": uai}}}});
    let r = s.send("PATCH", &path, Some(&back.to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    let world = s.sim.dump();
    let account = world["storageAccounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "stcustomer01")
        .unwrap();
    assert_eq!(
        account["encryption"]["keyVaultProperties"]["keyVersion"],
        ""
    );
    assert_eq!(
        account["encryption"]["encryptionIdentity"]["encryptionUserAssignedIdentity"],
        uai
    );
    let missing = s.send("PATCH", &path, Some(r#"{"properties": {"encryption": {"keySource": "Microsoft.Keyvault", "keyvaultproperties": {}}}}"#));
    assert_eq!(
        (missing.status, error_code(&missing)),
        (400, "MissingKeyvaultProperties".to_string())
    );
}

/// Polls an Azure-AsyncOperation URL until it is done; returns the statuses seen.
fn poll(s: &Serve, reply: &Reply) -> Vec<Value> {
    let url = reply
        .header("Azure-AsyncOperation")
        .expect("Azure-AsyncOperation header");
    let target = local(s, url);
    let mut seen = Vec::new();
    for _ in 0..10 {
        let status = s.get(&target).json();
        let done = status["status"] != "InProgress";
        seen.push(status);
        if done {
            break;
        }
    }
    seen
}

#[test]
fn sql_changes_are_long_running_operations() {
    let s = Serve::start(|_| {}, &["--lro-polls", "2"]);
    let protector = arm(
        "/resourceGroups/rg-payments/providers/Microsoft.Sql/servers/sql-payments-prod/encryptionProtector/current",
    );
    let put = s.send("PUT", &protector, Some(r#"{"properties": {"serverKeyType": "ServiceManaged", "serverKeyName": "ServiceManaged"}}"#));
    assert_eq!(put.status, 202, "{}", put.body);
    assert!(
        put.header("Location")
            .is_some_and(|l| l.contains("OperationResults"))
    );
    assert_eq!(put.header("Retry-After"), Some("1"));
    let statuses: Vec<Value> = poll(&s, &put).iter().map(|p| p["status"].clone()).collect();
    assert_eq!(
        statuses,
        [json!("InProgress"), json!("InProgress"), json!("Succeeded")]
    );
    assert_eq!(
        s.get(&protector).json()["properties"]["serverKeyType"],
        "ServiceManaged"
    );

    let unknown = s.send(
        "PUT",
        &protector,
        Some(
            r#"{"properties": {"serverKeyType": "AzureKeyVault", "serverKeyName": "kv_nokey_01"}}"#,
        ),
    );
    assert_eq!(unknown.status, 202);
    let last = poll(&s, &unknown).pop().unwrap();
    assert_eq!(last["status"], "Failed");
    assert_eq!(last["error"]["code"], "ServerKeyNotFound");

    let kid = "https://kv-web-prod.vault.azure.net/keys/sql-tde/0123456789abcdef0123456789abcdef";
    let key = arm(
        "/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/keys/kv-web-prod_sql-tde_0123456789abcdef0123456789abcdef",
    );
    let created = s.send(
        "PUT",
        &key,
        Some(&json!({"properties": {"serverKeyType": "AzureKeyVault", "uri": kid}}).to_string()),
    );
    assert_eq!(created.status, 202);
    assert_eq!(poll(&s, &created).pop().unwrap()["status"], "Succeeded");
    assert_eq!(s.get(&key).json()["properties"]["uri"], kid);

    let master = arm(
        "/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/databases/master/transparentDataEncryption/current",
    );
    let refused = s.send(
        "PUT",
        &master,
        Some(r#"{"properties": {"state": "Disabled"}}"#),
    );
    assert_eq!(
        (refused.status, error_code(&refused)),
        (400, "OperationNotSupportedOnSystemDatabase".to_string())
    );
}

#[test]
fn managed_instances_in_wire_shapes_with_long_running_changes() {
    let s = Serve::start(|_| {}, &["--lro-polls", "1"]);
    let all = s
        .get(&arm("/providers/Microsoft.Sql/managedInstances"))
        .json();
    let names: Vec<&str> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sqlmi-ops-prod", "sqlmi-payments-prod"]);
    let in_group = s
        .get(&arm(
            "/resourceGroups/rg-sqlmi/providers/Microsoft.Sql/managedInstances",
        ))
        .json();
    assert_eq!(in_group["value"].as_array().unwrap().len(), 2);
    let base = "/resourceGroups/rg-sqlmi/providers/Microsoft.Sql/managedInstances";
    let pay = s.get(&arm(&format!("{base}/sqlmi-payments-prod"))).json();
    assert_eq!(pay["type"], "Microsoft.Sql/managedInstances");
    assert_eq!(pay["properties"]["storageSizeInGB"], 256);
    assert!(
        pay["properties"]["keyId"]
            .as_str()
            .unwrap()
            .contains("sqlmi-tde")
    );
    let missing = s.get(&arm(&format!("{base}/nope")));
    assert_eq!(
        (missing.status, error_code(&missing)),
        (404, "ResourceNotFound".to_string())
    );

    // The recorded shapes: kind, properties, id, name, type; no location, no thumbprint.
    let protector = arm(&format!(
        "{base}/sqlmi-ops-prod/encryptionProtector/current"
    ));
    let shown = s.get(&protector).json();
    assert_eq!(
        shown,
        json!({
            "kind": "servicemanaged",
            "properties": {"serverKeyName": "ServiceManaged", "serverKeyType": "ServiceManaged", "autoRotationEnabled": false},
            "id": format!("/subscriptions/{PROD}{base}/sqlmi-ops-prod/encryptionProtector/current"),
            "name": "current",
            "type": "Microsoft.Sql/managedInstances/encryptionProtector",
        })
    );
    let keys = arm(&format!("{base}/sqlmi-ops-prod/keys"));
    assert_eq!(
        s.get(&keys).json()["value"],
        json!([{
            "kind": "servicemanaged",
            "properties": {"serverKeyType": "ServiceManaged"},
            "id": format!("/subscriptions/{PROD}{base}/sqlmi-ops-prod/keys/ServiceManaged"),
            "name": "ServiceManaged",
            "type": "Microsoft.Sql/managedInstances/keys",
        }])
    );

    // Setting an unregistered key: 202 as recorded, then the operation fails.
    let kid =
        "https://kv-payments-prod.vault.azure.net/keys/sqlmi-tde/4b8e2d6a0c9f4e1b7a3d5c8f2e6b0a97";
    let name = "kv-payments-prod_sqlmi-tde_4b8e2d6a0c9f4e1b7a3d5c8f2e6b0a97";
    let body = json!({"properties": {"serverKeyType": "AzureKeyVault", "serverKeyName": name, "autoRotationEnabled": true}}).to_string();
    let refused = s.send("PUT", &protector, Some(&body));
    assert_eq!(refused.status, 202, "{}", refused.body);
    assert_eq!(
        refused.json()["operation"],
        "UpsertManagedServerEncryptionProtector"
    );
    assert!(refused.header("Azure-AsyncOperation").is_some_and(|u| {
        u.contains("/locations/eastus/managedInstanceEncryptionProtectorAzureAsyncOperation/")
    }));
    let last = poll(&s, &refused).pop().unwrap();
    assert_eq!(
        (&last["status"], &last["error"]["code"]),
        (&json!("Failed"), &json!("ServerKeyNotFound"))
    );
    assert_eq!(
        s.get(&protector).json(),
        shown,
        "a refused change changes nothing"
    );

    // Register the key (long-running too), then set it.
    let key = arm(&format!("{base}/sqlmi-ops-prod/keys/{name}"));
    let created = s.send(
        "PUT",
        &key,
        Some(&json!({"properties": {"serverKeyType": "AzureKeyVault", "uri": kid}}).to_string()),
    );
    assert_eq!(created.status, 202);
    assert_eq!(poll(&s, &created).pop().unwrap()["status"], "Succeeded");
    let got = s.get(&key).json();
    assert_eq!(got["properties"]["uri"], kid);
    assert_eq!(got["kind"], "azurekeyvault");
    assert!(got.get("location").is_none());
    let put = s.send("PUT", &protector, Some(&body));
    assert_eq!(put.status, 202);
    let statuses: Vec<Value> = poll(&s, &put).iter().map(|p| p["status"].clone()).collect();
    assert_eq!(statuses, [json!("InProgress"), json!("Succeeded")]);
    let now = s.get(&protector).json();
    assert_eq!(now["kind"], "azurekeyvault");
    assert_eq!(
        now["properties"],
        json!({"serverKeyName": name, "serverKeyType": "AzureKeyVault", "uri": kid, "autoRotationEnabled": true})
    );
    let nested = s.get(&arm(&format!("{base}/nope/encryptionProtector/current")));
    assert_eq!(
        (nested.status, error_code(&nested)),
        (404, "ParentResourceNotFound".to_string())
    );
    let calls = s.sim.calls("");
    assert!(
        calls.contains(r#""command":"sql mi tde-key set""#),
        "{calls}"
    );
    assert!(
        calls.contains(r#""command":"sql mi key create""#),
        "{calls}"
    );
    assert!(calls.contains(r#""command":"sql mi list""#), "{calls}");
}

#[test]
fn faults_fire_on_the_requests_of_a_command() {
    let s = Serve::start(
        |w| {
            w["faults"] = json!([
                {"command": "storage account update", "argvContains": "stpayments01",
                 "error": {"code": "AuthorizationFailed", "message": "no write"}},
                {"command": "sql server list", "times": 1,
                 "error": {"code": "TooManyRequests", "message": "slow down"}},
                {"command": "storage account show", "argvContains": "sthrdocs01", "latencyMs": 400},
                {"command": "sql db show", "malformed": true},
                {"command": "sql db tde set", "crashAfterChange": true},
                {"command": "sql server show", "error": {"code": "Anything", "message": "m", "status": 503}}
            ]);
        },
        &[],
    );
    error_faults_answer_arm_errors(&s);
    delay_and_malformed_faults(&s);
    crash_and_status_faults(&s);
}

/// An error fault fires only on the command it names (a GET of the account is not its update),
/// as many times as it may, with the status Azure uses for its code.
fn error_faults_answer_arm_errors(s: &Serve) {
    let payments =
        arm("/resourceGroups/rg-payments/providers/Microsoft.Storage/storageAccounts/stpayments01");
    assert_eq!(
        s.get(&payments).status,
        200,
        "a GET is `storage account show`, not update"
    );
    let denied = s.send(
        "PATCH",
        &payments,
        Some(r#"{"properties": {"encryption": {"keySource": "Microsoft.Storage"}}}"#),
    );
    assert_eq!(
        (denied.status, error_code(&denied)),
        (403, "AuthorizationFailed".to_string())
    );
    let throttled = s.get(&arm("/providers/Microsoft.Sql/servers"));
    assert_eq!(
        (throttled.status, throttled.header("Retry-After")),
        (429, Some("1"))
    );
    assert_eq!(
        s.get(&arm("/providers/Microsoft.Sql/servers")).status,
        200,
        "times: 1"
    );
}

/// Latency delays the answer; a malformed fault tears the body.
fn delay_and_malformed_faults(s: &Serve) {
    let started = Instant::now();
    assert_eq!(
        s.get(&arm(
            "/resourceGroups/rg-hr/providers/Microsoft.Storage/storageAccounts/sthrdocs01"
        ))
        .status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    let torn = s.get(&arm(
        "/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/databases/web",
    ));
    assert!(
        serde_json::from_str::<Value>(&torn.body).is_err(),
        "{}",
        torn.body
    );
}

/// A crash closes the connection unanswered after the change was made; an error's explicit
/// status overrides the code's.
fn crash_and_status_faults(s: &Serve) {
    let tde = arm(
        "/resourceGroups/rg-payments/providers/Microsoft.Sql/servers/sql-payments-prod/databases/ledger/transparentDataEncryption/current",
    );
    assert!(
        s.try_send(
            "PUT",
            &tde,
            Some(r#"{"properties": {"state": "Enabled"}}"#),
            true
        )
        .is_none(),
        "crash: no answer"
    );
    let db = s.sim.dump()["sqlDatabases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "ledger")
        .cloned()
        .unwrap();
    assert_eq!(
        db["tdeState"], "Enabled",
        "the change was made before the crash"
    );
    assert_eq!(
        s.get(&arm(
            "/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod"
        ))
        .status,
        503
    );
}

#[test]
fn every_request_is_logged_with_the_arm_marker() {
    let s = Serve::demo();
    s.get(&arm("/providers/Microsoft.Storage/storageAccounts"));
    s.send(
        "PATCH",
        &arm(
            "/resourceGroups/rg-payments/providers/Microsoft.Storage/storageAccounts/stpayments01",
        ),
        Some(r#"{"properties": {"encryption": {"keySource": "Microsoft.Storage"}}}"#),
    );
    let all = s.sim.calls("");
    let lines: Vec<Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["via"] == "arm"));
    assert_eq!(lines[0]["command"], "storage account list");
    assert_eq!(lines[0]["mutating"], false);
    let mutating = s.sim.calls("--mutating");
    let only: Value = serde_json::from_str(mutating.trim()).unwrap();
    assert_eq!(
        (only["argv"][0].as_str(), only["command"].as_str()),
        (Some("PATCH"), Some("storage account update"))
    );
}

#[test]
fn database_lists_can_omit_the_protector() {
    let s = Serve::start(|_| {}, &["--db-list-omits-protector"]);
    let list = s
        .get(&arm(
            "/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/databases",
        ))
        .json();
    assert!(
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["properties"].get("encryptionProtector").is_none())
    );
    let one = s.get(&arm("/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/databases/customers")).json();
    assert!(one["properties"]["encryptionProtector"].is_string());
}

/// The host-relative target of a URL the server handed out (an operation or its result).
fn local(s: &Serve, url: &str) -> String {
    url.split_once(&format!("127.0.0.1:{}", s.port))
        .unwrap()
        .1
        .to_string()
}

#[test]
fn database_keys_expanded_and_updated_by_put() {
    let s = Serve::start(|_| {}, &["--lro-polls", "1"]);
    let path =
        "/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/databases/customers";
    let customers = arm(path);
    let plain = s.get(&customers).json();
    assert!(
        plain["properties"].get("keys").is_none(),
        "keys need $expand"
    );
    assert_eq!(plain["identity"]["type"], "UserAssigned");
    assert!(plain["identity"].get("tenantId").is_none(), "as recorded");
    assert!(
        plain["properties"]
            .get("encryptionProtectorAutoRotation")
            .is_none()
    );
    let expanded = s.get(&arm(&format!("{path}?%24expand=keys"))).json();
    let keys = expanded["properties"]["keys"].as_object().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.values().all(|k| k["type"] == "AzureKeyVault"));

    // What az's `sql db update --keys NEW --epauto true` sends: all it read, changed.
    let new = "https://kv-web-prod.vault.azure.net/keys/sql-customers-cmk/0123456789abcdef0123456789abcdef";
    let mut body = plain.clone();
    body["properties"]["keys"] = json!({ new: {} });
    body["properties"]["encryptionProtectorAutoRotation"] = json!(true);
    let put = s.send("PUT", &customers, Some(&body.to_string()));
    assert_eq!(put.status, 202, "{}", put.body);
    assert_eq!(put.json()["operation"], "UpdateLogicalDatabase");
    assert!(
        put.header("Location")
            .is_some_and(|l| l.contains("/databaseOperationResults/"))
    );
    assert!(
        put.header("Azure-AsyncOperation")
            .is_some_and(|l| l.contains("/databaseAzureAsyncOperation/"))
    );
    assert_eq!(poll(&s, &put).pop().unwrap()["status"], "Succeeded");
    let after = s.get(&arm(&format!("{path}?%24expand=keys"))).json();
    assert_eq!(
        after["properties"]["keys"].as_object().unwrap().len(),
        3,
        "keys merge"
    );
    assert_eq!(after["properties"]["encryptionProtectorAutoRotation"], true);

    let links = s.get(&arm(&format!("{path}/replicationLinks"))).json();
    assert_eq!(links, json!({"value": []}));
}

#[test]
fn database_protector_revert_is_long_running() {
    let s = Serve::start(|_| {}, &["--lro-polls", "1"]);
    let path =
        "/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/databases/customers";
    let plain = s.get(&arm(path)).json();
    let revert_path = arm(&format!("{path}/encryptionProtector/current/revert"));
    let revert = s.send("POST", &revert_path, None);
    assert_eq!(revert.status, 202, "{}", revert.body);
    assert_eq!(poll(&s, &revert).pop().unwrap()["status"], "Succeeded");
    let result = s.get(&local(&s, revert.header("Location").unwrap()));
    assert_eq!(
        (result.status, result.body.as_str()),
        (200, ""),
        "the spec's empty 200"
    );
    let reverted = s.get(&arm(&format!("{path}?%24expand=keys"))).json();
    for field in [
        "encryptionProtector",
        "encryptionProtectorAutoRotation",
        "keys",
    ] {
        assert!(reverted["properties"].get(field).is_none(), "{field}");
    }
    assert_eq!(reverted["identity"], plain["identity"]);
    let again = s.send("POST", &revert_path, None);
    assert_eq!(
        (again.status, error_code(&again)),
        (400, "DatabaseEncryptionProtectorNotSet".to_string())
    );
    let mutating: Vec<Value> = s
        .sim
        .calls("--mutating")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let commands: Vec<&str> = mutating
        .iter()
        .filter_map(|l| l["command"].as_str())
        .collect();
    assert_eq!(commands, ["sql db tde key revert", "sql db tde key revert"]);
}

const SCOPES_PATH: &str = "/resourceGroups/rg-finance/providers/Microsoft.Storage/storageAccounts/stfinance01/encryptionScopes";

#[test]
fn encryption_scopes_page_by_next_link() {
    let s = Serve::demo();
    let mut target = format!("/subscriptions/{PROD}{SCOPES_PATH}?api-version=2025-08-01");
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let r = s.get(&target);
        assert_eq!(r.status, 200, "{}", r.body);
        let body = r.json();
        pages += 1;
        for item in body["value"].as_array().unwrap() {
            assert_eq!(
                item["type"],
                "Microsoft.Storage/storageAccounts/encryptionScopes"
            );
            names.push(item["name"].as_str().unwrap().to_string());
        }
        let Some(next) = body.get("nextLink").and_then(Value::as_str) else {
            break;
        };
        let base = format!("https://127.0.0.1:{}", s.port);
        target = next
            .strip_prefix(&base)
            .unwrap_or_else(|| panic!("{next}"))
            .to_string();
        assert!(target.contains("$skipToken="), "{target}");
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "archive",
            "customer-data",
            "infra-double",
            "platform",
            "reports"
        ]
    );
    let enabled = s
        .get(&arm(&format!(
            "{SCOPES_PATH}?$include=Enabled&$maxpagesize=10"
        )))
        .json();
    assert_eq!(enabled["value"].as_array().unwrap().len(), 4);
    assert!(
        enabled.get("nextLink").is_none(),
        "no nextLink key on the last page"
    );
    // A list item carries only keyUri; one scope its versioned key id and rotation time too.
    let kv_item = &enabled["value"][0]["properties"];
    assert_eq!(
        kv_item["keyVaultProperties"],
        json!({"keyUri": "https://kv-payments-prod.vault.azure.net/keys/scope-cmk"})
    );
    let one = s.get(&arm(&format!("{SCOPES_PATH}/customer-data"))).json();
    let kvp = &one["properties"]["keyVaultProperties"];
    assert!(
        kvp["currentVersionedKeyIdentifier"]
            .as_str()
            .unwrap()
            .starts_with("https://kv-payments-prod.vault.azure.net/keys/scope-cmk/")
    );
    assert_eq!(
        kvp["lastKeyRotationTimestamp"],
        "2024-02-01T09:00:00.0000000Z"
    );
    let mmk = s.get(&arm(&format!("{SCOPES_PATH}/platform"))).json();
    assert!(
        mmk["properties"].get("keyVaultProperties").is_none(),
        "{mmk}"
    );
    let bad = s.get(&arm(&format!("{SCOPES_PATH}?$maxpagesize=0")));
    assert_eq!(
        (bad.status, error_code(&bad)),
        (400, "InvalidQueryParameterValue".to_string())
    );
    let missing = s.get(&arm(&format!("{SCOPES_PATH}/nope")));
    assert_eq!(
        (missing.status, error_code(&missing)),
        (404, "ResourceNotFound".to_string())
    );
    let log = s.sim.calls("");
    assert!(
        log.contains("\"command\":\"storage account encryption-scope list\""),
        "{log}"
    );
    assert!(
        log.contains("\"command\":\"storage account encryption-scope show\""),
        "{log}"
    );
}

#[test]
fn encryption_scope_patch_and_put() {
    let s = Serve::demo();
    let path = arm(&format!("{SCOPES_PATH}/customer-data"));
    let mmk = s.send(
        "PATCH",
        &path,
        Some(r#"{"properties": {"source": "Microsoft.Storage"}}"#),
    );
    assert_eq!(mmk.status, 200, "{}", mmk.body);
    let props = &mmk.json()["properties"];
    assert_eq!(props["source"], "Microsoft.Storage");
    assert!(props.get("keyVaultProperties").is_none(), "{props}");
    let no_key = s.send(
        "PATCH",
        &path,
        Some(r#"{"properties": {"source": "Microsoft.KeyVault"}}"#),
    );
    assert_eq!(no_key.status, 400, "{}", no_key.body);
    let key = "https://kv-x.vault.azure.net/keys/k1";
    let cmk = s.send(
        "PATCH",
        &path,
        Some(&json!({"properties": {"source": "Microsoft.KeyVault", "keyVaultProperties": {"keyUri": key}, "state": "Disabled"}}).to_string()),
    );
    assert_eq!(cmk.status, 200, "{}", cmk.body);
    let props = &cmk.json()["properties"];
    assert_eq!(
        (props["source"].as_str(), props["state"].as_str()),
        (Some("Microsoft.KeyVault"), Some("Disabled"))
    );
    assert_eq!(props["keyVaultProperties"]["keyUri"], key);

    let new = arm(&format!("{SCOPES_PATH}/fresh"));
    let created = s.send(
        "PUT",
        &new,
        Some(r#"{"properties": {"requireInfrastructureEncryption": true}}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let props = &created.json()["properties"];
    assert_eq!(
        props["keyVaultProperties"],
        json!({}),
        "a PUT answers an empty object"
    );
    assert_eq!(props["requireInfrastructureEncryption"], true);
    let again = s.send("PUT", &new, Some("{}"));
    assert_eq!(again.status, 200, "{}", again.body);
    let world = s.sim.dump();
    let on_account = |w: &Value| {
        w["encryptionScopes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["account"] == "stfinance01")
            .count()
    };
    assert_eq!(on_account(&world), 6);
    let mutating = s.sim.calls("--mutating");
    let commands: Vec<String> = mutating
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["command"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        commands,
        [
            "storage account encryption-scope update",
            "storage account encryption-scope update",
            "storage account encryption-scope update",
            "storage account encryption-scope create",
            "storage account encryption-scope create",
        ]
    );
}
