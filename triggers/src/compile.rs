//! Compiling a Trigger's `filter` and `filters` into one [`CompiledFilter`] (TRG-05, TRG-06).

use std::collections::BTreeMap;
use std::sync::Arc;

use cloudevents::Event;
use sluice_crds::eventing::{validate_filters, SubscriptionsApiFilter, TriggerFilter};
use sluice_crds::FieldError;

use crate::{
    AllFilter, AnyFilter, AttributesFilter, CesqlFilter, ExactFilter, Filter, FilterError, FilterResult, NotFilter, PrefixFilter,
    SuffixFilter,
};

/// A Trigger's filter, compiled once and evaluated per event; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct CompiledFilter {
    root: Option<Arc<dyn Filter>>,
}

impl CompiledFilter {
    /// The tri-state result for `event`; [`FilterResult::NoFilter`] when the Trigger has no
    /// filter.
    pub fn filter(&self, event: &Event) -> FilterResult {
        self.root.as_ref().map_or(FilterResult::NoFilter, |root| root.filter(event))
    }

    /// Whether `event` is delivered: the result is not [`FilterResult::Fail`].
    pub fn matches(&self, event: &Event) -> bool {
        self.filter(event).delivers()
    }
}

impl Filter for CompiledFilter {
    fn filter(&self, event: &Event) -> FilterResult {
        CompiledFilter::filter(self, event)
    }
}

/// Compiles a Trigger's legacy `filter` and its `filters`.
///
/// The filters are first checked with admission's rules (`sluice_crds::eventing`: exactly one
/// dialect per element, valid non-empty attribute names, non-empty values, CESQL that parses),
/// so there is one set of rules: what `apply` accepts compiles, and the errors name the field,
/// e.g. `spec.filters[0].any[1].cesql`. A non-empty `filters` list overrides `filter`; an empty
/// list does not. The list means "all of" its elements; empty maps, lists and expressions count
/// as unset, as in Knative.
pub fn compile(filter: Option<&TriggerFilter>, filters: Option<&[SubscriptionsApiFilter]>) -> Result<CompiledFilter, FilterError> {
    let mut errors = filter.map(|f| f.validate("spec.filter")).unwrap_or_default();
    errors.extend(validate_filters(filters.unwrap_or_default(), "spec.filters"));
    if !errors.is_empty() {
        return Err(FilterError { errors });
    }
    let root: Option<Arc<dyn Filter>> = match filters {
        Some(list) if !list.is_empty() => Some(Arc::new(AllFilter::new(compile_list(list, "spec.filters")?))),
        _ => filter
            .and_then(|filter| filter.attributes.as_ref())
            .filter(|attributes| !attributes.is_empty())
            .map(|attributes| Arc::new(AttributesFilter::new(attributes)) as Arc<dyn Filter>),
    };
    Ok(CompiledFilter { root })
}

/// One dialect set on a Subscriptions API element.
enum Dialect<'a> {
    Exact(&'a BTreeMap<String, String>),
    Prefix(&'a BTreeMap<String, String>),
    Suffix(&'a BTreeMap<String, String>),
    All(&'a [SubscriptionsApiFilter]),
    Any(&'a [SubscriptionsApiFilter]),
    Not(&'a SubscriptionsApiFilter),
    Cesql(&'a str),
}

/// The dialect `element` sets, ignoring empty maps, lists and expressions; validation has made
/// sure there is exactly one.
fn dialect(element: &SubscriptionsApiFilter) -> Option<Dialect<'_>> {
    [
        non_empty_map(&element.exact).map(Dialect::Exact),
        non_empty_map(&element.prefix).map(Dialect::Prefix),
        non_empty_map(&element.suffix).map(Dialect::Suffix),
        non_empty_list(&element.all).map(Dialect::All),
        non_empty_list(&element.any).map(Dialect::Any),
        element.not.as_deref().map(Dialect::Not),
        element.cesql.as_deref().filter(|e| !e.is_empty()).map(Dialect::Cesql),
    ]
    .into_iter()
    .flatten()
    .next()
}

fn non_empty_map(map: &Option<BTreeMap<String, String>>) -> Option<&BTreeMap<String, String>> {
    map.as_ref().filter(|map| !map.is_empty())
}

fn non_empty_list(list: &Option<Vec<SubscriptionsApiFilter>>) -> Option<&[SubscriptionsApiFilter]> {
    list.as_deref().filter(|list| !list.is_empty())
}

fn compile_list(list: &[SubscriptionsApiFilter], path: &str) -> Result<Vec<Box<dyn Filter>>, FilterError> {
    list.iter()
        .enumerate()
        .map(|(index, element)| compile_element(element, &format!("{path}[{index}]")))
        .collect()
}

fn compile_element(element: &SubscriptionsApiFilter, path: &str) -> Result<Box<dyn Filter>, FilterError> {
    let no_dialect = || FilterError {
        errors: vec![FieldError::new(path, "expected exactly one, got neither")],
    };
    Ok(match dialect(element).ok_or_else(no_dialect)? {
        Dialect::Exact(map) => Box::new(ExactFilter::new(map)),
        Dialect::Prefix(map) => Box::new(PrefixFilter::new(map)),
        Dialect::Suffix(map) => Box::new(SuffixFilter::new(map)),
        Dialect::All(list) => Box::new(AllFilter::new(compile_list(list, &format!("{path}.all"))?)),
        Dialect::Any(list) => Box::new(AnyFilter::new(compile_list(list, &format!("{path}.any"))?)),
        Dialect::Not(inner) => Box::new(NotFilter::new(compile_element(inner, &format!("{path}.not"))?)),
        Dialect::Cesql(expression) => Box::new(CesqlFilter::new(expression, &format!("{path}.cesql"))?),
    })
}
