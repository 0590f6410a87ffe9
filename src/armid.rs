//! ARM resource ids: which resource lies under which. Reports group child results under their
//! parent, and a waiver on a resource covers the resources under it, by the same rule.

/// The id of the resource `id` lies under, and `id`'s own kind as the id spells it
/// (`encryptionScopes`): `.../providers/NS/T1/N1/T2/N2` lies under `.../providers/NS/T1/N1`.
/// None for a top-level resource, or an id with no provider (a subscription).
pub fn parent(id: &str) -> Option<(&str, &str)> {
    let mut tail = id.rsplitn(3, '/');
    let (_name, kind, rest) = (tail.next()?, tail.next()?, tail.next()?);
    let segments: Vec<&str> = rest.split('/').collect();
    let providers = segments
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))?;
    // After `providers`: the namespace, then type/name pairs; the parent needs one pair at least.
    let after = segments.len() - providers - 1;
    (after >= 3 && after % 2 == 1).then_some((rest, kind))
}

/// Every resource `id` lies under, nearest first.
pub fn ancestors(id: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(parent(id).map(|(p, _)| p), |a| parent(a).map(|(p, _)| p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1";

    #[test]
    fn a_child_lies_under_its_parent_and_a_top_level_resource_under_nothing() {
        let scope = format!("{ACCOUNT}/encryptionScopes/sc1");
        assert_eq!(parent(&scope), Some((ACCOUNT, "encryptionScopes")));
        assert_eq!(parent(ACCOUNT), None);
        assert_eq!(parent("/subscriptions/s"), None);
        assert_eq!(parent("/subscriptions/s/resourceGroups/rg"), None);
        let deeper = format!("{scope}/things/t1");
        assert_eq!(
            ancestors(&deeper).collect::<Vec<_>>(),
            [scope.as_str(), ACCOUNT]
        );
        assert_eq!(ancestors(ACCOUNT).count(), 0);
    }
}
