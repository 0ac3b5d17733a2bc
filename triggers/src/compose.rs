//! The `all`, `any` and `not` dialects, composing other filters.

use cloudevents::Event;

use crate::{Filter, FilterResult};

/// Passes when no part fails (an empty list has nothing to say).
#[derive(Debug)]
pub struct All(pub Vec<Box<dyn Filter>>);

impl Filter for All {
    fn filter(&self, event: &Event) -> FilterResult {
        let mut result = FilterResult::NoFilter;
        for f in &self.0 {
            match f.filter(event) {
                FilterResult::Fail => return FilterResult::Fail,
                FilterResult::Pass => result = FilterResult::Pass,
                FilterResult::NoFilter => {}
            }
        }
        result
    }
}

/// Passes when some part passes.
#[derive(Debug)]
pub struct Any(pub Vec<Box<dyn Filter>>);

impl Filter for Any {
    fn filter(&self, event: &Event) -> FilterResult {
        if self.0.is_empty() {
            return FilterResult::NoFilter;
        }
        let mut result = FilterResult::Fail;
        for f in &self.0 {
            match f.filter(event) {
                FilterResult::Pass => return FilterResult::Pass,
                FilterResult::NoFilter => result = FilterResult::NoFilter,
                FilterResult::Fail => {}
            }
        }
        result
    }
}

/// Inverts Pass and Fail.
#[derive(Debug)]
pub struct Not(pub Box<dyn Filter>);

impl Filter for Not {
    fn filter(&self, event: &Event) -> FilterResult {
        match self.0.filter(event) {
            FilterResult::Pass => FilterResult::Fail,
            FilterResult::Fail => FilterResult::Pass,
            FilterResult::NoFilter => FilterResult::NoFilter,
        }
    }
}
