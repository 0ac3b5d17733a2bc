//! The tri-state result of a filter, as in Knative's `eventfilter` package.

/// What one filter says about one event. Only [`FilterResult::Fail`] stops delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterResult {
    /// The event matches.
    Pass,
    /// The event does not match; it is not delivered.
    Fail,
    /// The filter has nothing to say (there is no filter); the event is delivered.
    NoFilter,
}

impl FilterResult {
    /// Both results together: a side without a filter defers to the other, otherwise both
    /// must pass.
    pub fn and(self, other: FilterResult) -> FilterResult {
        match (self, other) {
            (FilterResult::NoFilter, result) | (result, FilterResult::NoFilter) => result,
            (FilterResult::Pass, FilterResult::Pass) => FilterResult::Pass,
            _ => FilterResult::Fail,
        }
    }

    /// Either result: a side without a filter defers to the other, otherwise one must pass.
    pub fn or(self, other: FilterResult) -> FilterResult {
        match (self, other) {
            (FilterResult::NoFilter, result) | (result, FilterResult::NoFilter) => result,
            (FilterResult::Pass, _) | (_, FilterResult::Pass) => FilterResult::Pass,
            _ => FilterResult::Fail,
        }
    }

    /// The opposite result; no filter stays no filter.
    pub fn negate(self) -> FilterResult {
        match self {
            FilterResult::Pass => FilterResult::Fail,
            FilterResult::Fail => FilterResult::Pass,
            FilterResult::NoFilter => FilterResult::NoFilter,
        }
    }

    /// Whether the event is delivered: anything but [`FilterResult::Fail`].
    pub fn delivers(self) -> bool {
        self != FilterResult::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::FilterResult::{self, Fail, NoFilter, Pass};

    #[test]
    fn and_or_negate() {
        let table: [(FilterResult, FilterResult, FilterResult, FilterResult); 9] = [
            (Pass, Pass, Pass, Pass),
            (Pass, Fail, Fail, Pass),
            (Pass, NoFilter, Pass, Pass),
            (Fail, Pass, Fail, Pass),
            (Fail, Fail, Fail, Fail),
            (Fail, NoFilter, Fail, Fail),
            (NoFilter, Pass, Pass, Pass),
            (NoFilter, Fail, Fail, Fail),
            (NoFilter, NoFilter, NoFilter, NoFilter),
        ];
        for (x, y, and, or) in table {
            assert_eq!(x.and(y), and, "{x:?} and {y:?}");
            assert_eq!(x.or(y), or, "{x:?} or {y:?}");
        }
        assert_eq!((Pass.negate(), Fail.negate(), NoFilter.negate()), (Fail, Pass, NoFilter));
        assert!(Pass.delivers() && NoFilter.delivers() && !Fail.delivers());
    }
}
