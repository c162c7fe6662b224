//! Wiring a role to Kafka and to people, shared by every command and by the examples: a role
//! becomes a member of its consumer group, its activity goes to a printer or the live view,
//! and its announcements go to `<topic>.members`.
//!
//! - [`member`]: a role as a group member — options, sinks, its run on a thread of its own,
//!   [`member::run`] for a whole run (what `orderflow analytics` and the examples do)
//! - `live`: the live view around running members — its channel, the group watch, the
//!   terminal, what it leaves behind
//! - `sender`: the producer's generation loop, on a thread of its own (`produce`, `demo`)

pub(crate) mod live;
pub mod member;
pub(crate) mod sender;

pub use member::{Output, run};
