//! Trigger filters: Knative's legacy `filter.attributes` (TRG-05) and the CloudEvents
//! Subscriptions API dialects of `filters` (TRG-06): `exact`, `prefix`, `suffix`, `all`,
//! `any`, `not` and `cesql`.
//!
//! As in Knative's `eventfilter` package, every dialect implements one [`Filter`] trait with a
//! tri-state [`FilterResult`]; only [`FilterResult::Fail`] stops delivery. [`compile`] turns a
//! Trigger's `filter` and `filters` into a [`CompiledFilter`] once; evaluating it per event
//! reads attributes through [`attribute_value`] (and, for `cesql`, [`CloudEventContext`]).
//!
//! ```
//! use cloudevents::{EventBuilder, EventBuilderV10};
//! use sluice_crds::eventing::SubscriptionsApiFilter;
//!
//! let filters = [SubscriptionsApiFilter {
//!     cesql: Some("type LIKE 'com.example.%' AND EXISTS subject".into()),
//!     ..Default::default()
//! }];
//! let filter = sluice_triggers::compile(None, Some(&filters)).unwrap();
//! let event = EventBuilderV10::new().id("1").source("/shop").ty("com.example.order").subject("42").build().unwrap();
//! assert!(filter.matches(&event));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod all;
mod any;
mod attributes;
mod cesql;
mod compile;
mod conditions;
mod error;
mod exact;
mod lookup;
mod not;
mod prefix;
mod result;
mod suffix;

use cloudevents::Event;

pub use all::AllFilter;
pub use any::AnyFilter;
pub use attributes::AttributesFilter;
pub use cesql::{CesqlFilter, CloudEventContext};
pub use compile::{compile, CompiledFilter};
pub use error::FilterError;
pub use exact::ExactFilter;
pub use lookup::attribute_value;
pub use not::NotFilter;
pub use prefix::PrefixFilter;
pub use result::FilterResult;
pub use suffix::SuffixFilter;

/// A filter: one dialect, a combination of filters, or a whole Trigger's filter.
pub trait Filter: Send + Sync + std::fmt::Debug {
    /// What the filter says about `event`.
    fn filter(&self, event: &Event) -> FilterResult;
}
