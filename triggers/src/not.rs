//! The `not` dialect.

use cloudevents::Event;

use crate::{Filter, FilterResult};

/// Inverts `Pass` and `Fail` of its filter ([`FilterResult::negate`]).
#[derive(Debug)]
pub struct NotFilter {
    filter: Box<dyn Filter>,
}

impl NotFilter {
    /// The negation of `filter`.
    pub fn new(filter: Box<dyn Filter>) -> Self {
        Self { filter }
    }
}

impl Filter for NotFilter {
    fn filter(&self, event: &Event) -> FilterResult {
        self.filter.filter(event).negate()
    }
}
