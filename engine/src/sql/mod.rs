//! The SQL front end: job files that carry Flink SQL instead of a registered
//! job's name.
//!
//! A script goes through [`script`] (statements, with Flink's `CREATE TABLE`
//! and sqlparser's queries in [`dialect::FlinkDialect`]), then binding and
//! type checking against the tables it creates, then planning onto the
//! DataStream operators. Every stage reports a [`SqlError`] at a line and
//! column of the script. All of it runs once, on the thread that builds the
//! job, before any shard starts.

pub mod aggregate;
pub mod bind;
pub mod calc;
pub mod catalog;
pub mod compiled_expr;
pub mod dialect;
pub mod error;
pub mod expr;
pub mod functions;
pub mod group_aggregate;
pub mod interval_join;
pub mod job;
pub mod join;
pub mod lookup_join;
pub mod output;
pub mod partitioned_sink;
pub mod physical;
pub mod plan;
pub mod rank;
pub mod row_source;
pub mod scan;
pub mod script;
pub mod shared_subexpressions;
pub mod sql_type;
pub mod text_rows;
pub mod value;
pub mod window_aggregate;

pub use error::{Position, SqlError};
pub use job::{Insert, SqlProgram};
pub use script::{parse_script, Located, Statement};
pub use sql_type::SqlType;
pub use value::{Row, Value};
