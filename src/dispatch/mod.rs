//! Choosing the next task for an idle agent, claiming it, delivering it.
