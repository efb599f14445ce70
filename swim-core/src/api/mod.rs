//! The API: what goes into the state machine and what comes out, how it
//! is configured, identified and counted, and the loop that runs it.
//!
//! Depends on the wire format (for the types actions carry) and the
//! utilities; nothing in the protocol depends on anything above it.

pub(crate) mod action;
pub(crate) mod config;
pub(crate) mod digest;
pub(crate) mod driver;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod identity;
pub(crate) mod input;
pub(crate) mod query;
pub(crate) mod stats;
pub(crate) mod tags;

pub use action::Action;
pub use config::{Config, ConfigError};
pub use digest::Digest;
pub use driver::{Driver, Machine, Transport};
pub use error::Error;
pub use event::Event;
pub use identity::Identity;
pub use input::{Input, OwnedInput, StreamEnd, StreamId};
pub use query::{QueryFilter, QueryId, QueryOptions, QueryReport};
pub use stats::Stats;
pub use tags::Tags;
