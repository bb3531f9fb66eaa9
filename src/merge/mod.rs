//! The serial, test-gated merge queue.
