//! Consistent hashing with weighted virtual nodes and zone-aware replica placement.
