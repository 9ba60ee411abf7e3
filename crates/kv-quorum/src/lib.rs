//! The coordinator: replication, quorums, version vectors, hinted handoff, read repair.
