//! Printing a command's result as az does: `--query` (JMESPath) first, then the output format.
//! JSON is knack's `json.dumps(..., indent=2, sort_keys=True, ensure_ascii=False)` plus a newline;
//! serde_json with sorted maps produces the same bytes.

use crate::errors::CommandError;
use serde_json::Value;

/// Applies `--query` to the result, as az does before formatting. A query was validated by the
/// parser, so a failure here is a runtime JMESPath error (e.g. a function given a wrong type).
pub fn apply_query(result: Value, query: Option<&str>) -> Result<Value, CommandError> {
    let Some(q) = query else {
        return Ok(result);
    };
    let expr = jmespath::compile(q).map_err(|e| {
        CommandError::usage(format!(
            "argument --query: invalid jmespath_type value: '{q}' ({e})"
        ))
    })?;
    let found = expr
        .search(result)
        .map_err(|e| CommandError::client(e.to_string()))?;
    serde_json::to_value(&*found).map_err(|e| CommandError::client(e.to_string()))
}

/// Formats a (queried) result; a null result prints nothing, as knack skips `None`.
pub fn format(result: &Value, output: &str) -> String {
    if result.is_null() {
        return String::new();
    }
    match output {
        "none" => String::new(),
        "tsv" => tsv(result),
        _ => {
            let mut text = serde_json::to_string_pretty(result).unwrap_or_default();
            text.push('\n');
            text
        }
    }
}

/// knack's TSV: one row per list item; an object's values in key order; nested objects print
/// empty, nested lists their length, null as `None` and booleans as `True`/`False`, but a row
/// that is itself a boolean as `true`/`false` (`az group exists -o tsv`).
fn tsv(result: &Value) -> String {
    let rows: Vec<&Value> = match result {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = match row {
            Value::Object(map) => map.values().map(tsv_cell).collect(),
            Value::Array(items) => items.iter().map(tsv_cell).collect(),
            Value::Bool(b) => vec![b.to_string()],
            scalar => vec![tsv_cell(scalar)],
        };
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

fn tsv_cell(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.len().to_string(),
        Value::Object(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_sorted_two_space_with_newline() {
        let v = json!({"b": 1, "a": {"d": null, "c": []}});
        assert_eq!(
            format(&v, "json"),
            "{\n  \"a\": {\n    \"c\": [],\n    \"d\": null\n  },\n  \"b\": 1\n}\n"
        );
        assert_eq!(format(&Value::Null, "json"), "");
        assert_eq!(format(&v, "none"), "");
    }

    #[test]
    fn tsv_like_knack() {
        let v = json!([{"name": "a", "on": true, "x": null, "l": [1, 2]}, {"name": "b", "on": false, "x": {"k": 1}, "l": []}]);
        assert_eq!(format(&v, "tsv"), "2\ta\tTrue\tNone\n0\tb\tFalse\t\n");
        assert_eq!(format(&json!("id1"), "tsv"), "id1\n");
        assert_eq!(format(&json!(false), "tsv"), "false\n");
        assert_eq!(format(&json!([true, [false]]), "tsv"), "true\nFalse\n");
    }

    #[test]
    fn query_projects() {
        let v = json!([{"name": "a", "n": 1}, {"name": "b", "n": 2}]);
        assert_eq!(
            apply_query(v.clone(), Some("[?n > `1`].name")).unwrap(),
            json!(["b"])
        );
        assert_eq!(
            apply_query(v, Some("[0].{id: name}")).unwrap(),
            json!({"id": "a"})
        );
    }
}
