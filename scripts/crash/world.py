"""The crash test's Azure world, and the projection of it that a backout must restore.

The world is `variant_world()` of tests/e2e/runbook.rs (every customer-key variant of the MMK
control) in COPIES copies, with the targets of the encryption scope, managed instance and
database-key playbooks beside it, so that an apply run makes enough changes to last a few
seconds under azsim's latency. Per copy:

- nine storage accounts on customer keys (keyVersion "", null and pinned; a user-assigned
  identity, with and without a federated client id; a system identity; a lower-case key source;
  a resource group starting with '-'; one in a second subscription);
- four encryption scopes on customer keys: on an account that pages (five scopes at two a
  page, so three pages), one on a versioned key URI, one on a versionless one and one disabled;
  and one on the second subscription's account, beside Microsoft-managed ones;
- two SQL servers with an AzureKeyVault protector (auto-rotation on and off, one with an older
  key still registered);
- a managed instance on a customer key (auto-rotation on in the first copy, off in the second,
  an older key registered too), beside one on the service-managed key;
- two databases with TDE off; a database with its own key and nothing else; and a database
  with its own key, a user-assigned identity, two keys, auto-rotation (on in the first copy,
  off in the second) and a federated client id;

next to resources that are already compliant and `master`. CHANGES is what an uninterrupted
apply of it changes.
"""

import json

SUB_A = "00000000-0000-0000-0000-00000000aaaa"
SUB_B = "00000000-0000-0000-0000-00000000cccc"
TENANT = "00000000-0000-0000-0000-00000000bbbb"
COPIES = 2
# Per copy: 9 accounts, 4 scopes, 2 servers, 1 instance, 4 databases.
CHANGES = COPIES * 20
# Scopes per list page: the account with five scopes pages three times.
SCOPE_PAGE_SIZE = 2


def _uai(sub, name):
    return (f"/subscriptions/{sub}/resourceGroups/rg-identity/providers/"
            f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}")


def _cmk(vault, key, version):
    current = version if version else "5f4e3d2c1b0a99887766554433221100"
    return {
        "keySource": "Microsoft.Keyvault",
        "keyVaultProperties": {
            "keyVaultUri": f"https://{vault}.vault.azure.net/",
            "keyName": key,
            "keyVersion": version,
            "currentVersionedKeyIdentifier": f"https://{vault}.vault.azure.net/keys/{key}/{current}",
        },
        "encryptionIdentity": None,
        "requireInfrastructureEncryption": False,
    }


def _mmk(source):
    return {"keySource": source, "keyVaultProperties": None, "encryptionIdentity": None,
            "requireInfrastructureEncryption": False}


def _account(sub, rg, name, encryption, tags=None, identity=None):
    a = {"subscription": sub, "resourceGroup": rg, "name": name, "encryption": encryption,
         "tags": tags if tags is not None else {}}
    if identity is not None:
        a["identity"] = identity
    return a


def _key_uri(vault, key, version):
    return f"https://{vault}.vault.azure.net/keys/{key}/{version}"


def _version(c, digit="0"):
    """A 32-hex-digit key version, distinct per copy."""
    return "0123456789abcdef0123456789abcde" + str(c) if digit == "0" else \
        "fedcba9876543210fedcba987654321" + str(c)


