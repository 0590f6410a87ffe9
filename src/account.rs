//! Who is signed in and which subscriptions a run covers, resolved once at the start of a run.

use crate::az::{Az, AzError, CallKind, ErrorKind};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub tenant_id: String,
    pub subscription_id: String,
    pub subscription_name: String,
    pub user: String,
    /// Every enabled subscription `az account list` showed, when the run read it (with
    /// `--subscription` or `--all-subscriptions`): what `--subscription` values are resolved
    /// against ([`find_named`]) and what the scope line takes names from.
    pub visible: Option<Vec<Subscription>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub name: String,
}

fn text(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("").to_string()
}

fn malformed(command: &str, what: &str) -> AzError {
    AzError {
        kind: ErrorKind::MalformedOutput,
        code: None,
        message: what.to_string(),
        command: command.to_string(),
        exit_code: Some(0),
    }
}

/// `az account show`: the signed-in identity and az's current subscription. Not being signed
/// in surfaces here, once, before any resource is read.
pub fn current_account(az: &Az) -> Result<Account, AzError> {
    let v = az.run(
        &["az".into(), "account".into(), "show".into()],
        None,
        CallKind::Read,
    )?;
    let account = Account {
        tenant_id: text(&v, &["tenantId"]),
        subscription_id: text(&v, &["id"]),
        subscription_name: text(&v, &["name"]),
        user: text(&v, &["user", "name"]),
        visible: None,
    };
    if account.subscription_id.is_empty() {
        return Err(malformed(
            "az account show",
            "it printed no subscription id",
        ));
    }
    Ok(account)
}

/// A subscription list as `enabled_subscriptions` gives it.
pub type Listed = Result<Vec<Subscription>, AzError>;

/// `az account show` and, when `list` is true, `az account list`, at the same time: both come
/// before any resource is read, and a real az call is about a second of start-up.
pub fn account_and_subscriptions(
    az: &Az,
    list: bool,
) -> (Result<Account, AzError>, Option<Listed>) {
    std::thread::scope(|scope| {
        let listed = list.then(|| scope.spawn(|| enabled_subscriptions(az)));
        let account = current_account(az);
        let listed = listed.map(|h| {
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (account, listed)
    })
}

/// `az account list`: every enabled subscription the signed-in identity can see.
pub fn enabled_subscriptions(az: &Az) -> Result<Vec<Subscription>, AzError> {
    let v = az.run(
        &["az".into(), "account".into(), "list".into()],
        None,
        CallKind::Read,
    )?;
    let items = v
        .as_array()
        .ok_or_else(|| malformed("az account list", "it did not print a list"))?;
    Ok(items
        .iter()
        .filter(|s| {
            s["state"]
                .as_str()
                .is_some_and(|st| st.eq_ignore_ascii_case("Enabled"))
        })
        .map(|s| Subscription {
            id: text(s, &["id"]),
            name: text(s, &["name"]),
        })
        .filter(|s| !s.id.is_empty())
        .collect())
}

/// What a `--subscription` value names among the subscriptions `az account list` showed.
#[derive(Debug, PartialEq)]
pub enum Named<'l> {
    One(&'l Subscription),
    None,
    /// A name that several subscriptions share: only an id says which one is meant.
    Several(Vec<&'l Subscription>),
}

/// Resolves a `--subscription` value as az does: an id (in any case) names its subscription;
/// any other value is a name, compared case-insensitively (az compares `lower()`ed names), which
/// may match no subscription, one, or several.
pub fn find_named<'l>(value: &str, listed: &'l [Subscription]) -> Named<'l> {
    if let Some(by_id) = listed.iter().find(|s| s.id.eq_ignore_ascii_case(value)) {
        return Named::One(by_id);
    }
    let wanted = value.to_lowercase();
    let mut by_name: Vec<&Subscription> = listed
        .iter()
        .filter(|s| s.name.to_lowercase() == wanted)
        .collect();
    match by_name.len() {
        0 => Named::None,
        1 => Named::One(by_name.remove(0)),
        _ => Named::Several(by_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, name: &str) -> Subscription {
        Subscription {
            id: id.into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_value_is_an_id_else_a_name_in_any_case() {
        let listed = [
            sub("aaaa-1", "Contoso Finance"),
            sub("bbbb-2", "Ärzte Prod"),
            sub("cccc-3", "Shared"),
            sub("dddd-4", "shared"),
            sub("eeee-5", "aaaa-1"),
        ];
        assert_eq!(find_named("AAAA-1", &listed), Named::One(&listed[0]));
        assert_eq!(
            find_named("contoso FINANCE", &listed),
            Named::One(&listed[0])
        );
        assert_eq!(
            find_named("ärzte prod", &listed),
            Named::One(&listed[1]),
            "names compare case-insensitively beyond ASCII"
        );
        assert_eq!(
            find_named("SHARED", &listed),
            Named::Several(vec![&listed[2], &listed[3]])
        );
        assert_eq!(find_named("Contoso", &listed), Named::None);
        assert_eq!(find_named("", &listed), Named::None);
        assert_eq!(find_named("Contoso Finance", &[]), Named::None);
    }
}
