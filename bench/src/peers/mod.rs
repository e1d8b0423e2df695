//! The same workloads written for other systems, run in the same process and
//! the same benchmark run as Sluice.

pub mod timely;
