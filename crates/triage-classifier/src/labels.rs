//! Label sets in a fixed order: the order of the trained heads' outputs and of the data file.

use triage_proto::pb;

/// Complexity labels, head output order.
pub const COMPLEXITY: [&str; 3] = ["simple", "moderate", "complex"];
/// Category labels, head output order.
pub const CATEGORY: [&str; 3] = ["transactional", "analytical", "creative"];
/// requires_context labels, head output order.
pub const CONTEXT: [&str; 2] = ["false", "true"];
/// Language labels, head output order.
pub const LANGUAGE: [&str; 4] = ["en", "es", "pt", "mixed"];

/// Wire enum of a complexity index (see [`COMPLEXITY`]).
pub fn complexity_pb(i: usize) -> pb::Complexity {
    match i {
        0 => pb::Complexity::Simple,
        1 => pb::Complexity::Moderate,
        _ => pb::Complexity::Complex,
    }
}

/// Wire enum of a category index (see [`CATEGORY`]).
pub fn category_pb(i: usize) -> pb::Category {
    match i {
        0 => pb::Category::Transactional,
        1 => pb::Category::Analytical,
        _ => pb::Category::Creative,
    }
}

/// Index of a label name in a label set.
pub fn index_of(set: &[&str], name: &str) -> Option<usize> {
    set.iter().position(|l| *l == name)
}

/// Index of a wire complexity in [`COMPLEXITY`] (unspecified reads as complex: the safe side).
pub fn complexity_index(c: i32) -> usize {
    match pb::Complexity::try_from(c) {
        Ok(pb::Complexity::Simple) => 0,
        Ok(pb::Complexity::Moderate) => 1,
        _ => 2,
    }
}

/// Index of a wire category in [`CATEGORY`].
pub fn category_index(c: i32) -> usize {
    match pb::Category::try_from(c) {
        Ok(pb::Category::Transactional) => 0,
        Ok(pb::Category::Analytical) => 1,
        _ => 2,
    }
}
