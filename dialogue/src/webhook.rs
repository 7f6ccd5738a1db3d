//! Tools answered by a company's own systems (CRM, ERP) over an HTTP webhook, behind the same
//! [`Tools`] interface as the demo store. The contract, all JSON over POST:
//!
//! - `{url}/tools/{tool}` with the typed call (`{"tool": "order_status", "order": "41234567",
//!   "postcode": "10115"}`) -> 200 `{"say": "...", "data": {...}}`; 404 unknown order; 409 the
//!   postcode does not match; anything else is a backend failure.
//! - `{url}/verify_pin` with `{"order", "pin"}` -> 200 `{"customer_id": "C1001"}` or `{"customer_id": null}`.
//! - `{url}/caller` with `{"caller_id"}` -> 200 `{"customer_id": ...}`.
//!
//! `say` is what the bot speaks; `data` holds the facts it may state (the grounding guard checks the
//! reply against it).

use std::time::Duration;

use crate::http::Endpoint;
use crate::tools::{OrderNumber, ToolCall, ToolError, ToolResult, Tools, Verification, VerifiedCustomer};

pub struct WebhookTools {
    endpoint: Endpoint,
    /// Opening hours stay local data: they need no round trip.
    hours: crate::tools::Hours,
}

impl WebhookTools {
    pub fn new(url: &str, hours: crate::tools::Hours) -> Result<Self, ToolError> {
        Self::with_ca(url, None, hours)
    }

    /// As `new`, trusting the certificate authority in `ca_file` (PEM) besides the usual roots.
    /// Each request may take 3 s: a caller is waiting.
    pub fn with_ca(url: &str, ca_file: Option<&std::path::Path>, hours: crate::tools::Hours) -> Result<Self, ToolError> {
        let endpoint = Endpoint::new(url, ca_file, Duration::from_secs(3)).map_err(|e| ToolError::Backend(e.to_string()))?;
        Ok(Self { endpoint, hours })
    }

    fn post(&self, path: &str, body: serde_json::Value) -> Result<(u16, serde_json::Value), ToolError> {
        self.endpoint.post_json(path, &body).map_err(|e| ToolError::Backend(format!("webhook: {e}")))
    }

    fn customer(&self, v: &serde_json::Value, how: Verification) -> Option<VerifiedCustomer> {
        v["customer_id"].as_str().filter(|s| !s.is_empty()).map(|id| VerifiedCustomer { id: id.to_string(), how })
    }
}

impl Tools for WebhookTools {
    fn call(&self, call: &ToolCall) -> Result<ToolResult, ToolError> {
        if let ToolCall::OpenNow { at } = call {
            return Ok(self.hours.open_now(*at));
        }
        let body = serde_json::to_value(call).map_err(|e| ToolError::Backend(e.to_string()))?;
        let name = body["tool"].as_str().unwrap_or("unknown").to_string();
        let order = body["order"].as_str().unwrap_or_default().to_string();
        match self.post(&format!("/tools/{name}"), body)? {
            (200, v) => {
                let say = v["say"].as_str().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                    ToolError::Backend(format!("webhook /tools/{name}: the answer has no \"say\""))
                })?;
                Ok(ToolResult { say: say.to_string(), data: v["data"].clone() })
            }
            (404, _) => Err(ToolError::NoSuchOrder(order)),
            (409, _) => Err(ToolError::PostcodeMismatch(order)),
            (code, v) => Err(ToolError::Backend(format!("webhook /tools/{name}: HTTP {code} {v}"))),
        }
    }

    fn verify_pin(&self, order: &OrderNumber, pin: &str) -> Result<Option<VerifiedCustomer>, ToolError> {
        match self.post("/verify_pin", serde_json::json!({"order": order.as_str(), "pin": pin}))? {
            (200, v) => Ok(self.customer(&v, Verification::KeypadPin)),
            (code, v) => Err(ToolError::Backend(format!("webhook /verify_pin: HTTP {code} {v}"))),
        }
    }

    fn customer_by_caller_id(&self, caller_id: &str) -> Result<Option<VerifiedCustomer>, ToolError> {
        match self.post("/caller", serde_json::json!({"caller_id": caller_id}))? {
            (200, v) => Ok(self.customer(&v, Verification::CallerId)),
            (code, v) => Err(ToolError::Backend(format!("webhook /caller: HTTP {code} {v}"))),
        }
    }
}
