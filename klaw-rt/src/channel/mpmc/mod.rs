//! The MPMC channel: competing consumers, each message to exactly one receiver.

mod receiver;
mod reserve;
mod sender;
mod sink;
pub(crate) mod state;

pub use receiver::{Receiver, Recv};
pub use reserve::{Permit, Reserve};
pub use sender::{Send, Sender};
