//! JMESPath expressions, the language of `az --query`, evaluated by azbook on the JSON az printed.
//!
//! azbook adds two functions that standard JMESPath lacks, `lower(s)` and `upper(s)`, because
//! Azure prints enum values in more than one casing (`Microsoft.Keyvault`, `microsoft.keyvault`)
//! and a verdict must compare them case-insensitively. Both return null for null, so that
//! `lower(missing) == 'x'` is simply false.

use jmespath::ast::Ast;
use jmespath::functions::Function;
use jmespath::{Context, ErrorReason, Expression, JmespathError, Rcvar, Runtime, Variable};
use serde_json::Value;
use std::sync::{Arc, LazyLock};

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    let mut runtime = Runtime::new();
    runtime.register_builtin_functions();
    runtime.register_function("lower", Box::new(CaseFn(|s: &str| s.to_lowercase())));
    runtime.register_function("upper", Box::new(CaseFn(|s: &str| s.to_uppercase())));
    runtime
});

struct CaseFn(fn(&str) -> String);

impl Function for CaseFn {
    fn evaluate(&self, args: &[Rcvar], ctx: &mut Context<'_>) -> jmespath::SearchResult {
        let fail = |ctx: &Context<'_>, msg: &str| {
            Err(JmespathError::from_ctx(
                ctx,
                ErrorReason::Parse(msg.to_string()),
            ))
        };
        if args.len() != 1 {
            return fail(ctx, "lower() and upper() take exactly one argument");
        }
        match &*args[0] {
            Variable::String(s) => Ok(Arc::new(Variable::String((self.0)(s)))),
            Variable::Null => Ok(args[0].clone()),
            other => fail(
                ctx,
                &format!(
                    "lower() and upper() take a string or null, not {}",
                    other.get_type()
                ),
            ),
        }
    }
}

/// A JSON document in the form expressions evaluate on.
pub struct Document(Rcvar);

impl Document {
    pub fn new(data: &Value) -> Result<Document, String> {
        Variable::try_from(data)
            .map(|v| Document(Arc::new(v)))
            .map_err(|e| format!("cannot evaluate expressions on this document: {e}"))
    }
}

