//! The same workloads written for other systems, run in the same process and
//! the same benchmark run as Sluice.

#[path = "../../peers/timely/mod.rs"]
pub mod timely;
