//! The `all` dialect, which is also what the `filters` list itself means.

use cloudevents::Event;

use crate::{Filter, FilterResult};

/// Combines its filters with [`FilterResult::and`], stopping at the first `Fail`; with no
/// filters there is nothing to say ([`FilterResult::NoFilter`]).
#[derive(Debug)]
pub struct AllFilter {
    filters: Vec<Box<dyn Filter>>,
}

impl AllFilter {
    /// All of `filters`.
    pub fn new(filters: Vec<Box<dyn Filter>>) -> Self {
        Self { filters }
    }
}

impl Filter for AllFilter {
    fn filter(&self, event: &Event) -> FilterResult {
        let mut result = FilterResult::NoFilter;
        for filter in &self.filters {
            result = result.and(filter.filter(event));
            if result == FilterResult::Fail {
                break;
            }
        }
        result
    }
}
