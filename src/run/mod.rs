//! `work` and `supervise`: run state, recovery, the event loop.
