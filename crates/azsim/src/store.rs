//! The world store: one SQLite database (WAL mode) that many `az` processes read and change at
//! once. SQLite gives atomic changes and concurrent readers without code of our own.
//!
//! Resources live in one table keyed by (kind, subscription, resource group, parent, name), all
//! compared case-insensitively (`COLLATE NOCASE`) because Azure names are; the stored body keeps
//! the original case for printing. The key's (kind, subscription) prefix is the index a list
//! call uses, so a show is one B-tree lookup and a list is one range scan in name order.

use crate::world::{
    EncryptionScope, Fault, Settings, SqlDatabase, SqlManagedInstance, SqlServer, StorageAccount,
    Subscription, User, World,
};
use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    ord INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE COLLATE NOCASE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL, sub TEXT NOT NULL COLLATE NOCASE, rg TEXT NOT NULL COLLATE NOCASE,
    parent TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE, body TEXT NOT NULL,
    PRIMARY KEY (kind, sub, rg, parent, name)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS resources_by_group ON resources (sub, rg);
CREATE TABLE IF NOT EXISTS faults (idx INTEGER PRIMARY KEY, body TEXT NOT NULL, remaining INTEGER);
";

/// The resource kinds azsim stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    StorageAccount,
    SqlServer,
    SqlDatabase,
    SqlManagedInstance,
    /// A storage account's encryption scope; its parent is the account's name.
    EncryptionScope,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::StorageAccount => "storageAccount",
            Kind::SqlServer => "sqlServer",
            Kind::SqlDatabase => "sqlDatabase",
            Kind::SqlManagedInstance => "sqlManagedInstance",
            Kind::EncryptionScope => "encryptionScope",
        }
    }
}

/// Where a resource sits: `parent` is the server name for a database, empty otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Loc<'a> {
    pub sub: &'a str,
    pub rg: &'a str,
    pub parent: &'a str,
    pub name: &'a str,
}

/// The tenant-wide values every call needs, read in one query.
pub struct Header {
    pub tenant_id: String,
    pub user: User,
    pub settings: Settings,
}

pub struct Store {
    conn: Connection,
}

/// Read and write operations over a connection or an open transaction.
pub struct Db<'c> {
    conn: &'c Connection,
}

impl Store {
    /// Opens an existing world for the CLI face; never creates one, so a mistyped
    /// `AZSIM_WORLD` is an error instead of an empty tenant.
    pub fn open(path: &Path) -> Result<Store> {
        if !path.exists() {
            bail!(
                "world database '{}' does not exist (create it with `azsim load` or `azsim seed`)",
                path.display()
            );
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open world database '{}'", path.display()))?;
        Store::configure(conn)
    }

    /// Opens or creates a world database with the schema in place (for load and seed).
    pub fn create(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot create world database '{}'", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(SCHEMA)?;
        Store::configure(conn)
    }

    fn configure(conn: Connection) -> Result<Store> {
        // Many processes share the file: wait for a writer instead of failing with SQLITE_BUSY.
        conn.busy_timeout(Duration::from_secs(30))?;
        // With WAL, NORMAL only risks the last transactions on power loss: fine for a simulator.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Store { conn })
    }

    /// Reads outside a transaction (each statement sees a consistent snapshot).
    pub fn db(&self) -> Db<'_> {
        Db { conn: &self.conn }
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken before reading, so a
    /// read-modify-write never loses a concurrent caller's change, and an error rolls it back.
    pub fn immediate<R, E: From<anyhow::Error>>(
        &mut self,
        f: impl FnOnce(&Db) -> Result<R, E>,
    ) -> Result<R, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(e.into()))?;
        let result = f(&Db { conn: &tx })?;
        tx.commit().map_err(|e| E::from(e.into()))?;
        Ok(result)
    }

    /// Replaces the whole world in one transaction (prepared statements: seeding 15,000
    /// resources takes well under a second).
    pub fn replace_world(&mut self, world: &World) -> Result<()> {
        self.immediate(|db| -> Result<()> {
            db.conn.execute_batch("DELETE FROM meta; DELETE FROM subscriptions; DELETE FROM resources; DELETE FROM faults;")?;
            db.set_meta("schema", SCHEMA_VERSION)?;
            db.set_meta("tenantId", &world.tenant_id)?;
            db.set_meta("user", &serde_json::to_string(&world.user)?)?;
            db.set_settings(&world.settings)?;
            let mut sub_stmt = db.conn.prepare("INSERT INTO subscriptions (ord, id, body) VALUES (?1, ?2, ?3)")?;
            for (ord, sub) in world.subscriptions.iter().enumerate() {
                sub_stmt.execute(params![ord as i64, sub.id, serde_json::to_string(sub)?])?;
            }
            for sa in &world.storage_accounts {
                db.put(Kind::StorageAccount, storage_loc(sa), sa)?;
            }
            for srv in &world.sql_servers {
                db.put(Kind::SqlServer, server_loc(srv), srv)?;
            }
            for sdb in &world.sql_databases {
                db.put(Kind::SqlDatabase, database_loc(sdb), sdb)?;
            }
            for mi in &world.sql_managed_instances {
                db.put(Kind::SqlManagedInstance, managed_instance_loc(mi), mi)?;
            }
            for scope in &world.encryption_scopes {
                db.put(Kind::EncryptionScope, scope_loc(scope), scope)?;
            }
            let mut fault_stmt = db.conn.prepare("INSERT INTO faults (idx, body, remaining) VALUES (?1, ?2, ?3)")?;
            for (idx, fault) in world.faults.iter().enumerate() {
                let body = Fault { times: None, ..fault.clone() };
                fault_stmt.execute(params![idx as i64, serde_json::to_string(&body)?, fault.times.map(|t| t as i64)])?;
            }
            Ok(())
        })
    }

    /// Reads the whole world back (the `dump` form), in key order.
    pub fn load_world(&self) -> Result<World> {
        let db = self.db();
        let header = db.header()?;
        Ok(World {
            tenant_id: header.tenant_id,
            user: header.user,
            settings: header.settings,
            subscriptions: db.subscriptions()?,
            storage_accounts: db.scan(Kind::StorageAccount, None)?,
            sql_servers: db.scan(Kind::SqlServer, None)?,
            sql_databases: db.scan(Kind::SqlDatabase, None)?,
            sql_managed_instances: db.scan(Kind::SqlManagedInstance, None)?,
            encryption_scopes: db.scan(Kind::EncryptionScope, None)?,
            faults: db.faults()?.into_iter().map(|(_, f)| f).collect(),
        })
    }
}

