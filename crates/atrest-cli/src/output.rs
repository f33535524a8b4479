//! Output: the server's JSON unchanged (`--output json`, the default when stdout is not a
//! terminal), or a readable table (`--output table`, the default on a terminal).

use std::io::{IsTerminal, Write};

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

pub fn choose(flag: Option<Format>) -> Format {
    flag.unwrap_or_else(|| if std::io::stdout().is_terminal() { Format::Table } else { Format::Json })
}

/// A table column: header and a JSON pointer into each row (`/name`, `/awsKms/enabled`).
pub type Column = (&'static str, &'static str);

/// How to show a response as a table.
#[derive(Debug, Clone)]
pub enum View {
    /// A list response (`results`, or the array at `key`), one row per item.
    List { key: &'static str, columns: &'static [Column] },
    /// One entity: selected fields as `FIELD  value` lines.
    Entity(&'static [Column]),
    /// Every top-level field of one entity.
    AllFields,
    /// A fixed message (deletes and other bodiless answers).
    Message(String),
}

/// Prints a successful response in the chosen format.
pub fn print(format: Format, body: &str, view: &View) {
    let text = match format {
        Format::Json => json_text(body),
        Format::Table => {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            render(&v, view)
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The body as the server sent it, with a final newline; nothing at all for an empty body.
pub fn json_text(body: &str) -> String {
    if body.trim().is_empty() {
        String::new()
    } else if body.ends_with('\n') {
        body.to_owned()
    } else {
        format!("{body}\n")
    }
}

pub fn render(v: &Value, view: &View) -> String {
    match view {
        View::List { key, columns } => {
            let empty = Vec::new();
            let rows = v.get(*key).and_then(Value::as_array).unwrap_or(&empty);
            let mut s = table(columns, rows);
            if let Some(total) = v.get("totalCount").and_then(Value::as_u64) {
                if total as usize > rows.len() {
                    s.push_str(&format!("({} of {total} shown; use --page / --items-per-page for more)\n", rows.len()));
                }
            }
            s
        }
        View::Entity(columns) => key_values(columns.iter().map(|(h, p)| (h.to_string(), cell(v, p)))),
        View::AllFields => match v.as_object() {
            Some(m) => key_values(m.iter().map(|(k, val)| (k.clone(), scalar(val)))),
            None => format!("{}\n", scalar(v)),
        },
        View::Message(m) => format!("{m}\n"),
    }
}

fn key_values(rows: impl Iterator<Item = (String, String)>) -> String {
    let rows: Vec<(String, String)> = rows.collect();
    let w = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<w$}  {v}\n")).collect()
}

/// Renders rows under headers, columns padded to their widest cell.
pub fn table(columns: &[Column], rows: &[Value]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| columns.iter().map(|(_, p)| cell(r, p)).collect()).collect();
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |vals: Vec<&str>| {
        let mut s = String::new();
        for (i, v) in vals.iter().enumerate() {
            if i + 1 == vals.len() {
                s.push_str(v);
            } else {
                s.push_str(&format!("{v:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(columns.iter().map(|(h, _)| *h).collect());
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// One cell: the value at a JSON pointer; strings bare, missing or null as `-`.
/// `/roles/*/roleName` joins `roleName` of every element of `roles`.
pub fn cell(v: &Value, pointer: &str) -> String {
    if let Some((array, rest)) = pointer.split_once("/*") {
        let items = v.pointer(array).and_then(Value::as_array);
        return match items {
            None => "-".to_owned(),
            Some(a) if a.is_empty() => "-".to_owned(),
            Some(a) => a.iter().map(|x| cell(x, rest)).collect::<Vec<_>>().join(","),
        };
    }
    match v.pointer(pointer) {
        None => "-".to_owned(),
        Some(x) => scalar(x),
    }
}

fn scalar(x: &Value) -> String {
    match x {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_renders_aligned_columns() {
        let v = json!({"results": [{"id": "a1", "name": "prod"}, {"id": "b22", "name": null}], "totalCount": 2});
        let s = render(&v, &View::List { key: "results", columns: &[("ID", "/id"), ("NAME", "/name")] });
        assert_eq!(s, "ID   NAME\na1   prod\nb22  -\n");
    }

    #[test]
    fn entity_and_arrays() {
        let v = json!({"roles": ["ORG_OWNER", "ORG_MEMBER"], "n": 3, "o": {"a": 1}});
        let s = render(&v, &View::AllFields);
        assert!(s.contains("roles  ORG_OWNER,ORG_MEMBER\n"), "{s}");
        assert!(s.contains("o      {\"a\":1}\n"), "{s}");
        assert_eq!(json_text("{}"), "{}\n");
        assert_eq!(json_text(""), "");
        let k = json!({"roles": [{"orgId": "o", "roleName": "ORG_OWNER"}, {"roleName": "GROUP_READ_ONLY"}]});
        assert_eq!(cell(&k, "/roles/*/roleName"), "ORG_OWNER,GROUP_READ_ONLY");
        assert_eq!(cell(&json!({"roles": []}), "/roles/*/roleName"), "-");
    }
}
