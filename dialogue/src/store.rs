//! The customer and order store the tools look up: SQLite, seeded for the demo tenant from its
//! `customers.csv` and `orders.csv`. A company connects its own systems through the webhook tools
//! instead (see `tools`).
//!
//! Through sqlx, the project's one SQLite binding (the call store uses it too). The tools are
//! synchronous code on the dialogue worker's thread, so the store runs its queries on a small
//! runtime of its own.

use std::future::Future;
use std::path::{Path, PathBuf};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {message}")]
    Seed { path: PathBuf, message: String },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cannot start the database's runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub phone: String,
    pub postcode: String,
    pub pin: String,
    pub reward_points: i64,
    pub gift_card_balance_eur: f64,
    pub language: String,
    pub vip: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Order {
    pub number: String,
    pub customer_id: String,
    pub placed_on: String,
    pub status: String,
    pub shipped_on: Option<String>,
    pub delivered_on: Option<String>,
    pub carrier: Option<String>,
    pub items: String,
    pub total_eur: f64,
    pub delivery: String,
}

/// One SQLite connection (lookups take microseconds), and the runtime its queries run on.
pub struct Store {
    pool: SqlitePool,
    runtime: tokio::runtime::Runtime,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL, postcode TEXT NOT NULL, pin TEXT NOT NULL,
  reward_points INTEGER NOT NULL, gift_card_balance_eur REAL NOT NULL, language TEXT NOT NULL, vip INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS customers_phone ON customers(phone);
CREATE TABLE IF NOT EXISTS orders (
  number TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), placed_on TEXT NOT NULL,
  status TEXT NOT NULL, shipped_on TEXT, delivered_on TEXT, carrier TEXT, items TEXT NOT NULL,
  total_eur REAL NOT NULL, delivery TEXT NOT NULL);
";

fn empty_none(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.trim().to_string())
}

