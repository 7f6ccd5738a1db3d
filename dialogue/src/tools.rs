//! The tools the bot may use, with typed, validated arguments. Arguments are built only from what
//! the caller said or keyed (see `slots`), never from model output, so a tool cannot be called with a
//! value the caller did not give.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::store::{Store, StoreError};

/// An 8-digit order number starting with 4 (the tenant's format).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderNumber(String);

impl OrderNumber {
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 8 && s.starts_with('4') && s.bytes().all(|b| b.is_ascii_digit())).then(|| Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A 5-digit German postcode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Postcode(String);

impl Postcode {
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit())).then(|| Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A customer whose identity was checked (caller ID or keypad PIN).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedCustomer {
    pub id: String,
    pub how: Verification,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    CallerId,
    KeypadPin,
}

/// A tool call with everything it needs.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "tool", rename_all = "snake_case")]
pub enum ToolCall {
    OrderStatus { order: OrderNumber, postcode: Postcode },
    CancelEligibility { order: OrderNumber, postcode: Postcode },
    AddressChangeEligibility { order: OrderNumber, postcode: Postcode },
    GiftCardBalance { customer: VerifiedCustomer },
    RewardPoints { customer: VerifiedCustomer },
    OpenNow { at: jiff::Timestamp },
}

/// What a tool found: a sentence to speak (its facts are the grounding sources) and the data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolResult {
    pub say: String,
    pub data: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("no order {0}")]
    NoSuchOrder(String),
    #[error("the postcode does not match order {0}")]
    PostcodeMismatch(String),
    #[error("no customer {0}")]
    NoSuchCustomer(String),
    #[error("the tool backend failed: {0}")]
    Backend(String),
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        ToolError::Backend(e.to_string())
    }
}

/// How a company's systems answer tool calls: the demo SQLite store, or its own CRM through
/// a webhook, behind one interface.
pub trait Tools: Send + Sync {
    fn call(&self, call: &ToolCall) -> Result<ToolResult, ToolError>;
    /// Checks a keypad PIN for the owner of an order (the PIN is never spoken).
    fn verify_pin(&self, order: &OrderNumber, pin: &str) -> Result<Option<VerifiedCustomer>, ToolError>;
    /// The customer whose phone number is calling, if any.
    fn customer_by_caller_id(&self, caller_id: &str) -> Result<Option<VerifiedCustomer>, ToolError>;
}

/// "2026-11-19" -> "November 19".
pub fn spoken_date(iso: &str) -> String {
    const MONTHS: [&str; 12] =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    let mut parts = iso.split('-');
    match (parts.next(), parts.next().and_then(|m| m.parse::<usize>().ok()), parts.next().and_then(|d| d.parse::<u32>().ok())) {
        (Some(_), Some(m @ 1..=12), Some(d)) => format!("{} {d}", MONTHS[m - 1]),
        _ => iso.to_string(),
    }
}

/// "799.00" -> "799 euros", "12.50" -> "12.50 euros".
pub fn spoken_euros(v: f64) -> String {
    if (v - v.round()).abs() < 0.005 {
        format!("{} euros", v.round() as i64)
    } else {
        format!("{v:.2} euros")
    }
}

/// Opening hours as data (`hours.toml`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Hours {
    pub timezone: String,
    #[serde(default)]
    pub public_holidays: Vec<String>,
    pub hotline: BTreeMap<String, String>,
    #[serde(default)]
    pub stores: BTreeMap<String, BTreeMap<String, String>>,
}

impl Hours {
    pub fn load(path: &Path) -> Result<Self, ToolError> {
        let text = std::fs::read_to_string(path).map_err(|e| ToolError::Backend(format!("{}: {e}", path.display())))?;
        let hours: Hours = toml::from_str(&text).map_err(|e| ToolError::Backend(format!("{}: {e}", path.display())))?;
        jiff::tz::TimeZone::get(&hours.timezone).map_err(|e| ToolError::Backend(format!("{}: {e}", path.display())))?;
        Ok(hours)
    }

    fn open_in(day: &BTreeMap<String, String>, key: &str, minutes: u32) -> Option<(String, String)> {
        let span = day.get(key)?;
        let (a, b) = span.split_once('-')?;
        let m = |t: &str| -> Option<u32> {
            let (h, mm) = t.trim().split_once(':')?;
            Some(h.parse::<u32>().ok()? * 60 + mm.parse::<u32>().ok()?)
        };
        (m(a)? <= minutes && minutes < m(b)?).then(|| (a.trim().to_string(), b.trim().to_string()))
    }