pub fn storage_loc(sa: &StorageAccount) -> Loc<'_> {
    Loc {
        sub: &sa.subscription,
        rg: &sa.resource_group,
        parent: "",
        name: &sa.name,
    }
}

pub fn server_loc(srv: &SqlServer) -> Loc<'_> {
    Loc {
        sub: &srv.subscription,
        rg: &srv.resource_group,
        parent: "",
        name: &srv.name,
    }
}

pub fn managed_instance_loc(mi: &SqlManagedInstance) -> Loc<'_> {
    Loc {
        sub: &mi.subscription,
        rg: &mi.resource_group,
        parent: "",
        name: &mi.name,
    }
}

pub fn database_loc(db: &SqlDatabase) -> Loc<'_> {
    Loc {
        sub: &db.subscription,
        rg: &db.resource_group,
        parent: &db.server,
        name: &db.name,
    }
}

pub fn scope_loc(scope: &EncryptionScope) -> Loc<'_> {
    Loc {
        sub: &scope.subscription,
        rg: &scope.resource_group,
        parent: &scope.account,
        name: &scope.name,
    }
}

impl Db<'_> {
    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn set_settings(&self, settings: &Settings) -> Result<()> {
        self.set_meta("settings", &serde_json::to_string(settings)?)
    }

    pub fn header(&self) -> Result<Header> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM meta")
            .context("the file is not an azsim world database")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let (mut schema, mut tenant_id, mut user, mut settings) = (None, None, None, None);
        for row in rows {
            let (key, value) = row?;
            match key.as_str() {
                "schema" => schema = Some(value),
                "tenantId" => tenant_id = Some(value),
                "user" => user = Some(serde_json::from_str(&value)?),
                "settings" => settings = Some(serde_json::from_str(&value)?),
                _ => {}
            }
        }
        if schema.as_deref() != Some(SCHEMA_VERSION) {
            bail!(
                "the file is not an azsim world database of schema {SCHEMA_VERSION} (run `azsim load` or `azsim seed`)"
            );
        }
        Ok(Header {
            tenant_id: tenant_id.context("world has no tenantId")?,
            user: user.context("world has no user")?,
            settings: settings.context("world has no settings")?,
        })
    }

    pub fn subscriptions(&self) -> Result<Vec<Subscription>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM subscriptions ORDER BY ord")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|b| Ok(serde_json::from_str(&b?)?)).collect()
    }

    pub fn get<T: DeserializeOwned>(&self, kind: Kind, loc: Loc) -> Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT body FROM resources WHERE kind = ?1 AND sub = ?2 AND rg = ?3 AND parent = ?4 AND name = ?5",
        )?;
        let body: Option<String> = stmt
            .query_row(
                params![kind.tag(), loc.sub, loc.rg, loc.parent, loc.name],
                |r| r.get(0),
            )
            .optional()?;
        body.map(|b| serde_json::from_str(&b).context("corrupt resource body"))
            .transpose()
    }

    /// Lists a subscription's resources of one kind, optionally within a group and a parent,
    /// in (group, parent, name) order.
    pub fn list<T: DeserializeOwned>(
        &self,
        kind: Kind,
        sub: &str,
        rg: Option<&str>,
        parent: Option<&str>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT body FROM resources WHERE kind = ?1 AND sub = ?2 AND (?3 IS NULL OR rg = ?3) \
             AND (?4 IS NULL OR parent = ?4) ORDER BY rg, parent, name",
        )?;
        let rows = stmt.query_map(params![kind.tag(), sub, rg, parent], |r| {
            r.get::<_, String>(0)
        })?;
        rows.map(|b| serde_json::from_str(&b?).context("corrupt resource body"))
            .collect()
    }

    fn scan<T: DeserializeOwned>(&self, kind: Kind, sub: Option<&str>) -> Result<Vec<T>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM resources WHERE kind = ?1 AND (?2 IS NULL OR sub = ?2) ORDER BY sub, rg, parent, name")?;
        let rows = stmt.query_map(params![kind.tag(), sub], |r| r.get::<_, String>(0))?;
        rows.map(|b| serde_json::from_str(&b?).context("corrupt resource body"))
            .collect()
    }

    /// A resource group exists when it holds a resource: azsim's worlds list resources only.
    pub fn group_exists(&self, sub: &str, rg: &str) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM resources WHERE sub = ?1 AND rg = ?2 LIMIT 1")?;
        Ok(stmt.exists(params![sub, rg])?)
    }

    /// Inserts or replaces a resource. The key columns compare case-insensitively, so a
    /// replace with the stored body's names updates the same row.
    pub fn put<T: Serialize>(&self, kind: Kind, loc: Loc, body: &T) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO resources (kind, sub, rg, parent, name, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        stmt.execute(params![
            kind.tag(),
            loc.sub,
            loc.rg,
            loc.parent,
            loc.name,
            serde_json::to_string(body)?
        ])?;
        Ok(())
    }

    /// The faults in list order, each with its remaining budget in `times`.
    pub fn faults(&self) -> Result<Vec<(i64, Fault)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT idx, body, remaining FROM faults ORDER BY idx")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (idx, body, remaining) = row?;
            let fault: Fault = serde_json::from_str(&body)?;
            Ok((
                idx,
                Fault {
                    times: remaining.map(|t| t.max(0) as u64),
                    ..fault
                },
            ))
        })
        .collect()
    }

    /// Takes one firing from a counted fault; false when its budget is used up. One UPDATE
    /// statement is atomic, so parallel callers never fire a fault more often than `times`.
    pub fn consume_fault(&self, idx: i64) -> Result<bool> {
        let changed = self.conn.execute(
            "UPDATE faults SET remaining = remaining - 1 WHERE idx = ?1 AND remaining > 0",
            params![idx],
        )?;
        Ok(changed == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::from_json(
            r#"{"subscriptions":[{"id":"S1","name":"one"}],
                "storageAccounts":[{"resourceGroup":"RG-One","name":"SaOne"},{"resourceGroup":"rg-two","name":"satwo"}],
                "sqlManagedInstances":[{"resourceGroup":"rg-mi","name":"Mi1","protector":{"serverKeyType":"AzureKeyVault","uri":"https://kv1.vault.azure.net/keys/k/v1"}}],
                "encryptionScopes":[{"resourceGroup":"RG-One","account":"SaOne","name":"scope1"}],
                "faults":[{"times":1,"latencyMs":5}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn round_trip_and_case_insensitive_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("w.db")).unwrap();
        let w = world();
        store.replace_world(&w).unwrap();
        assert_eq!(store.load_world().unwrap(), w);
        let db = store.db();
        let loc = Loc {
            sub: "s1",
            rg: "rg-one",
            parent: "",
            name: "SAONE",
        };
        let sa: StorageAccount = db.get(Kind::StorageAccount, loc).unwrap().unwrap();
        assert_eq!(sa.name, "SaOne", "printed names keep their case");
        assert!(db.group_exists("s1", "RG-TWO").unwrap());
        assert!(!db.group_exists("s1", "rg-three").unwrap());
        let in_group: Vec<StorageAccount> = db
            .list(Kind::StorageAccount, "s1", Some("rg-two"), None)
            .unwrap();
        assert_eq!(in_group.len(), 1);
        let mi: SqlManagedInstance = db
            .get(
                Kind::SqlManagedInstance,
                Loc {
                    sub: "S1",
                    rg: "RG-MI",
                    parent: "",
                    name: "mi1",
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!((mi.name.as_str(), mi.keys.len()), ("Mi1", 1));
        assert!(db.group_exists("s1", "rg-mi").unwrap());
    }

    #[test]
    fn counted_fault_fires_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("w.db")).unwrap();
        store.replace_world(&world()).unwrap();
        assert!(store.db().consume_fault(0).unwrap());
        assert!(!store.db().consume_fault(0).unwrap());
        assert_eq!(store.db().faults().unwrap()[0].1.times, Some(0));
    }
}
