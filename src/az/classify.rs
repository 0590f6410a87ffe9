//! What a failed az call means, from its exit code and what it printed on stderr: the one place
//! that decides whether azbook retries, stops the run, or reports one resource's error.

use super::ErrorKind;

const THROTTLED: &[&str] = &[
    "TooManyRequests",
    "ResourceRequestsThrottled",
    "SubscriptionRequestsThrottled",
    "TenantRequestsThrottled",
];
const TRANSIENT: &[&str] = &[
    "InternalServerError",
    "ServiceUnavailable",
    "GatewayTimeout",
    "BadGateway",
    "ServerTimeout",
    "ServerBusy",
    "RetryableError",
    "GatewayAuthenticationFailed",
];
const AUTHORIZATION: &[&str] = &[
    "AuthorizationFailed",
    "LinkedAuthorizationFailed",
    "AuthorizationPermissionMismatch",
    "Forbidden",
    "InsufficientAccountPermissions",
];
const NOT_FOUND: &[&str] = &[
    "ResourceNotFound",
    "ResourceGroupNotFound",
    "ParentResourceNotFound",
    "SubscriptionNotFound",
    "NotFound",
    "ServerNotFound",
    "DatabaseDoesNotExist",
];
const SIGN_IN: &[&str] = &[
    "InvalidAuthenticationToken",
    "ExpiredAuthenticationToken",
    "InvalidAuthenticationTokenTenant",
    "AuthenticationFailed",
];

/// Classifies a failed az call from its exit code (0 ok, 1 error, 2 bad arguments, 3 not
/// found) and the `ERROR: (Code) Message` / `Code:` / `Message:` lines it printed.
pub fn classify(exit_code: Option<i32>, stderr: &str) -> (ErrorKind, Option<String>, String) {
    let error_line = stderr
        .lines()
        .find(|l| l.starts_with("ERROR:"))
        .map(|l| l.trim_start_matches("ERROR:").trim().to_string());
    let (mut code, mut message) = match &error_line {
        Some(line) if line.starts_with('(') => match line.find(')') {
            Some(end) => (
                Some(line[1..end].to_string()),
                line[end + 1..].trim().to_string(),
            ),
            None => (None, line.clone()),
        },
        Some(line) => (None, line.clone()),
        None => (None, String::new()),
    };
    if code.is_none() {
        code = stderr
            .lines()
            .find_map(|l| l.strip_prefix("Code:"))
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
    }
    if message.is_empty() {
        message = stderr
            .lines()
            .find_map(|l| l.strip_prefix("Message:"))
            .map(|m| m.trim().to_string())
            .or_else(|| {
                stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.trim().to_string())
            })
            .unwrap_or_else(|| {
                format!(
                    "az exited with {}",
                    exit_code.map_or("a signal".to_string(), |c| c.to_string())
                )
            });
    }
    let is = |list: &[&str]| {
        code.as_deref()
            .is_some_and(|c| list.iter().any(|k| k.eq_ignore_ascii_case(c)))
    };
    let lower = stderr.to_lowercase();
    let kind = if lower.contains("az login")
        || lower.contains("az account set") && lower.contains("please run")
        || is(SIGN_IN)
        || lower.contains("aadsts70043")
        || lower.contains("aadsts700082")
    {
        ErrorKind::NotSignedIn
    } else if is(THROTTLED) {
        ErrorKind::Throttled
    } else if is(TRANSIENT) {
        ErrorKind::Transient
    } else if is(AUTHORIZATION) {
        ErrorKind::Authorization
    } else if is(NOT_FOUND) || exit_code == Some(3) {
        ErrorKind::NotFound
    } else if exit_code == Some(2) {
        ErrorKind::BadArguments
    } else {
        ErrorKind::Failed
    };
    (kind, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn reference(name: &str) -> (Option<i32>, String) {
        let path = format!(
            "{}/tests/reference/az_cli_2.91/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        (
            v["exit_code"].as_i64().map(|c| c as i32),
            v["stderr"].as_str().unwrap().to_string(),
        )
    }

    #[test]
    fn classifies_the_errors_real_az_printed() {
        let (exit, stderr) = reference("error_not_found_rc3");
        let (kind, code, message) = classify(exit, &stderr);
        assert_eq!(kind, ErrorKind::NotFound);
        assert_eq!(code.as_deref(), Some("ResourceNotFound"));
        assert!(
            message.starts_with("The Resource 'Microsoft.Storage/storageAccounts'"),
            "{message}"
        );

        let (exit, stderr) = reference("error_authorization_failed_rc1");
        let (kind, code, _) = classify(exit, &stderr);
        assert_eq!(
            (kind, code.as_deref()),
            (ErrorKind::Authorization, Some("AuthorizationFailed"))
        );

        for name in [
            "error_missing_argument_rc2",
            "error_unrecognized_argument_rc2",
        ] {
            let (exit, stderr) = reference(name);
            let (kind, code, message) = classify(exit, &stderr);
            assert_eq!((kind, code), (ErrorKind::BadArguments, None), "{name}");
            assert!(!message.is_empty());
        }
    }

    #[test]
    fn classifies_sign_in_throttling_and_transient_failures() {
        let (kind, _, message) =
            classify(Some(1), "ERROR: Please run 'az login' to setup account.\n");
        assert_eq!(kind, ErrorKind::NotSignedIn);
        assert_eq!(message, "Please run 'az login' to setup account.");
        let (kind, _, _) = classify(
            Some(1),
            "ERROR: Please run \"az login\" to access your accounts.\n",
        );
        assert_eq!(kind, ErrorKind::NotSignedIn);
        for code in [
            "TooManyRequests",
            "ResourceRequestsThrottled",
            "SubscriptionRequestsThrottled",
        ] {
            let stderr = format!("ERROR: ({code}) slow down\nCode: {code}\nMessage: slow down\n");
            assert_eq!(classify(Some(1), &stderr).0, ErrorKind::Throttled, "{code}");
        }
        let (kind, code, _) = classify(Some(1), "Code: InternalServerError\nMessage: boom\n");
        assert_eq!(
            (kind, code.as_deref()),
            (ErrorKind::Transient, Some("InternalServerError"))
        );
        assert_eq!(
            classify(Some(1), "ERROR: something else\n").0,
            ErrorKind::Failed
        );
    }
}
