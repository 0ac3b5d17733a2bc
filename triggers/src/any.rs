//! The `any` dialect.

use cloudevents::Event;

use crate::{Filter, FilterResult};

/// Combines its filters with [`FilterResult::or`], stopping at the first `Pass`; with no
/// filters there is nothing to say ([`FilterResult::NoFilter`]).
#[derive(Debug)]
pub struct AnyFilter {
    filters: Vec<Box<dyn Filter>>,
}

impl AnyFilter {
    /// Any of `filters`.
    pub fn new(filters: Vec<Box<dyn Filter>>) -> Self {
        Self { filters }
    }
}

impl Filter for AnyFilter {
    fn filter(&self, event: &Event) -> FilterResult {
        let mut result = FilterResult::NoFilter;
        for filter in &self.filters {
            result = result.or(filter.filter(event));
            if result == FilterResult::Pass {
                break;
            }
        }
        result
    }
}