/// Parses a simple CSV (no quoted commas, as the demo files are) into header-keyed rows.
fn read_csv(path: &Path) -> Result<Vec<std::collections::HashMap<String, String>>, StoreError> {
    let err = |message: String| StoreError::Seed { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines.next().ok_or_else(|| err("empty file".into()))?.split(',').map(|h| h.trim().to_string()).collect();
    lines
        .enumerate()
        .map(|(i, line)| {
            let cols: Vec<&str> = line.split(',').collect();
            if cols.len() != header.len() {
                return Err(err(format!("line {}: {} columns, the header has {}", i + 2, cols.len(), header.len())));
            }
            Ok(header.iter().cloned().zip(cols.iter().map(|c| c.trim().to_string())).collect())
        })
        .collect()
}

fn customer(r: &sqlx::sqlite::SqliteRow) -> Result<Customer, sqlx::Error> {
    Ok(Customer {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        phone: r.try_get("phone")?,
        postcode: r.try_get("postcode")?,
        pin: r.try_get("pin")?,
        reward_points: r.try_get("reward_points")?,
        gift_card_balance_eur: r.try_get("gift_card_balance_eur")?,
        language: r.try_get("language")?,
        vip: r.try_get("vip")?,
    })
}

fn order(r: &sqlx::sqlite::SqliteRow) -> Result<Order, sqlx::Error> {
    Ok(Order {
        number: r.try_get("number")?,
        customer_id: r.try_get("customer_id")?,
        placed_on: r.try_get("placed_on")?,
        status: r.try_get("status")?,
        shipped_on: r.try_get("shipped_on")?,
        delivered_on: r.try_get("delivered_on")?,
        carrier: r.try_get("carrier")?,
        items: r.try_get("items")?,
        total_eur: r.try_get("total_eur")?,
        delivery: r.try_get("delivery")?,
    })
}

impl Store {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::connect(SqliteConnectOptions::new().filename(path).create_if_missing(true))
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        // One connection: each connection to ":memory:" would be a database of its own.
        Self::connect(SqliteConnectOptions::new().in_memory(true))
    }

    fn connect(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let pool = runtime.block_on(SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None).connect_with(options))?;
        let store = Self { pool, runtime };
        store.run(async { sqlx::raw_sql(SCHEMA).execute(&store.pool).await })?;
        Ok(store)
    }

    /// Runs a query to its end on the store's runtime (from a thread of its own when the caller
    /// is itself inside a tokio runtime, which cannot block on another).
    fn run<T: Send>(&self, query: impl Future<Output = T> + Send) -> T {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(|| self.runtime.block_on(query)).join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        } else {
            self.runtime.block_on(query)
        }
    }

    /// Loads the demo tenant's CSV files if the database has no customers yet.
    pub fn seed_if_empty(&self, customers_csv: &Path, orders_csv: &Path) -> Result<bool, StoreError> {
        let count: i64 = self.run(sqlx::query_scalar("SELECT COUNT(*) FROM customers").fetch_one(&self.pool))?;
        if count > 0 {
            return Ok(false);
        }
        let customers = read_csv(customers_csv)?;
        let orders = read_csv(orders_csv)?;
        let seed_err = |path: &Path, message: String| StoreError::Seed { path: path.to_path_buf(), message };
        // Checked before anything is written: a bad file leaves the database empty.
        let mut customer_rows = Vec::with_capacity(customers.len());
        for (i, c) in customers.iter().enumerate() {
            let num = |k: &str| -> Result<f64, StoreError> {
                c[k].parse().map_err(|_| seed_err(customers_csv, format!("line {}: {k} {:?} is not a number", i + 2, c[k])))
            };
            customer_rows.push((num("rewards_points")? as i64, num("gift_card_balance_eur")?));
        }
        let mut totals = Vec::with_capacity(orders.len());
        for (i, o) in orders.iter().enumerate() {
            let total: f64 = o["total_eur"].parse().map_err(|_| seed_err(orders_csv, format!("line {}: total_eur {:?} is not a number", i + 2, o["total_eur"])))?;
            totals.push(total);
        }
        self.run(async {
            let mut tx = self.pool.begin().await?;
            for (c, (points, balance)) in customers.iter().zip(&customer_rows) {
                sqlx::query("INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
                    .bind(&c["customer_id"])
                    .bind(&c["name"])
                    .bind(&c["phone"])
                    .bind(&c["postcode"])
                    .bind(&c["phone_pin"])
                    .bind(points)
                    .bind(balance)
                    .bind(&c["language"])
                    .bind(c["vip"] == "true")
                    .execute(&mut *tx)
                    .await?;
            }
            for (o, total) in orders.iter().zip(&totals) {
                sqlx::query("INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
                    .bind(&o["order_number"])
                    .bind(&o["customer_id"])
                    .bind(&o["placed_on"])
                    .bind(&o["status"])
                    .bind(empty_none(&o["shipped_on"]))
                    .bind(empty_none(&o["delivered_on"]))
                    .bind(empty_none(&o["carrier"]))
                    .bind(&o["items"])
                    .bind(total)
                    .bind(&o["delivery"])
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })?;
        Ok(true)
    }

    pub fn order(&self, number: &str) -> Result<Option<Order>, StoreError> {
        let row = self.run(sqlx::query("SELECT * FROM orders WHERE number = ?1").bind(number).fetch_optional(&self.pool))?;
        Ok(row.as_ref().map(order).transpose()?)
    }

    fn customer_where(&self, clause: &str, value: &str) -> Result<Option<Customer>, StoreError> {
        let sql = format!("SELECT * FROM customers WHERE {clause} = ?1");
        let row = self.run(sqlx::query(&sql).bind(value).fetch_optional(&self.pool))?;
        Ok(row.as_ref().map(customer).transpose()?)
    }

    pub fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        self.customer_where("id", id)
    }

    pub fn customer_by_phone(&self, phone: &str) -> Result<Option<Customer>, StoreError> {
        self.customer_where("phone", phone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Store {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tenant/demo");
        let s = Store::open_in_memory().unwrap();
        assert!(s.seed_if_empty(&dir.join("customers.csv"), &dir.join("orders.csv")).unwrap());
        assert!(!s.seed_if_empty(&dir.join("customers.csv"), &dir.join("orders.csv")).unwrap(), "seeds once");
        s
    }

    #[test]
    fn demo_data_is_seeded_unchanged() {
        let s = demo();
        let o = s.order("41234567").unwrap().unwrap();
        assert_eq!(o.status, "shipped");
        assert_eq!(o.delivery, "two-person slot 2026-11-26 10:00-12:00");
        assert_eq!(o.delivered_on, None);
        let c = s.customer_by_phone("+4930111333").unwrap().unwrap();
        assert_eq!((c.name.as_str(), c.gift_card_balance_eur, c.reward_points), ("Ben Ortiz", 25.0, 80));
        assert!(s.order("49999999").unwrap().is_none());
    }

    #[test]
    fn lookups_are_parameterised() {
        let s = demo();
        assert!(s.order("41234567' OR '1'='1").unwrap().is_none());
    }
}
