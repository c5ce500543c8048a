//! tickwire's fuzz targets (see `targets.rs`) and the seed corpus they start from.

pub mod seeds;
pub mod targets;