    /// Whether the hotline is open at `at` (its hours that day, not a public holiday).
    pub fn hotline_open(&self, at: jiff::Timestamp) -> bool {
        let (local, day, minutes) = self.local(at);
        !self.public_holidays.contains(&local.date().to_string()) && Self::open_in(&self.hotline, day, minutes).is_some()
    }

    /// `at` in the company's time zone: the time, the day's key in the tables, minutes since midnight.
    fn local(&self, at: jiff::Timestamp) -> (jiff::Zoned, &'static str, u32) {
        let tz = jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let local = at.to_zoned(tz);
        let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][local.weekday().to_monday_zero_offset() as usize];
        let minutes = local.hour() as u32 * 60 + local.minute() as u32;
        (local, day, minutes)
    }

    /// Whether the hotline and each store are open at `at`, as a sentence.
    pub fn open_now(&self, at: jiff::Timestamp) -> ToolResult {
        let (local, day, minutes) = self.local(at);
        let date = local.date().to_string();
        let holiday = self.public_holidays.contains(&date);
        let hotline = if holiday { None } else { Self::open_in(&self.hotline, day, minutes) };
        let mut open_stores = Vec::new();
        let mut closed_stores = Vec::new();
        for (name, days) in &self.stores {
            match Self::open_in(days, day, minutes) {
                Some((_, until)) => open_stores.push(format!("{name} until {until}")),
                None => closed_stores.push(name.clone()),
            }
        }
        let mut say = match &hotline {
            Some((_, until)) => format!("Yes, the hotline is open now, until {until}."),
            None if holiday => "The hotline is closed today for the public holiday.".to_string(),
            None => "The hotline is closed right now.".to_string(),
        };
        if open_stores.is_empty() {
            say.push_str(" Our stores are closed at the moment.");
        } else {
            say.push_str(&format!(" Stores open now: {}.", open_stores.join(", ")));
        }
        ToolResult {
            say,
            // Every number the sentence states is in the data, or the grounding guard refuses it.
            data: serde_json::json!({"local_time": local.strftime("%Y-%m-%d %H:%M").to_string(), "hotline_open": hotline.is_some(),
                "hotline_until": hotline.as_ref().map(|(_, until)| until.clone()),
                "holiday": holiday, "stores_open": open_stores, "stores_closed": closed_stores}),
        }
    }
}

/// The demo tenant's tools over its SQLite store.
pub struct LocalTools {
    pub store: Store,
    pub hours: Hours,
}

impl LocalTools {
    /// Opens the tenant's store (seeding it from the CSV files on first use) and hours.
    pub fn open(tenant: &Path, db: &Path) -> Result<Self, ToolError> {
        let store = Store::open(db)?;
        store.seed_if_empty(&tenant.join("customers.csv"), &tenant.join("orders.csv"))?;
        Ok(Self { store, hours: Hours::load(&tenant.join("hours.toml"))? })
    }

    fn checked_order(&self, order: &OrderNumber, postcode: &Postcode) -> Result<crate::store::Order, ToolError> {
        let o = self.store.order(order.as_str())?.ok_or_else(|| ToolError::NoSuchOrder(order.as_str().into()))?;
        let c = self.store.customer(&o.customer_id)?.ok_or_else(|| ToolError::NoSuchCustomer(o.customer_id.clone()))?;
        if c.postcode != postcode.as_str() {
            return Err(ToolError::PostcodeMismatch(order.as_str().into()));
        }
        Ok(o)
    }
}

fn describe_items(items: &str) -> String {
    items.replace(';', " and ")
}

