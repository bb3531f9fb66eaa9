//! Pty-log tailing, ANSI stripping, the per-agent state machine, prompt classification.
