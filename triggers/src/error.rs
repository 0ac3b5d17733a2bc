//! Why a trigger's filters could not be compiled.

/// A filter that cannot be compiled; each variant names the field path (e.g.
/// `spec.filters[1].exact`) so it can be reported on the Trigger's status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A `filters` element sets no dialect.
    #[error("{path}: expected exactly one dialect, got neither")]
    NoDialect {
        /// The element.
        path: String,
    },
    /// A `filters` element sets more than one dialect.
    #[error("{path}: multiple dialects found ({})", dialects.join(", "))]
    MultipleDialects {
        /// The element.
        path: String,
        /// The dialects it sets.
        dialects: Vec<&'static str>,
    },
    /// An `exact`, `prefix` or `suffix` map has an empty attribute name.
    #[error("{path}: attribute names must not be empty")]
    EmptyAttributeName {
        /// The map.
        path: String,
    },
    /// An `exact`, `prefix` or `suffix` map has an empty value.
    #[error("{path}: the value must not be empty")]
    EmptyValue {
        /// The map entry, e.g. `spec.filters[0].exact.type`.
        path: String,
    },
    /// A `cesql` expression does not parse.
    #[error("{path}: invalid cesql expression: {source}")]
    Cesql {
        /// The `cesql` field.
        path: String,
        /// The parser's error.
        source: sluice_cesql::ParseError,
    },
}