/// A compiled expression, with its source text kept for messages and the change log.
pub struct Expr {
    source: String,
    compiled: Expression<'static>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

/// Where in an expression's text a problem lies (character offset) and what it is.
#[derive(Debug)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

impl Expr {
    pub fn compile(source: &str) -> Result<Expr, ExprError> {
        let compiled = RUNTIME.compile(source).map_err(|e| ExprError {
            offset: e.offset,
            message: match e.reason {
                ErrorReason::Parse(msg) => format!("invalid JMESPath: {msg}"),
                ErrorReason::Runtime(r) => format!("invalid JMESPath: {r}"),
            },
        })?;
        let expr = Expr {
            source: source.to_string(),
            compiled,
        };
        expr.check_functions()?;
        Ok(expr)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates a condition. A condition must give true or false: any other value (a string,
    /// null) means the expression is not the condition its author meant, and saying so beats
    /// guessing with JMESPath's truthiness.
    pub fn test(&self, data: &Value) -> Result<bool, String> {
        self.test_prepared(&Document::new(data)?)
    }

    /// As [`Expr::test`], on a document converted once for several expressions (a verdict and
    /// its explanations read the same state).
    pub fn test_prepared(&self, document: &Document) -> Result<bool, String> {
        let result = self
            .compiled
            .search(document.0.clone())
            .map_err(|e| format!("evaluating `{}` failed: {}", self.source, e.reason))?;
        match &*result {
            Variable::Bool(b) => Ok(*b),
            other => Err(format!(
                "`{}` must give true or false, but gave {}",
                self.source,
                serde_json::to_string(other).unwrap_or_default()
            )),
        }
    }

    /// Evaluates an expression for its value (a list-valued argument's list).
    pub fn evaluate(&self, data: &Value) -> Result<Value, String> {
        let document = Document::new(data)?;
        let result = self
            .compiled
            .search(document.0)
            .map_err(|e| format!("evaluating `{}` failed: {}", self.source, e.reason))?;
        serde_json::to_value(&*result)
            .map_err(|e| format!("evaluating `{}` gave no JSON value: {e}", self.source))
    }

    /// The field chains this expression reads from the document it is evaluated on, with their
    /// offsets: `a.b == 'x' && c` reads `a.b` and `c`. Fields inside projections, filters and
    /// `&expr` arguments are relative to other nodes and are not returned.
    pub fn root_fields(&self) -> Vec<(Vec<String>, usize)> {
        let mut out = Vec::new();
        collect_root_fields(self.compiled.as_ast(), &mut out);
        out
    }

    /// True when the expression uses the whole document it is evaluated on (`@`, `keys(@)`),
    /// not only named fields: then no field of that document may be left out.
    pub fn reads_whole_document(&self) -> bool {
        fn walk(ast: &Ast) -> bool {
            match ast {
                Ast::Identity { .. } => true,
                Ast::Subexpr { lhs, .. } | Ast::Projection { lhs, .. } => walk(lhs),
                Ast::Comparison { lhs, rhs, .. }
                | Ast::And { lhs, rhs, .. }
                | Ast::Or { lhs, rhs, .. } => walk(lhs) || walk(rhs),
                Ast::Not { node, .. }
                | Ast::Flatten { node, .. }
                | Ast::ObjectValues { node, .. } => walk(node),
                Ast::Function { args, .. } => args
                    .iter()
                    .any(|a| !matches!(a, Ast::Expref { .. }) && walk(a)),
                Ast::MultiList { elements, .. } => elements.iter().any(walk),
                Ast::MultiHash { elements, .. } => elements.iter().any(|kv| walk(&kv.value)),
                _ => false,
            }
        }
        walk(self.compiled.as_ast())
    }

    /// Function names unknown to the runtime are only found at evaluation time by the library;
    /// a playbook must fail when it loads instead.
    fn check_functions(&self) -> Result<(), ExprError> {
        fn walk(ast: &Ast) -> Result<(), ExprError> {
            if let Ast::Function { offset, name, args } = ast {
                if RUNTIME.get_function(name).is_none() {
                    return Err(ExprError {
                        offset: offset.saturating_sub(name.chars().count()),
                        message: format!("unknown JMESPath function `{name}()`"),
                    });
                }
                for arg in args {
                    walk(arg)?;
                }
            }
            for child in children(ast) {
                walk(child)?;
            }
            Ok(())
        }
        walk(self.compiled.as_ast())
    }
}

fn children(ast: &Ast) -> Vec<&Ast> {
    match ast {
        Ast::Comparison { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => vec![lhs, rhs],
        Ast::Condition {
            predicate, then, ..
        } => vec![predicate, then],
        Ast::Expref { ast, .. } => vec![ast],
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
            vec![node]
        }
        Ast::MultiList { elements, .. } => elements.iter().collect(),
        Ast::MultiHash { elements, .. } => elements.iter().map(|kv| &kv.value).collect(),
        Ast::Function { .. }
        | Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => vec![],
    }
}

fn field_chain(ast: &Ast) -> Option<(Vec<String>, usize)> {
    match ast {
        Ast::Field { name, offset } => Some((vec![name.clone()], *offset)),
        Ast::Subexpr { lhs, rhs, .. } => {
            let (mut chain, offset) = field_chain(lhs)?;
            let (rest, _) = field_chain(rhs)?;
            chain.extend(rest);
            Some((chain, offset))
        }
        _ => None,
    }
}

fn collect_root_fields(ast: &Ast, out: &mut Vec<(Vec<String>, usize)>) {
    if let Some(chain) = field_chain(ast) {
        out.push(chain);
        return;
    }
    match ast {
        Ast::Subexpr { lhs, .. } | Ast::Projection { lhs, .. } => collect_root_fields(lhs, out),
        Ast::Comparison { lhs, rhs, .. } | Ast::And { lhs, rhs, .. } | Ast::Or { lhs, rhs, .. } => {
            collect_root_fields(lhs, out);
            collect_root_fields(rhs, out);
        }
        Ast::Not { node, .. } | Ast::Flatten { node, .. } | Ast::ObjectValues { node, .. } => {
            collect_root_fields(node, out)
        }
        Ast::Function { args, .. } => {
            for arg in args {
                if !matches!(arg, Ast::Expref { .. }) {
                    collect_root_fields(arg, out);
                }
            }
        }
        Ast::MultiList { elements, .. } => {
            for e in elements {
                collect_root_fields(e, out);
            }
        }
        Ast::MultiHash { elements, .. } => {
            for kv in elements {
                collect_root_fields(&kv.value, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lower_compares_case_insensitively_and_passes_null() {
        let e = Expr::compile("lower(k) == 'microsoft.storage'").unwrap();
        assert!(e.test(&json!({"k": "Microsoft.Storage"})).unwrap());
        assert!(e.test(&json!({"k": "MICROSOFT.STORAGE"})).unwrap());
        assert!(!e.test(&json!({"k": null})).unwrap());
        assert!(!e.test(&json!({})).unwrap());
        assert!(e.test(&json!({"k": 3})).is_err());
    }

    #[test]
    fn or_falls_back_on_null_and_empty() {
        let e = Expr::compile("lower(k || 'Microsoft.Storage') == 'microsoft.storage'").unwrap();
        assert!(e.test(&json!({})).unwrap());
        assert!(e.test(&json!({"k": ""})).unwrap());
        assert!(!e.test(&json!({"k": "Microsoft.Keyvault"})).unwrap());
    }

    #[test]
    fn condition_must_be_boolean() {
        let e = Expr::compile("k").unwrap();
        let err = e.test(&json!({"k": "yes"})).unwrap_err();
        assert!(err.contains("must give true or false"), "{err}");
    }

    #[test]
    fn syntax_errors_carry_an_offset() {
        let err = Expr::compile("a == ").unwrap_err();
        assert!(
            err.message.starts_with("invalid JMESPath"),
            "{}",
            err.message
        );
        let err = Expr::compile("nosuch(a)").unwrap_err();
        assert_eq!(err.offset, 0);
        assert!(err.message.contains("nosuch"));
    }

    #[test]
    fn root_fields_skip_relative_contexts() {
        let e = Expr::compile(
            "a.b == 'x' && !c && contains(map(&lower(uri), read), lower(before.uri)) && d[?e == `1`]",
        )
        .unwrap();
        let fields: Vec<String> = e
            .root_fields()
            .into_iter()
            .map(|(f, _)| f.join("."))
            .collect();
        assert_eq!(fields, ["a.b", "c", "read", "before.uri", "d"]);
    }

    #[test]
    fn whole_document_use_is_detected() {
        assert!(
            Expr::compile("length(keys(@)) > `0`")
                .unwrap()
                .reads_whole_document()
        );
        assert!(
            !Expr::compile("a.b == 'x' && map(&lower(@), c) == `[]`")
                .unwrap()
                .reads_whole_document()
        );
    }

    #[test]
    fn map_with_lower_finds_a_key_uri() {
        let e = Expr::compile("contains(map(&lower(uri || ''), read), lower(before.uri))").unwrap();
        let doc = json!({"read": [{"uri": null}, {"uri": "https://KV.vault.azure.net/keys/k/1"}],
                         "before": {"uri": "https://kv.vault.azure.net/keys/k/1"}});
        assert!(e.test(&doc).unwrap());
    }
}
