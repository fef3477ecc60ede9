//! The MPMC channel: competing consumers, each message to exactly one receiver.

mod receiver;
mod sender;
pub(crate) mod state;

pub use receiver::{Receiver, Recv};
pub use sender::{Permit, Reserve, Send, Sender};
