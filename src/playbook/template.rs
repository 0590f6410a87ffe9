//! Argument and text templates: literal text with `{root.field.path}` placeholders.
//!
//! A placeholder names a root (`target`, `before`, or a discovery level such as `server`) and a
//! field path under it. Rendering never builds a command line: each argv element is rendered on
//! its own and stays one element, whatever the value holds (spaces, quotes, `;`, newlines).

use crate::fieldpath::FieldPath;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Literal(String),
    Field(FieldPath),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// A template problem, at a character offset into the template's text.
#[derive(Debug, PartialEq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    /// Parses a template. `{` and `}` are reserved for placeholders; `{{` and `}}` stand for
    /// literal braces.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let chars: Vec<char> = source.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '{' if chars.get(i + 1) == Some(&'{') => {
                    literal.push('{');
                    i += 2;
                }
                '}' if chars.get(i + 1) == Some(&'}') => {
                    literal.push('}');
                    i += 2;
                }
                '{' => {
                    let close = chars[i + 1..]
                        .iter()
                        .position(|&c| c == '}')
                        .ok_or_else(|| TemplateError {
                            offset: i,
                            message: "`{` opens a placeholder that is never closed with `}`".into(),
                        })?;
                    let inner: String = chars[i + 1..i + 1 + close].iter().collect();
                    let path = FieldPath::parse(inner.trim()).map_err(|message| TemplateError {
                        offset: i + 1,
                        message: format!("bad placeholder `{{{inner}}}`: {message}"),
                    })?;
                    if path.segments().len() < 2 {
                        return Err(TemplateError {
                            offset: i + 1,
                            message: format!(
                                "placeholder `{{{inner}}}` must name a root and a field, such as `{{target.name}}`"
                            ),
                        });
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(path));
                    i += close + 2;
                }
                '}' => {
                    return Err(TemplateError {
                        offset: i,
                        message: "`}` without a `{`; write `}}` for a literal brace".into(),
                    });
                }
                c => {
                    literal.push(c);
                    i += 1;
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    pub fn fields(&self) -> impl Iterator<Item = &FieldPath> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f),
            Part::Literal(_) => None,
        })
    }

    pub fn is_literal(&self) -> bool {
        self.fields().next().is_none()
    }

    /// The literal text before the first placeholder.
    pub fn prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Literal(s)) => s,
            _ => "",
        }
    }

    /// Renders against a context document whose top-level keys are the roots. A null or absent
    /// value is an error: an argument that may be unset must be conditional on it.
    pub fn render(&self, context: &Value) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Field(path) => match path.get(context) {
                    Value::String(s) => out.push_str(s),
                    Value::Number(n) => out.push_str(&n.to_string()),
                    Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                    Value::Null => {
                        return Err(format!(
                            "`{}` needs {path}, which is not set (null or absent)",
                            self.source
                        ));
                    }
                    other => {
                        return Err(format!(
                            "`{}` needs {path} to be a single value, but it is {}",
                            self.source,
                            if other.is_array() {
                                "a list"
                            } else {
                                "an object"
                            }
                        ));
                    }
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_values_as_one_string_whatever_they_hold() {
        let t = Template::parse("--resource-group={target.resourceGroup}").unwrap();
        let ctx = json!({"target": {"resourceGroup": "-rg; $(rm -rf /)\n'\""}});
        assert_eq!(
            t.render(&ctx).unwrap(),
            "--resource-group=-rg; $(rm -rf /)\n'\""
        );
    }

    #[test]
    fn empty_string_renders_empty_and_null_is_an_error() {
        let t = Template::parse("--encryption-key-version={before.v}").unwrap();
        assert_eq!(
            t.render(&json!({"before": {"v": ""}})).unwrap(),
            "--encryption-key-version="
        );
        let err = t.render(&json!({"before": {"v": null}})).unwrap_err();
        assert!(err.contains("before.v"), "{err}");
        assert!(t.render(&json!({"before": {"v": {"a": 1}}})).is_err());
    }

    #[test]
    fn scalars_render_as_json_text() {
        let t = Template::parse("--n={a.n} --b={a.b}").unwrap();
        assert_eq!(
            t.render(&json!({"a": {"n": 3, "b": true}})).unwrap(),
            "--n=3 --b=true"
        );
    }

    #[test]
    fn braces_must_balance_and_name_root_and_field() {
        assert_eq!(Template::parse("--a={target.name").unwrap_err().offset, 4);
        assert_eq!(Template::parse("--a=}").unwrap_err().offset, 4);
        assert!(Template::parse("--a={name}").is_err());
        assert!(Template::parse("--a={target.na me}").is_err());
        let t = Template::parse("{{literal}}").unwrap();
        assert!(t.is_literal());
        assert_eq!(t.render(&json!({})).unwrap(), "{literal}");
    }

    #[test]
    fn prefix_and_fields() {
        let t = Template::parse("--kid={before.uri}").unwrap();
        assert_eq!(t.prefix(), "--kid=");
        assert_eq!(
            t.fields().map(|f| f.to_string()).collect::<Vec<_>>(),
            ["before.uri"]
        );
    }
}