def _accounts(c):
    rg = f"rg-data-{c}"
    uai = _uai(SUB_A, f"uai-cmk-{c}")
    with_uai = _cmk("kv-finance", "st-key", None)
    with_uai["encryptionIdentity"] = {"encryptionUserAssignedIdentity": uai,
                                      "encryptionFederatedIdentityClientId": None}
    federated = _cmk("kv-finance", "st-key", "")
    federated["encryptionIdentity"] = {
        "encryptionUserAssignedIdentity": uai,
        "encryptionFederatedIdentityClientId": f"99999999-8888-7777-6666-55555555555{c}"}
    lower = _cmk("kv-finance", "st-key", "")
    lower["keySource"] = "microsoft.keyvault"
    system = {"type": "SystemAssigned", "principalId": f"11111111-2222-3333-4444-55555555555{c}",
              "tenantId": TENANT, "userAssignedIdentities": None}
    return [
        _account(SUB_A, rg, f"stmmk{c}", _mmk("Microsoft.Storage"), {"data-classification": "critical"}),
        _account(SUB_A, rg, f"stlower{c}", _mmk("microsoft.storage")),
        _account(SUB_A, rg, f"stdefault{c}", None),
        _account(SUB_A, rg, f"stcmkempty{c}", _cmk("kv-finance", "st-key", ""), {"data-classification": "critical"}),
        _account(SUB_A, rg, f"stcmknull{c}", _cmk("kv-finance", "st-key", None)),
        _account(SUB_A, rg, f"stcmkpinned{c}", _cmk("kv-finance", "st-key", "0123456789abcdef0123456789abcdef")),
        _account(SUB_A, rg, f"stcmkuai{c}", with_uai,
                 identity={"type": "UserAssigned", "principalId": None, "tenantId": None,
                           "userAssignedIdentities": {uai: {"clientId": "aecd5339-1aac-4983-a213-d1d8c155471" + str(c),
                                                            "principalId": "7393b36e-589f-4407-afd8-f136da7294e" + str(c)}}}),
        _account(SUB_A, rg, f"stkvlower{c}", lower),
        _account(SUB_A, rg, f"stcmksystem{c}", _cmk("kv-finance", "st-key", "0123456789abcdef0123456789abcdef"),
                 identity=system),
        _account(SUB_A, rg, f"stcmkfederated{c}", federated),
        _account(SUB_A, f"-rg.ops({c})", f"stdash{c}", _cmk("kv-ops", "k", "")),
        _account(SUB_B, f"rg-stage-{c}", f"ststage{c}", _cmk("kv-stage", "k", "")),
    ]


def _scope(sub, rg, account, name, key_uri=None, state="Enabled"):
    s = {"subscription": sub, "resourceGroup": rg, "account": account, "name": name,
         "source": "Microsoft.KeyVault" if key_uri else "Microsoft.Storage", "state": state}
    if key_uri:
        s["keyVaultProperties"] = {"keyUri": key_uri}
    return s


def _scopes(c):
    """Scope names carry the copy's number, so that a kill point's needle (`--name=...`) names
    one scope. The account on Microsoft-managed keys holds five, in name order: a list pages
    after the second and the fourth."""
    rg, account = f"rg-data-{c}", f"stmmk{c}"
    vault = f"https://kv-scope-{c}.vault.azure.net/keys"
    return [
        _scope(SUB_A, rg, account, f"kv-disabled-{c}", f"{vault}/scope-old/{_version(c, 'f')}", "Disabled"),
        _scope(SUB_A, rg, account, f"kv-versioned-{c}", f"{vault}/scope-key/{_version(c)}"),
        _scope(SUB_A, rg, account, f"kv-versionless-{c}", f"{vault}/scope-key"),
        _scope(SUB_A, rg, account, f"mmk-a-{c}"),
        _scope(SUB_A, rg, account, f"mmk-b-{c}"),
        _scope(SUB_B, f"rg-stage-{c}", f"ststage{c}", f"kv-stage-{c}", f"https://kv-stage.vault.azure.net/keys/scope-{c}"),
    ]


def _servers(c):
    key = _key_uri(f"kv-sql-{c}", "tde", _version(c))
    old_key = _key_uri(f"kv-sql-{c}", "tde", _version(c, "f"))
    key2 = _key_uri(f"kv-sql2-{c}", "tde2", "abcdefabcdefabcdefabcdefabcdefa" + str(c))
    return [
        {"subscription": SUB_A, "resourceGroup": "rg-sql", "name": f"sql-sm-{c}",
         "tags": {"data-classification": "critical"},
         "protector": {"serverKeyType": "ServiceManaged", "uri": None, "autoRotationEnabled": False},
         "keys": []},
        {"subscription": SUB_A, "resourceGroup": "rg-sql", "name": f"sql-akv-{c}", "tags": None,
         "protector": {"serverKeyType": "AzureKeyVault", "uri": key, "autoRotationEnabled": True},
         "keys": [{"uri": key, "autoRotationEnabled": True},
                  {"uri": old_key, "autoRotationEnabled": False}]},
        {"subscription": SUB_A, "resourceGroup": "rg-sql", "name": f"sql-akv-norotate-{c}", "tags": None,
         "protector": {"serverKeyType": "AzureKeyVault", "uri": key2, "autoRotationEnabled": False},
         "keys": [{"uri": key2, "autoRotationEnabled": False}]},
    ]


