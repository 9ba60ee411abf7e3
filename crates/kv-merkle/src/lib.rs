//! Incremental Merkle trees over key ranges, and a message-driven diff for anti-entropy.
