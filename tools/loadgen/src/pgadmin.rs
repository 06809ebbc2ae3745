//! The PostgreSQL server of the multi-node scenarios, reached through an
//! admin URL (`--postgres`): probe it, create a fresh database per case and
//! drop it afterwards.

use crate::proto::now_us;
use anyhow::{Context, Result};
use std::time::Duration;
use tokio_postgres::NoTls;

/// The PostgreSQL server the nodes share, reached through an admin URL
/// (any database on it; new databases are created next to it).
#[derive(Clone, Debug)]
pub struct PgAdmin {
    url: String,
}

/// A database created for one case; [`FreshDb::drop_db`] removes it.
pub struct FreshDb {
    admin: PgAdmin,
    name: String,
    /// `DATABASE_URL` for the nodes.
    pub url: String,
}

async fn pg_exec(url: &str, sql: &str) -> Result<()> {
    let (client, conn) =
        tokio::time::timeout(Duration::from_secs(5), tokio_postgres::connect(url, NoTls))
            .await
            .context("connect timed out")??;
    let task = tokio::spawn(conn);
    let r = client.batch_execute(sql).await;
    drop(client);
    let _ = task.await;
    Ok(r?)
}

/// `url` with its database (the last path segment) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |j| j + 2) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

impl PgAdmin {
    /// Check that the server answers; the error says why not.
    pub async fn probe(url: &str) -> Result<PgAdmin> {
        pg_exec(url, "select 1")
            .await
            .with_context(|| format!("PostgreSQL not reachable at {url}"))?;
        Ok(PgAdmin {
            url: url.to_string(),
        })
    }

    /// A new empty database.
    pub async fn create(&self, label: &str) -> Result<FreshDb> {
        let name = format!("ferry_bench_{label}_{}_{}", std::process::id(), now_us());
        pg_exec(&self.url, &format!("create database {name}")).await?;
        Ok(FreshDb {
            admin: self.clone(),
            url: with_database(&self.url, &name),
            name,
        })
    }
}

impl FreshDb {
    /// Drop the database (connections of nodes still running are ended).
    pub async fn drop_db(self) {
        let sql = format!("drop database if exists {} with (force)", self.name);
        if let Err(e) = pg_exec(&self.admin.url, &sql).await {
            eprintln!("    could not drop database {}: {e:#}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
