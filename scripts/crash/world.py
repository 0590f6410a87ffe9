"""The crash test's Azure world, and the projection of it that a backout must restore.

The world is `variant_world()` of tests/e2e/runbook.rs (every customer-key variant of the MMK
control) in COPIES copies, so that an apply run makes enough changes to last a few seconds
under azsim's latency: per copy, nine storage accounts on customer keys (keyVersion "", null
and pinned; a user-assigned identity, with and without a federated client id; a system
identity; a lower-case key source; a resource group starting with '-'; one in a second
subscription), two SQL servers with an AzureKeyVault protector (auto-rotation on and off, one
with an older key still registered), and two databases with TDE off, next to resources that
are already compliant, `master`, and a database with its own customer key (a manual step that
azbook never runs).
"""

import json

SUB_A = "00000000-0000-0000-0000-00000000aaaa"
SUB_B = "00000000-0000-0000-0000-00000000cccc"
TENANT = "00000000-0000-0000-0000-00000000bbbb"
COPIES = 2


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


def build(latency_ms, jitter_ms, faults=()):
    accounts, servers, databases = [], [], []
    for c in range(COPIES):
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
        accounts += [
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
        key = _key_uri(f"kv-sql-{c}", "tde", "0123456789abcdef0123456789abcde" + str(c))
        old_key = _key_uri(f"kv-sql-{c}", "tde", "fedcba9876543210fedcba987654321" + str(c))
        key2 = _key_uri(f"kv-sql2-{c}", "tde2", "abcdefabcdefabcdefabcdefabcdefa" + str(c))
        db_key = _key_uri(f"kv-db-{c}", "dbkey", "fedcba9876543210fedcba987654321" + str(c))
        servers += [
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
        system_db = {"kind": "v12.0,system", "sku": {"name": "System", "tier": "System", "capacity": 0}}

        def db(server, name, state, protector=None, extra=None):
            d = {"subscription": SUB_A, "resourceGroup": "rg-sql", "server": server, "name": name,
                 "encryptionProtector": protector, "tdeState": state}
            d.update(extra or {})
            return d

        databases += [
            db(f"sql-sm-{c}", "master", "Enabled", extra=system_db),
            db(f"sql-sm-{c}", f"db-on-{c}", "Enabled"),
            db(f"sql-sm-{c}", f"db-off-{c}", "Disabled"),
            db(f"sql-sm-{c}", f"db-cmk-{c}", "Enabled", protector=db_key),
            db(f"sql-akv-{c}", "master", "Enabled", extra=system_db),
            db(f"sql-akv-{c}", f"db-x-{c}", "Enabled", extra={"tags": {"data-classification": "critical"}}),
            db(f"sql-akv-{c}", f"db-akvoff-{c}", "Disabled"),
            db(f"sql-akv-norotate-{c}", "master", "Enabled", extra=system_db),
        ]
    return {
        "tenantId": TENANT,
        "user": {"name": "ops@contoso.com", "type": "user"},
        "settings": {"signedIn": True, "tdeField": "state", "latencyMs": latency_ms, "jitterMs": jitter_ms},
        "subscriptions": [
            {"id": SUB_A, "name": "Production", "state": "Enabled", "isDefault": True},
            {"id": SUB_B, "name": "Staging", "state": "Enabled", "isDefault": False},
        ],
        "storageAccounts": accounts,
        "sqlServers": servers,
        "sqlDatabases": databases,
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
SERVER_FIELDS = ["protector.serverKeyType", "protector.uri", "protector.autoRotationEnabled"]
DATABASE_FIELDS = ["tdeState", "encryptionProtector"]


def essentials(world):
    """Resource -> the fields the MMK control reads or restores (as tests/e2e/harness.rs's
    `essentials`). The key source compares case-insensitively (an enum: ARCHITECTURE.md,
    Equality rules); every other field exactly, so that a keyVersion of null, "" or a version
    stay distinct. A server also lists its registered keys: the protector's key must still be
    registered."""
    out = {}
    for a in world["storageAccounts"]:
        v = {p: _pick(a, p) for p in STORAGE_FIELDS}
        if isinstance(v["encryption.keySource"], str):
            v["encryption.keySource"] = v["encryption.keySource"].lower()
        out[f"storage {a['subscription'][-4:]}/{a['resourceGroup']}/{a['name']}"] = v
    for s in world["sqlServers"]:
        v = {p: _pick(s, p) for p in SERVER_FIELDS}
        v["keys"] = sorted(k["uri"].lower() for k in s.get("keys") or [])
        out[f"server {s['resourceGroup']}/{s['name']}"] = v
    for d in world["sqlDatabases"]:
        out[f"db {d['server']}/{d['name']}"] = {p: _pick(d, p) for p in DATABASE_FIELDS}
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
