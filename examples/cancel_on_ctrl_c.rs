//! `#[klaw::main(cancel_on_ctrl_c)]`: Ctrl-C cancels the whole program with
//! `CancelReason::Interrupted`. Its tasks stop at their next `.await` (a shield lets cleanup
//! finish), and the process exits with code 130 and the reason on stderr.
//!
//! ```sh
//! cargo run --example cancel_on_ctrl_c   # then press Ctrl-C
//! ```
#![allow(clippy::print_stdout, reason = "a program that talks to its user")]

use std::io::Write;
use std::time::Duration;

#[klaw::main(cancel_on_ctrl_c)]
async fn main() -> Result<(), klaw::Error> {
    klaw::scope!(name = "server", |s| {
        s.spawn(klaw::time::sleep(Duration::from_secs(3600)));
        println!("ready: press Ctrl-C to stop");
        std::io::stdout().flush()?;
        std::future::pending::<()>().await;
        Ok(())
    })
}
