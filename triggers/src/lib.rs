//! Trigger filters: Knative's legacy `filter.attributes` and the CloudEvents Subscriptions API
//! dialects of `filters` (exact, prefix, suffix, all, any, not, cesql).
//!
//! Mirrors Knative's `pkg/eventfilter`: every dialect implements one [`Filter`] trait with a
//! tri-state result; only `Fail` blocks delivery. Filters are compiled once per trigger
//! configuration and evaluated per event without allocation where possible.

mod attributes;
mod compose;
mod expression;
mod lookup;
mod string_match;

use cloudevents::Event;
use sluice_crds::eventing::{SubscriptionsApiFilter, TriggerFilter};

pub use lookup::attribute_value;

/// The result of one filter on one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterResult {
    /// The event passes.
    Pass,
    /// The event does not pass; it is not delivered.
    Fail,
    /// The filter has nothing to say (e.g. empty); the event is delivered.
    NoFilter,
}

/// One filter dialect.
pub trait Filter: Send + Sync + std::fmt::Debug {
    /// Judges one event.
    fn filter(&self, event: &Event) -> FilterResult;
}

/// Why a filter could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// A `cesql` expression does not parse.
    #[error("{path}: invalid cesql expression: {message}")]
    Cesql {
        /// Field path, e.g. `spec.filters[0].cesql`.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// An element sets no dialect or several.
    #[error("{path}: {message}")]
    Dialect {
        /// Field path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// A trigger's compiled filter, cheap to clone and evaluate.
#[derive(Clone, Debug)]
pub struct CompiledFilter {
    root: std::sync::Arc<dyn Filter>,
}

impl CompiledFilter {
    /// The tri-state result for an event.
    pub fn filter(&self, event: &Event) -> FilterResult {
        self.root.filter(event)
    }

    /// Whether the event is delivered (anything but `Fail`).
    pub fn matches(&self, event: &Event) -> bool {
        self.filter(event) != FilterResult::Fail
    }
}

/// Compiles a trigger's `filter` and `filters`: a non-empty `filters` overrides `filter`
/// (an empty list does not), and the list means "all of".
pub fn compile(filter: Option<&TriggerFilter>, filters: Option<&[SubscriptionsApiFilter]>) -> Result<CompiledFilter, FilterError> {
    let root: std::sync::Arc<dyn Filter> = match filters {
        Some(list) if !list.is_empty() => {
            let parts = list
                .iter()
                .enumerate()
                .map(|(i, f)| compile_one(f, &format!("spec.filters[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            std::sync::Arc::new(compose::All(parts))
        }
        _ => std::sync::Arc::new(attributes::Attributes::new(filter.and_then(|f| f.attributes.clone()).unwrap_or_default())),
    };
    Ok(CompiledFilter { root })
}

/// Compiles one Subscriptions API element (exactly one dialect).
fn compile_one(f: &SubscriptionsApiFilter, path: &str) -> Result<Box<dyn Filter>, FilterError> {
    let mut dialects: Vec<(&str, Box<dyn Filter>)> = Vec::new();
    if let Some(m) = &f.exact {
        dialects.push(("exact", Box::new(string_match::StringMatch::new(string_match::Kind::Exact, m))));
    }
    if let Some(m) = &f.prefix {
        dialects.push(("prefix", Box::new(string_match::StringMatch::new(string_match::Kind::Prefix, m))));
    }
    if let Some(m) = &f.suffix {
        dialects.push(("suffix", Box::new(string_match::StringMatch::new(string_match::Kind::Suffix, m))));
    }
    if let Some(list) = &f.all {
        let parts = list.iter().enumerate().map(|(i, f)| compile_one(f, &format!("{path}.all[{i}]"))).collect::<Result<Vec<_>, _>>()?;
        dialects.push(("all", Box::new(compose::All(parts))));
    }
    if let Some(list) = &f.any {
        let parts = list.iter().enumerate().map(|(i, f)| compile_one(f, &format!("{path}.any[{i}]"))).collect::<Result<Vec<_>, _>>()?;
        dialects.push(("any", Box::new(compose::Any(parts))));
    }
    if let Some(inner) = &f.not {
        dialects.push(("not", Box::new(compose::Not(compile_one(inner, &format!("{path}.not"))?))));
    }
    if let Some(expr) = &f.cesql {
        let parsed = expression::Cesql::parse(expr).map_err(|message| FilterError::Cesql { path: format!("{path}.cesql"), message })?;
        dialects.push(("cesql", Box::new(parsed)));
    }
    match dialects.len() {
        1 => Ok(dialects.pop().expect("one dialect").1),
        0 => Err(FilterError::Dialect { path: path.into(), message: "expected exactly one, got neither".into() }),
        _ => Err(FilterError::Dialect {
            path: path.into(),
            message: format!("multiple dialects found ({})", dialects.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")),
        }),
    }
}

#[cfg(test)]
mod tests;
