//! The CEL environment of policy conditions: the variables a rule may read, the check that
//! rejects anything else at load, and the per-request context built from a `DecideRequest`.

use crate::facts::Facts;
use cel_interpreter::objects::{Key, Map};
use cel_interpreter::{Context, ExecutionError, Value};
use cel_parser::ast::{EntryExpr, Expr, IdedExpr};
use std::collections::HashMap;
use std::sync::Arc;

/// What a field holds, so the load-time check knows whether `a.b.c` can make sense.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A number, string or bool: selecting a field of it is an error.
    Scalar,
    /// A map with caller-defined keys (budget scopes, model names): any key may be selected.
    Map,
    /// A list: only functions and macros apply.
    List,
}

use Shape::{List, Map as MapShape, Scalar};

const CLASSIFICATION: &[(&str, Shape)] = &[
    ("complexity", Scalar),
    ("category", Scalar),
    ("requires_context", Scalar),
    ("confidence", Scalar),
    ("language", Scalar),
    ("available", Scalar),
    ("failure", Scalar),
];
const CONVERSATION: &[(&str, Shape)] =
    &[("turns", Scalar), ("tier", Scalar), ("model", Scalar), ("version", Scalar), ("tokens", Scalar)];
const USER: &[(&str, Shape)] = &[
    ("tier", Scalar),
    ("plan", Scalar),
    ("premium", Scalar),
    ("tenant", Scalar),
    ("revenue_per_conversation", Scalar),
];
const SYSTEM: &[(&str, Shape)] = &[
    ("load", Scalar),
    ("budget", Scalar),
    ("budget_by_scope", MapShape),
    ("breakers", MapShape),
    ("unavailable", List),
];

/// Every variable a condition may name, with its fields (documented in config/policy.yaml).
const SCHEMA: &[(&str, &[(&str, Shape)])] =
    &[("classification", CLASSIFICATION), ("conversation", CONVERSATION), ("user", USER), ("system", SYSTEM)];

/// Functions of cel-interpreter's default context; anything else fails at run time, so it is
/// rejected at load instead. Operators (`_&&_`, `@in`, ...) are recognised by their sigils.
const FUNCTIONS: &[&str] = &[
    "contains",
    "size",
    "max",
    "min",
    "startsWith",
    "endsWith",
    "string",
    "bytes",
    "double",
    "int",
    "uint",
    "matches",
    "duration",
    "timestamp",
    "has",
    "all",
    "exists",
    "exists_one",
    "existsOne",
    "map",
    "filter",
];

fn fields_of(root: &str) -> Option<&'static [(&'static str, Shape)]> {
    SCHEMA.iter().find(|(n, _)| *n == root).map(|(_, f)| *f)
}

fn names(fields: &[(&str, Shape)]) -> String {
    fields.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Rejects references to variables, fields and functions the environment does not have.
/// Walking the AST (rather than evaluating a sample) also catches references hidden behind
/// `&&`/`||` short-circuits, which would otherwise fail only for some live requests.
pub(crate) fn check_references(expr: &IdedExpr) -> Result<(), String> {
    walk(expr, &mut Vec::new()).map(|_| ())
}

/// What an expression evaluates to, as far as the check can tell.
enum Kind {
    Root(&'static [(&'static str, Shape)]),
    Field(Shape),
    Other,
}

fn walk(e: &IdedExpr, locals: &mut Vec<String>) -> Result<Kind, String> {
    match &e.expr {
        Expr::Ident(n) if locals.iter().any(|l| l == n) => Ok(Kind::Other),
        Expr::Ident(n) => fields_of(n).map(Kind::Root).ok_or_else(|| {
            let roots: Vec<&str> = SCHEMA.iter().map(|(n, _)| *n).collect();
            format!("unknown variable `{n}` (known: {})", roots.join(", "))
        }),
        Expr::Select(s) => match walk(&s.operand, locals)? {
            Kind::Root(fields) => {
                let root = match &s.operand.expr {
                    Expr::Ident(r) => r.as_str(),
                    _ => "?",
                };
                match fields.iter().find(|(f, _)| *f == s.field) {
                    Some((_, shape)) => Ok(Kind::Field(*shape)),
                    None => Err(format!("unknown field `{root}.{}` (known: {})", s.field, names(fields))),
                }
            }
            Kind::Field(MapShape) | Kind::Other => Ok(Kind::Other),
            Kind::Field(_) => Err(format!("`.{}` selects a field of a value that has none", s.field)),
        },
        Expr::Call(c) => {
            let operator = c.func_name.starts_with(['_', '@', '!', '-']);
            if !operator && !FUNCTIONS.contains(&c.func_name.as_str()) {
                return Err(format!("unknown function `{}`", c.func_name));
            }
            if let Some(t) = &c.target {
                walk(t, locals)?;
            }
            for a in &c.args {
                walk(a, locals)?;
            }
            Ok(Kind::Other)
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, locals)?;
            walk(&c.accu_init, locals)?;
            let before = locals.len();
            locals.push(c.iter_var.clone());
            locals.extend(c.iter_var2.clone());
            locals.push(c.accu_var.clone());
            let res = [&c.loop_cond, &c.loop_step, &c.result].into_iter().try_for_each(|x| walk(x, locals).map(|_| ()));
            locals.truncate(before);
            res.map(|_| Kind::Other)
        }
        Expr::List(l) => {
            for x in &l.elements {
                walk(x, locals)?;
            }
            Ok(Kind::Other)
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                walk_entry(&entry.expr, locals)?;
            }
            Ok(Kind::Other)
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                walk_entry(&entry.expr, locals)?;
            }
            Ok(Kind::Other)
        }
        Expr::Literal(_) | Expr::Unspecified => Ok(Kind::Other),
    }
}

