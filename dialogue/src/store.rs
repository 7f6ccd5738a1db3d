//! The customer and order store the tools look up: SQLite, seeded for the demo tenant from its
//! `customers.csv` and `orders.csv`. A company connects its own systems through the webhook tools
//! instead (see `tools`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {message}")]
    Seed { path: PathBuf, message: String },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
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

/// One SQLite connection behind a mutex: lookups take microseconds.
pub struct Store {
    conn: Mutex<Connection>,
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

impl Store {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the demo tenant's CSV files if the database has no customers yet.
    pub fn seed_if_empty(&self, customers_csv: &Path, orders_csv: &Path) -> Result<bool, StoreError> {
        let count: i64 = self.conn().query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))?;
        if count > 0 {
            return Ok(false);
        }
        let customers = read_csv(customers_csv)?;
        let orders = read_csv(orders_csv)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (i, c) in customers.iter().enumerate() {
            let num = |k: &str| -> Result<f64, StoreError> {
                c[k].parse().map_err(|_| StoreError::Seed { path: customers_csv.to_path_buf(), message: format!("line {}: {k} {:?} is not a number", i + 2, c[k]) })
            };
            tx.execute(
                "INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![c["customer_id"], c["name"], c["phone"], c["postcode"], c["phone_pin"], num("rewards_points")? as i64,
                        num("gift_card_balance_eur")?, c["language"], c["vip"] == "true"],
            )?;
        }
        for (i, o) in orders.iter().enumerate() {
            let total: f64 = o["total_eur"].parse().map_err(|_| StoreError::Seed {
                path: orders_csv.to_path_buf(),
                message: format!("line {}: total_eur {:?} is not a number", i + 2, o["total_eur"]),
            })?;
            tx.execute(
                "INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![o["order_number"], o["customer_id"], o["placed_on"], o["status"], empty_none(&o["shipped_on"]),
                        empty_none(&o["delivered_on"]), empty_none(&o["carrier"]), o["items"], total, o["delivery"]],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    pub fn order(&self, number: &str) -> Result<Option<Order>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT * FROM orders WHERE number = ?1", [number], |r| {
                Ok(Order {
                    number: r.get(0)?,
                    customer_id: r.get(1)?,
                    placed_on: r.get(2)?,
                    status: r.get(3)?,
                    shipped_on: r.get(4)?,
                    delivered_on: r.get(5)?,
                    carrier: r.get(6)?,
                    items: r.get(7)?,
                    total_eur: r.get(8)?,
                    delivery: r.get(9)?,
                })
            })
            .optional()?)
    }

    fn customer_where(&self, clause: &str, value: &str) -> Result<Option<Customer>, StoreError> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT * FROM customers WHERE {clause} = ?1"), [value], |r| {
                Ok(Customer {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    phone: r.get(2)?,
                    postcode: r.get(3)?,
                    pin: r.get(4)?,
                    reward_points: r.get(5)?,
                    gift_card_balance_eur: r.get(6)?,
                    language: r.get(7)?,
                    vip: r.get(8)?,
                })
            })
            .optional()?)
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
