//! The MPMC channel: competing consumers, each message to exactly one receiver.

mod buffer;
pub(crate) mod chan;
mod list;
mod receiver;
mod reserve;
mod ring;
mod sender;
mod sink;
mod waiters;
mod yielding;

pub use receiver::{Receiver, Recv, RecvMany};
pub use reserve::{OwnedPermit, Permit, Reserve, ReserveOwned};
pub use sender::{Closed, Send, Sender, WeakSender};
