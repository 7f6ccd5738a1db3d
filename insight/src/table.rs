//! The reports as tables, for spreadsheets (`ivr report ... --csv`, the dashboard's download):
//! every figure of a report on a row of its own (`figure,value,definition`, the figure named by its
//! path, e.g. `queue.service_level` or `by_day.2026-12-01.calls`), and the knowledge gaps one row
//! per question with its topic.

use serde::Serialize;
use serde_json::Value;

use crate::gaps::Gaps;

/// A header and rows of text.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.header)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }
}

/// Each figure of `report` with its value and, where one applies, its definition.
pub fn figures(report: &impl Serialize, definitions: &[(&str, &str)]) -> Result<Table, serde_json::Error> {
    let mut rows = Vec::new();
    flatten("", &serde_json::to_value(report)?, &mut rows);
    let rows = rows
        .into_iter()
        .map(|(figure, value)| {
            let definition = definition_of(&figure, definitions).unwrap_or_default().to_string();
            vec![figure, value, definition]
        })
        .collect();
    Ok(Table { header: vec!["figure", "value", "definition"], rows })
}

/// The gaps, largest topic first, one row per question asked.
pub fn gaps(g: &Gaps) -> Table {
    let rows = g
        .groups
        .iter()
        .enumerate()
        .flat_map(|(i, group)| {
            group.members.iter().map(move |m| vec![(i + 1).to_string(), group.label.clone(), group.size.to_string(), m.text.clone(), m.call_id.clone(), m.started_at.clone()])
        })
        .collect();
    Table { header: vec!["topic", "label", "size", "question", "call", "started_at"], rows }
}

/// The definition of the longest key that `figure` starts with (at a `.`).
fn definition_of<'a>(figure: &str, definitions: &[(&str, &'a str)]) -> Option<&'a str> {
    definitions
        .iter()
        .filter(|(k, _)| figure == *k || figure.strip_prefix(k).is_some_and(|rest| rest.starts_with('.')))
        .max_by_key(|(k, _)| k.len())
        .map(|(_, d)| *d)
}

/// Leaves of `v` as `(path, value)`; list items are named by their `key` or `intent` where they
/// have one (days, hours, intents), else by their place.
fn flatten(path: &str, v: &Value, out: &mut Vec<(String, String)>) {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| flatten(&join(k), v, out)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let name = ["key", "intent"].iter().find_map(|k| item.get(*k).and_then(Value::as_str)).map(str::to_string).unwrap_or_else(|| (i + 1).to_string());
                match item {
                    Value::Object(m) => {
                        let base = join(&name);
                        m.iter().filter(|(k, _)| !matches!(k.as_str(), "key" | "intent")).for_each(|(k, v)| flatten(&format!("{base}.{k}"), v, out));
                    }
                    other => flatten(&join(&name), other, out),
                }
            }
        }
        Value::Null => out.push((path.to_string(), String::new())),
        Value::String(s) => out.push((path.to_string(), s.clone())),
        other => out.push((path.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_flattened_with_their_definitions() {
        let report = serde_json::json!({"calls": 3, "containment_rate": null, "queue": {"asa_secs": {"mean": 4.5}},
            "by_day": [{"key": "2026-12-01", "calls": 2}], "intents": [{"intent": "returns", "turns": 1}], "csat": {"distribution": [0, 1]}});
        let t = figures(&report, &[("calls", "Calls."), ("queue.asa_secs", "ASA."), ("by_day", "By day.")]).unwrap();
        let rows: Vec<(&str, &str, &str)> = t.rows.iter().map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str())).collect();
        assert!(rows.contains(&("calls", "3", "Calls.")));
        assert!(rows.contains(&("containment_rate", "", "")));
        assert!(rows.contains(&("queue.asa_secs.mean", "4.5", "ASA.")));
        assert!(rows.contains(&("by_day.2026-12-01.calls", "2", "By day.")));
        assert!(rows.contains(&("intents.returns.turns", "1", "")));
        assert!(rows.contains(&("csat.distribution.2", "1", "")));
        let csv = String::from_utf8(t.to_csv().unwrap()).unwrap();
        assert!(csv.starts_with("figure,value,definition\n") && csv.contains("calls,3,Calls.\n"), "{csv}");
    }

    #[test]
    fn a_definition_is_matched_at_a_dot_only() {
        let d = [("queue", "Q."), ("queue.service_level", "SL.")];
        assert_eq!(definition_of("queue.service_level", &d), Some("SL."));
        assert_eq!(definition_of("queue.service_level_2", &d), Some("Q."));
        assert_eq!(definition_of("queues.orders", &d), None);
    }
}