def _instances(c):
    """A managed instance on a customer key with an older key registered too (auto-rotation in
    the first copy only), and one on the service-managed key."""
    key = _key_uri(f"kv-mi-{c}", "mi-tde", _version(c))
    old_key = _key_uri(f"kv-mi-{c}", "mi-tde", _version(c, "f"))
    rotate = c == 0
    return [
        {"subscription": SUB_A, "resourceGroup": "rg-sqlmi", "name": f"sqlmi-akv-{c}",
         "protector": {"serverKeyType": "AzureKeyVault", "uri": key, "autoRotationEnabled": rotate},
         "keys": [{"uri": key, "autoRotationEnabled": rotate}, {"uri": old_key, "autoRotationEnabled": False}]},
        {"subscription": SUB_A, "resourceGroup": "rg-sqlmi", "name": f"sqlmi-sm-{c}",
         "protector": {"serverKeyType": "ServiceManaged", "uri": None, "autoRotationEnabled": False},
         "keys": []},
    ]


def _databases(c):
    system_db = {"kind": "v12.0,system", "sku": {"name": "System", "tier": "System", "capacity": 0}}
    db_key = _key_uri(f"kv-db-{c}", "dbkey", _version(c, "f"))
    uai_key = _key_uri(f"kv-db-{c}", "uai-key", _version(c))
    uai_old = _key_uri(f"kv-db-{c}", "uai-key", _version(c, "f"))
    uai = _uai(SUB_A, f"uai-db-{c}")
    own_key = {"encryptionProtectorAutoRotation": c == 0, "keys": [uai_key, uai_old],
               "identity": {"type": "UserAssigned", "userAssignedIdentities": {
                   uai: {"clientId": f"33333333-0000-0000-0000-00000000000{c}",
                         "principalId": f"44444444-0000-0000-0000-00000000000{c}"}}},
               "federatedClientId": f"55555555-0000-0000-0000-00000000000{c}"}

    def db(server, name, state, protector=None, extra=None):
        d = {"subscription": SUB_A, "resourceGroup": "rg-sql", "server": server, "name": name,
             "encryptionProtector": protector, "tdeState": state}
        d.update(extra or {})
        return d

    return [
        db(f"sql-sm-{c}", "master", "Enabled", extra=system_db),
        db(f"sql-sm-{c}", f"db-on-{c}", "Enabled"),
        db(f"sql-sm-{c}", f"db-off-{c}", "Disabled"),
        db(f"sql-sm-{c}", f"db-cmk-{c}", "Enabled", protector=db_key),
        db(f"sql-sm-{c}", f"db-uai-{c}", "Enabled", protector=uai_key, extra=own_key),
        db(f"sql-akv-{c}", "master", "Enabled", extra=system_db),
        db(f"sql-akv-{c}", f"db-x-{c}", "Enabled", extra={"tags": {"data-classification": "critical"}}),
        db(f"sql-akv-{c}", f"db-akvoff-{c}", "Disabled"),
        db(f"sql-akv-norotate-{c}", "master", "Enabled", extra=system_db),
    ]