fn walk_entry(e: &EntryExpr, locals: &mut Vec<String>) -> Result<(), String> {
    match e {
        EntryExpr::MapEntry(m) => {
            walk(&m.key, locals)?;
            walk(&m.value, locals)?;
        }
        EntryExpr::StructField(f) => {
            walk(&f.value, locals)?;
        }
    }
    Ok(())
}

/// True for errors that no input can avoid (type mismatches, unknown functions): a condition
/// that raises one against the sample context is broken and rejected at load. Missing map keys
/// depend on the request and are left to run time.
pub(crate) fn is_static_error(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::ValuesNotComparable(..)
            | ExecutionError::UnsupportedBinaryOperator(..)
            | ExecutionError::UnsupportedUnaryOperator(..)
            | ExecutionError::UnexpectedType { .. }
            | ExecutionError::UndeclaredReference(_)
            | ExecutionError::InvalidArgumentCount { .. }
            | ExecutionError::NotSupportedAsMethod { .. }
    )
}

/// Interned field names: building a request's context clones `Arc`s instead of allocating
/// every key, which keeps Decide within its microsecond budget.
struct Keys {
    classification: Vec<Key>,
    conversation: Vec<Key>,
    user: Vec<Key>,
    system: Vec<Key>,
}

impl Keys {
    fn new() -> Self {
        let k = |f: &[(&str, Shape)]| f.iter().map(|(n, _)| Key::from(*n)).collect();
        Keys { classification: k(CLASSIFICATION), conversation: k(CONVERSATION), user: k(USER), system: k(SYSTEM) }
    }
}

/// The root CEL context (built-in functions, registered once) and the interned keys.
pub(crate) struct CelEnv {
    root: Context<'static>,
    keys: Keys,
}

impl std::fmt::Debug for CelEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CelEnv")
    }
}

fn map(keys: &[Key], values: Vec<Value>) -> Value {
    let m: HashMap<Key, Value> = keys.iter().cloned().zip(values).collect();
    Value::Map(Map { map: Arc::new(m) })
}

fn s(v: &str) -> Value {
    Value::String(Arc::new(v.to_owned()))
}

impl CelEnv {
    pub(crate) fn new() -> Self {
        CelEnv { root: Context::default(), keys: Keys::new() }
    }

    /// A child of the root context holding one request's variables. The order of each value
    /// list follows the schema tables above.
    pub(crate) fn context<'a>(&'a self, f: &Facts) -> Context<'a> {
        let k = &self.keys;
        let mut ctx = self.root.new_inner_scope();
        let classification = vec![
            s(f.complexity),
            s(f.category),
            Value::Bool(f.requires_context),
            Value::Float(f.confidence),
            s(&f.language),
            Value::Bool(f.available),
            s(&f.failure),
        ];
        let conversation = vec![
            Value::Int(f.turns),
            s(f.conv_tier.map_or("", |t| t.as_str())),
            s(&f.conv_model),
            s(&f.conv_version),
            Value::Int(f.tokens),
        ];
        let user = vec![s(&f.plan), s(&f.plan), Value::Bool(f.premium), s(&f.tenant), Value::Float(f.revenue_dollars)];
        let budgets: HashMap<Key, Value> =
            f.budget_by_scope.iter().map(|(k, v)| (Key::from(k.as_str()), Value::Float(*v))).collect();
        let breakers: HashMap<Key, Value> =
            f.breakers.iter().map(|(k, v)| (Key::from(k.as_str()), s(v.as_str()))).collect();
        let unavailable: Vec<Value> = f.unavailable.iter().map(|m| s(m)).collect();
        let system = vec![
            Value::Float(f.load),
            Value::Float(f.budget),
            Value::Map(Map { map: Arc::new(budgets) }),
            Value::Map(Map { map: Arc::new(breakers) }),
            Value::List(Arc::new(unavailable)),
        ];
        ctx.add_variable_from_value("classification", map(&k.classification, classification));
        ctx.add_variable_from_value("conversation", map(&k.conversation, conversation));
        ctx.add_variable_from_value("user", map(&k.user, user));
        ctx.add_variable_from_value("system", map(&k.system, system));
        ctx
    }
}
