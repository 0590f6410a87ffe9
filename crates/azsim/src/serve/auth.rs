//! The Entra ID (Azure AD) endpoints a service-principal `az login` uses, and ARM's cloud
//! metadata: MSAL reads the OpenID configuration of the authority
//! (`GET /{tenant}/v2.0/.well-known/openid-configuration`) and asks the token endpoint
//! (`POST /{tenant}/oauth2/v2.0/token`) for a client-credentials token. Any client id and
//! secret are accepted and any token string would do: the token is an unsigned JWT with the
//! usual claims, so that a tool that peeks into it finds what it expects.

use super::http::{Request, Response, form_decode};
use crate::synth;
use serde_json::json;

/// Tenants every authority accepts besides the world's own.
const MULTI_TENANT: &[&str] = &["common", "organizations", "consumers"];

fn known_tenant(tenant: &str, world_tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(world_tenant)
        || MULTI_TENANT.iter().any(|t| t.eq_ignore_ascii_case(tenant))
}

/// Entra ID's answer for a tenant it does not know (AADSTS90002).
fn tenant_not_found(tenant: &str) -> Response {
    Response::json(
        400,
        &json!({
            "error": "invalid_tenant",
            "error_description": format!("AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
            "error_codes": [90002],
        }),
    )
}

/// The v2.0 OpenID configuration of `tenant` at `base` (`https://127.0.0.1:PORT`).
pub fn openid_configuration(base: &str, tenant: &str, world_tenant: &str) -> Response {
    if !known_tenant(tenant, world_tenant) {
        return tenant_not_found(tenant);
    }
    let t = format!("{base}/{tenant}");
    Response::json(
        200,
        &json!({
            "token_endpoint": format!("{t}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{t}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{t}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{base}/oidc/userinfo"),
            "authorization_endpoint": format!("{t}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{t}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{t}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid", "azp"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "azsim.local",
        }),
    )
}

/// MSAL's instance discovery, in case a caller leaves `instance_discovery` on.
pub fn instance_discovery(base: &str, request: &Request) -> Response {
    let authority = request
        .query_param("authorization_endpoint")
        .unwrap_or_else(|| format!("{base}/common/oauth2/v2.0/authorize"));
    let tenant = authority
        .strip_prefix(base)
        .and_then(|rest| rest.trim_start_matches('/').split('/').next())
        .unwrap_or("common")
        .to_string();
    Response::json(
        200,
        &json!({
            "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
            "api-version": "1.1",
            "metadata": [],
        }),
    )
}

fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The token endpoint: client credentials (and refresh tokens, which MSAL may try first) for
/// any client id and secret.
pub fn token(tenant: &str, world_tenant: &str, request: &Request) -> Response {
    if !known_tenant(tenant, world_tenant) {
        return tenant_not_found(tenant);
    }
    let form = form_decode(&request.body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let grant = field("grant_type").unwrap_or_default();
    if !matches!(grant.as_str(), "client_credentials" | "refresh_token") {
        return Response::json(
            400,
            &json!({
                "error": "unsupported_grant_type",
                "error_description": format!("AADSTS70003: azsim supports the client_credentials grant only, not '{grant}'."),
                "error_codes": [70003],
            }),
        );
    }
    let Some(client_id) = field("client_id").filter(|c| !c.is_empty()) else {
        return Response::json(
            400,
            &json!({
                "error": "invalid_request",
                "error_description": "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
                "error_codes": [900144],
            }),
        );
    };
    let scope = field("scope").unwrap_or_default();
    let audience = scope
        .split_whitespace()
        .find(|s| s.ends_with("/.default"))
        .map(|s| s.trim_end_matches(".default").to_string())
        .unwrap_or_else(|| "https://management.core.windows.net/".to_string());
    let now = synth::unix_seconds() as u64;
    let tenant_id = if MULTI_TENANT.iter().any(|t| t.eq_ignore_ascii_case(tenant)) {
        world_tenant
    } else {
        tenant
    };
    let header = json!({"typ": "JWT", "alg": "none"});
    let claims = json!({
        "aud": audience,
        "iss": format!("https://sts.windows.net/{tenant_id}/"),
        "iat": now, "nbf": now, "exp": now + 3600,
        "appid": client_id,
        "oid": synth::guid(&format!("sp|{client_id}")),
        "sub": synth::guid(&format!("sp|{client_id}")),
        "tid": tenant_id,
        "ver": "1.0",
    });
    let jwt = format!(
        "{}.{}.azsim",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    Response::json(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": jwt,
        }),
    )
}

/// ARM's cloud metadata (`GET /metadata/endpoints`), for a client that discovers endpoints
/// (`az cloud register` or `update` without `--skip-endpoint-discovery` asks with api-version
/// 2022-09-01 and reads one cloud object); before api-version 2019-05-01 (Azure Stack) the
/// legacy form.
pub fn metadata_endpoints(base: &str, api_version: Option<&str>, cloud: &str) -> Response {
    let endpoints = json!({
        "portal": format!("{base}/"),
        "authentication": {
            "loginEndpoint": format!("{base}/"),
            "audiences": ["https://management.core.windows.net/", format!("{base}/")],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": format!("{base}/"),
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        "name": cloud,
        "suffixes": {
            "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
            "acrLoginServer": "azurecr.io",
            "sqlServerHostname": ".database.windows.net",
            "keyVaultDns": ".vault.azure.net",
            "storage": "core.windows.net",
        },
        "batch": "https://batch.core.windows.net/",
        "resourceManager": format!("{base}/"),
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
    });
    let modern = api_version.is_some_and(|v| v >= "2019-05-01");
    let body = if modern {
        endpoints
    } else {
        json!({
            "galleryEndpoint": "",
            "graphEndpoint": "https://graph.windows.net/",
            "portalEndpoint": format!("{base}/"),
            "authentication": {
                "loginEndpoint": format!("{base}/"),
                "audiences": ["https://management.core.windows.net/"],
            },
        })
    };
    Response::json(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/t/oauth2/v2.0/token".into(),
            query: String::new(),
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn base64url_without_padding() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn client_credentials_for_any_secret() {
        let r = token(
            "tenant-1",
            "TENANT-1",
            &post(
                "client_id=app&client_secret=s&grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.core.windows.net%2F%2F.default+offline_access",
            ),
        );
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["token_type"], "Bearer");
        let jwt = v["access_token"].as_str().unwrap();
        assert_eq!(jwt.split('.').count(), 3);
        let unknown = token(
            "other",
            "tenant-1",
            &post("grant_type=client_credentials&client_id=a"),
        );
        assert_eq!(unknown.status, 400);
        let no_client = token(
            "tenant-1",
            "tenant-1",
            &post("grant_type=client_credentials"),
        );
        assert_eq!(no_client.status, 400);
        let password = token(
            "common",
            "tenant-1",
            &post("grant_type=password&client_id=a"),
        );
        assert_eq!(password.status, 400);
    }

    #[test]
    fn openid_configuration_points_back_at_the_server() {
        let r = openid_configuration("https://127.0.0.1:1", "t1", "t1");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["issuer"], "https://127.0.0.1:1/t1/v2.0");
        assert_eq!(
            v["token_endpoint"],
            "https://127.0.0.1:1/t1/oauth2/v2.0/token"
        );
        assert_eq!(openid_configuration("https://x", "t2", "t1").status, 400);
    }

    #[test]
    fn metadata_endpoints_as_az_cloud_reads_them() {
        let r = metadata_endpoints("https://127.0.0.1:9", Some("2022-09-01"), "AzsimCloud");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["name"], "AzsimCloud");
        assert_eq!(v["resourceManager"], "https://127.0.0.1:9/");
        assert_eq!(
            v["authentication"]["audiences"][0],
            "https://management.core.windows.net/"
        );
        assert_eq!(v["suffixes"]["sqlServerHostname"], ".database.windows.net");
        let legacy = metadata_endpoints("https://127.0.0.1:9", Some("2015-01-01"), "AzsimCloud");
        let v: serde_json::Value = serde_json::from_slice(&legacy.body).unwrap();
        assert_eq!(v["authentication"]["loginEndpoint"], "https://127.0.0.1:9/");
    }
}
