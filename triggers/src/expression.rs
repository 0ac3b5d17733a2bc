//! The `cesql` dialect: a CESQL expression that must evaluate to `true` without errors.

use cloudevents::event::ExtensionValue;
use cloudevents::Event;
use sluice_cesql::{EventContext, Expression, Value};

use crate::{attribute_value, Filter, FilterResult};

/// A parsed CESQL filter.
#[derive(Debug)]
pub struct Cesql {
    expression: Expression,
}

impl Cesql {
    /// Parses the expression; the error is the parser's message.
    pub fn parse(expr: &str) -> Result<Self, String> {
        sluice_cesql::parse(expr).map(|expression| Self { expression }).map_err(|e| e.to_string())
    }
}

/// A CloudEvent as CESQL sees it: extensions keep their integer/boolean types, everything else
/// is a string.
struct EventView<'a>(&'a Event);

impl EventContext for EventView<'_> {
    fn attribute(&self, name: &str) -> Option<Value> {
        if let Some(ext) = self.0.extension(name) {
            return Some(match ext {
                ExtensionValue::Boolean(b) => Value::Boolean(*b),
                ExtensionValue::Integer(i) => i32::try_from(*i).map(Value::Integer).unwrap_or_else(|_| Value::String(i.to_string())),
                ExtensionValue::String(s) => Value::String(s.clone()),
            });
        }
        attribute_value(self.0, name).map(Value::String)
    }
}

impl Filter for Cesql {
    fn filter(&self, event: &Event) -> FilterResult {
        if self.expression.evaluate(&EventView(event)).is_true_without_errors() {
            FilterResult::Pass
        } else {
            FilterResult::Fail
        }
    }
}