impl Tools for LocalTools {
    fn call(&self, call: &ToolCall) -> Result<ToolResult, ToolError> {
        match call {
            ToolCall::OrderStatus { order, postcode } => {
                let o = self.checked_order(order, postcode)?;
                let items = describe_items(&o.items);
                let say = match o.status.as_str() {
                    "processing" => format!("Order {}, {items}, is being prepared and has not shipped yet.", o.number),
                    "shipped" => {
                        let mut s = format!("Order {}, {items}, was shipped on {}", o.number, spoken_date(o.shipped_on.as_deref().unwrap_or("")));
                        if let Some(carrier) = &o.carrier {
                            s.push_str(&format!(" with {carrier}"));
                        }
                        s.push('.');
                        if let Some(slot) = o.delivery.strip_prefix("two-person slot ") {
                            let (date, time) = slot.split_once(' ').unwrap_or((slot, ""));
                            s.push_str(&format!(" The two-person crew will deliver it on {} between {}.", spoken_date(date), time.replace('-', " and ")));
                        }
                        s
                    }
                    "delivered" => format!("Order {}, {items}, was delivered on {}.", o.number, spoken_date(o.delivered_on.as_deref().unwrap_or(""))),
                    "cancelled" => format!("Order {}, {items}, was cancelled.", o.number),
                    other => format!("Order {} has the status {other}.", o.number),
                };
                Ok(ToolResult { say, data: serde_json::to_value(&o).unwrap_or_default() })
            }
            ToolCall::CancelEligibility { order, postcode } | ToolCall::AddressChangeEligibility { order, postcode } => {
                let o = self.checked_order(order, postcode)?;
                let cancel = matches!(call, ToolCall::CancelEligibility { .. });
                let (what, eligible) = (if cancel { "cancelled free of charge" } else { "given a new delivery address" }, o.status == "processing");
                let say = if o.status == "cancelled" {
                    format!("Order {} is already cancelled.", o.number)
                } else if eligible {
                    format!("Order {} has not shipped yet, so it can still be {what}. I'll pass this to a colleague to do it.", o.number)
                } else if cancel {
                    format!("Order {} has already shipped, so it can no longer be cancelled; it can be returned instead.", o.number)
                } else {
                    format!("Order {} has already shipped, so the address can no longer be changed.", o.number)
                };
                Ok(ToolResult { say, data: serde_json::json!({"order": o.number, "status": o.status, "eligible": eligible}) })
            }
            ToolCall::GiftCardBalance { customer } => {
                let c = self.store.customer(&customer.id)?.ok_or_else(|| ToolError::NoSuchCustomer(customer.id.clone()))?;
                Ok(ToolResult {
                    say: format!("Your gift card balance is {}.", spoken_euros(c.gift_card_balance_eur)),
                    data: serde_json::json!({"customer": c.id, "gift_card_balance_eur": c.gift_card_balance_eur}),
                })
            }
            ToolCall::RewardPoints { customer } => {
                let c = self.store.customer(&customer.id)?.ok_or_else(|| ToolError::NoSuchCustomer(customer.id.clone()))?;
                Ok(ToolResult {
                    say: format!("You have {} Lumen Rewards points.", c.reward_points),
                    data: serde_json::json!({"customer": c.id, "reward_points": c.reward_points}),
                })
            }
            ToolCall::OpenNow { at } => Ok(self.hours.open_now(*at)),
        }
    }

    fn verify_pin(&self, order: &OrderNumber, pin: &str) -> Result<Option<VerifiedCustomer>, ToolError> {
        let Some(o) = self.store.order(order.as_str())? else { return Ok(None) };
        let Some(c) = self.store.customer(&o.customer_id)? else { return Ok(None) };
        Ok((pin.len() == 4 && c.pin == pin).then(|| VerifiedCustomer { id: c.id, how: Verification::KeypadPin }))
    }

    fn customer_by_caller_id(&self, caller_id: &str) -> Result<Option<VerifiedCustomer>, ToolError> {
        Ok(self.store.customer_by_phone(caller_id)?.map(|c| VerifiedCustomer { id: c.id, how: Verification::CallerId }))
    }
}

