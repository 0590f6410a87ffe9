//! az's JSON output, parsed from its pipe as it arrives.

use crate::fieldtree::FieldTree;
use serde::Deserialize as _;
use serde::Deserializer as _;
use serde_json::Value;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

/// Parses what az prints as it arrives. Output that is empty or only whitespace (az's answer to
/// a command with nothing to say) is `null`. With `keep`, each item of a top-level list keeps
/// only those field paths and is trimmed as soon as it is parsed, so that neither the text nor the
/// whole list ever exists at full size.
pub fn parse_output(reader: impl Read, keep: Option<&FieldTree>) -> serde_json::Result<Value> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    loop {
        let buf = reader.fill_buf().map_err(serde_json::Error::io)?;
        if buf.is_empty() {
            return Ok(Value::Null);
        }
        let blank = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let more = blank < buf.len();
        reader.consume(blank);
        if more {
            break;
        }
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let value = match keep {
        Some(keep) => de.deserialize_any(Trimmed(keep))?,
        None => Value::deserialize(&mut de)?,
    };
    de.end()?;
    Ok(value)
}

struct Trimmed<'k>(&'k FieldTree);

impl<'de> serde::de::Visitor<'de> for Trimmed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(self.0.trim(item));
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_keep_only_the_fields_asked_for() {
        let mut keep = FieldTree::default();
        keep.insert(&["id"]);
        keep.insert(&["encryption"]);
        let text =
            br#"[{"id": "a", "encryption": {"keySource": "x"}, "big": [1, 2, 3]}, {"id": "b"}, 3]"#;
        assert_eq!(
            parse_output(&text[..], Some(&keep)).unwrap(),
            serde_json::json!([{"id": "a", "encryption": {"keySource": "x"}}, {"id": "b"}, 3])
        );
        let object = br#"{"id": "a", "big": 1}"#;
        assert_eq!(
            parse_output(&object[..], Some(&keep)).unwrap(),
            serde_json::json!({"id": "a", "big": 1})
        );
        assert!(parse_output(&b"[{\"id\": "[..], Some(&keep)).is_err());
        assert!(parse_output(&b"[] trailing"[..], Some(&keep)).is_err());
    }

    #[test]
    fn blank_output_is_null_and_whole_values_parse() {
        assert_eq!(parse_output(&b""[..], None).unwrap(), Value::Null);
        assert_eq!(parse_output(&b" \n\t "[..], None).unwrap(), Value::Null);
        assert_eq!(
            parse_output(&b"\n {\"a\": [1, null]}\n"[..], None).unwrap(),
            serde_json::json!({"a": [1, null]})
        );
        assert!(parse_output(&b"{\"a\":"[..], None).is_err());
        assert!(parse_output(&b"WARNING: x"[..], None).is_err());
    }

    /// A reader that hands out one byte at a time, as a pipe may: values split anywhere parse
    /// the same.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn output_split_into_single_bytes_parses_the_same() {
        let mut keep = FieldTree::default();
        keep.insert(&["id"]);
        let text = br#"  [{"id": "\u00e9a", "x": {"y": [1.5, -2]}}, {"id": "b", "z": "\""}]"#;
        assert_eq!(
            parse_output(Trickle(text), Some(&keep)).unwrap(),
            parse_output(&text[..], Some(&keep)).unwrap()
        );
        assert_eq!(
            parse_output(Trickle(text), None).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }
}