def build(latency_ms, jitter_ms, faults=()):
    copies = range(COPIES)
    return {
        "tenantId": TENANT,
        "user": {"name": "ops@contoso.com", "type": "user"},
        "settings": {"signedIn": True, "tdeField": "state", "latencyMs": latency_ms, "jitterMs": jitter_ms,
                     "encryptionScopePageSize": SCOPE_PAGE_SIZE},
        "subscriptions": [
            {"id": SUB_A, "name": "Production", "state": "Enabled", "isDefault": True},
            {"id": SUB_B, "name": "Staging", "state": "Enabled", "isDefault": False},
        ],
        "storageAccounts": [a for c in copies for a in _accounts(c)],
        "encryptionScopes": [s for c in copies for s in _scopes(c)],
        "sqlServers": [s for c in copies for s in _servers(c)],
        "sqlManagedInstances": [m for c in copies for m in _instances(c)],
        "sqlDatabases": [d for c in copies for d in _databases(c)],
        "faults": list(faults),
    }


def _pick(value, path):
    for seg in path.split("."):
        value = value.get(seg) if isinstance(value, dict) else None
    return value


STORAGE_FIELDS = [
    "encryption.keySource",
    "encryption.keyVaultProperties.keyVaultUri",
    "encryption.keyVaultProperties.keyName",
    "encryption.keyVaultProperties.keyVersion",
    "encryption.encryptionIdentity.encryptionUserAssignedIdentity",
    "encryption.encryptionIdentity.encryptionFederatedIdentityClientId",
    "identity",
]
SCOPE_FIELDS = ["source", "keyVaultProperties.keyUri", "state"]
SERVER_FIELDS = ["protector.serverKeyType", "protector.uri", "protector.autoRotationEnabled"]
DATABASE_FIELDS = ["tdeState", "encryptionProtector", "encryptionProtectorAutoRotation",
                   "federatedClientId", "identity.type"]


def _enum(v, field):
    """An enum compares in any casing (ARCHITECTURE.md, Equality rules)."""
    if isinstance(v.get(field), str):
        v[field] = v[field].lower()
    return v


def _key_list(keys):
    """A server's or an instance's registered keys: the protector's key must still be
    registered, and no key may be lost."""
    return sorted(k["uri"].lower() for k in keys or [])


def scope_name(s):
    return f"scope {s['subscription'][-4:]}/{s['resourceGroup']}/{s['account']}/{s['name']}"


def essentials(world):
    """Resource -> the fields the MMK control reads or restores (as tests/e2e/harness.rs's
    `essentials`). Key sources compare case-insensitively (enums); every other field exactly, so
    that a keyVersion of null, "" or a version stay distinct, and a scope's versionless key URI
    never passes for the version it resolves to. A scope's state is kept too: backout never
    enables or disables one. A server and an instance also list their registered keys; a
    database its own key set and its user-assigned identities (ids and the ids Entra ID gave
    them), exactly."""
    out = {}
    for a in world["storageAccounts"]:
        out[f"storage {a['subscription'][-4:]}/{a['resourceGroup']}/{a['name']}"] = _enum(
            {p: _pick(a, p) for p in STORAGE_FIELDS}, "encryption.keySource")
    for s in world.get("encryptionScopes", []):
        out[scope_name(s)] = _enum({p: _pick(s, p) for p in SCOPE_FIELDS}, "source")
    for kind, items in (("server", world["sqlServers"]), ("mi", world.get("sqlManagedInstances", []))):
        for s in items:
            v = {p: _pick(s, p) for p in SERVER_FIELDS}
            v["keys"] = _key_list(s.get("keys"))
            out[f"{kind} {s['resourceGroup']}/{s['name']}"] = v
    for d in world["sqlDatabases"]:
        v = {p: _pick(d, p) for p in DATABASE_FIELDS}
        v["keys"] = sorted(d.get("keys") or [])
        v["identities"] = sorted(((d.get("identity") or {}).get("userAssignedIdentities") or {}).items())
        out[f"db {d['server']}/{d['name']}"] = v
    return out


def differences(a, b):
    """The resources whose projections differ, each with the fields that differ."""
    diff = {}
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x != y:
            fields = sorted(f for f in set(x or {}) | set(y or {})
                            if (x or {}).get(f) != (y or {}).get(f))
            diff[name] = {f: [(x or {}).get(f), (y or {}).get(f)] for f in fields}
    return diff


if __name__ == "__main__":
    print(json.dumps(build(0, 0), indent=1))