/// Where the demo database lives unless configured: beside the tenant files, git-ignored.
pub fn default_db_path(tenant: &Path) -> PathBuf {
    tenant.join("demo.sqlite")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> LocalTools {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tenant/demo");
        let store = Store::open_in_memory().unwrap();
        store.seed_if_empty(&dir.join("customers.csv"), &dir.join("orders.csv")).unwrap();
        LocalTools { store, hours: Hours::load(&dir.join("hours.toml")).unwrap() }
    }

    fn order(n: &str) -> OrderNumber {
        OrderNumber::parse(n).unwrap()
    }

    #[test]
    fn arguments_are_validated() {
        assert!(OrderNumber::parse("41234567").is_some());
        for bad in ["51234567", "4123456", "412345678", "4123456a", ""] {
            assert!(OrderNumber::parse(bad).is_none(), "{bad}");
        }
        assert!(Postcode::parse("10115").is_some() && Postcode::parse("1011").is_none());
    }

    #[test]
    fn order_status_needs_the_matching_postcode() {
        let t = tools();
        let ok = t.call(&ToolCall::OrderStatus { order: order("41234567"), postcode: Postcode::parse("10115").unwrap() }).unwrap();
        assert!(ok.say.contains("November 19") && ok.say.contains("DHL") && ok.say.contains("November 26"), "{}", ok.say);
        let wrong = t.call(&ToolCall::OrderStatus { order: order("41234567"), postcode: Postcode::parse("20095").unwrap() });
        assert!(matches!(wrong, Err(ToolError::PostcodeMismatch(_))));
        let none = t.call(&ToolCall::OrderStatus { order: order("49999999"), postcode: Postcode::parse("10115").unwrap() });
        assert!(matches!(none, Err(ToolError::NoSuchOrder(_))));
    }

    #[test]
    fn cancel_only_before_shipping() {
        let t = tools();
        let r = t.call(&ToolCall::CancelEligibility { order: order("42000111"), postcode: Postcode::parse("20095").unwrap() }).unwrap();
        assert_eq!(r.data["eligible"], true);
        let r = t.call(&ToolCall::CancelEligibility { order: order("41234567"), postcode: Postcode::parse("10115").unwrap() }).unwrap();
        assert_eq!(r.data["eligible"], false);
        assert!(r.say.contains("returned"));
    }

    #[test]
    fn pin_verification_is_exact() {
        let t = tools();
        assert_eq!(t.verify_pin(&order("42000111"), "1357").unwrap().unwrap().id, "C1002");
        assert!(t.verify_pin(&order("42000111"), "1358").unwrap().is_none());
        assert!(t.verify_pin(&order("42000111"), "").unwrap().is_none());
        assert_eq!(t.customer_by_caller_id("+4930111222").unwrap().unwrap().id, "C1001");
        assert!(t.customer_by_caller_id("+4930999999").unwrap().is_none());
    }

    #[test]
    fn open_now_follows_the_local_clock_and_holidays() {
        let t = tools();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        // Tuesday 2026-11-24 10:30 in Berlin (09:30 UTC): hotline and stores open.
        let r = t.hours.open_now(at("2026-11-24T09:30:00Z"));
        assert_eq!(r.data["hotline_open"], true, "{}", r.say);
        // Sunday 2026-11-29 19:00 Berlin: hotline closed, Old Town closed (18:00), others open.
        let r = t.hours.open_now(at("2026-11-29T18:00:00Z"));
        assert_eq!(r.data["hotline_open"], false);
        assert_eq!(r.data["stores_closed"][0], "Old Town", "{}", r.say);
        // Friday 2026-12-25 (a holiday) 12:00: hotline closed.
        let r = t.hours.open_now(at("2026-12-25T11:00:00Z"));
        assert_eq!(r.data["holiday"], true);
        assert_eq!(r.data["hotline_open"], false);
        // 03:00 on a Wednesday: everything closed.
        let r = t.hours.open_now(at("2026-11-25T02:00:00Z"));
        assert!(r.say.contains("closed") && r.data["stores_open"].as_array().unwrap().is_empty());
        // The queue's question agrees with the sentence's, holidays included.
        for s in ["2026-11-24T09:30:00Z", "2026-11-29T18:00:00Z", "2026-12-25T11:00:00Z", "2026-11-25T02:00:00Z", "2026-11-28T08:30:00Z"] {
            assert_eq!(t.hours.hotline_open(at(s)), t.hours.open_now(at(s)).data["hotline_open"] == true, "{s}");
        }
    }

    /// The reply passes the grounding guard at every hour of the week (it once failed only while
    /// the hotline was open, so a test run's result depended on the time of day).
    #[test]
    fn open_now_states_only_numbers_its_data_holds_at_any_hour() {
        let t = tools();
        let monday: jiff::Timestamp = "2026-11-23T00:15:00Z".parse().unwrap();
        for quarter in 0..7 * 24 * 4 {
            let at = monday + jiff::SignedDuration::from_secs(quarter * 15 * 60);
            let r = t.hours.open_now(at);
            let missing = crate::grounding::ungrounded(&r.say, &[&r.data.to_string()]);
            assert!(missing.is_empty(), "{at}: {:?} not in the data of {:?}", missing, r.say);
        }
    }

    #[test]
    fn balances_are_read_for_the_verified_customer_only() {
        let t = tools();
        let c = VerifiedCustomer { id: "C1002".into(), how: Verification::KeypadPin };
        let r = t.call(&ToolCall::GiftCardBalance { customer: c.clone() }).unwrap();
        assert_eq!(r.say, "Your gift card balance is 25 euros.");
        let r = t.call(&ToolCall::RewardPoints { customer: c }).unwrap();
        assert_eq!(r.say, "You have 80 Lumen Rewards points.");
    }
}
