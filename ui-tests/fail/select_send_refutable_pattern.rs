// A refutable pattern on a `send` arm would silently drop the `Err` (the value given back): it
// is a compile error, reported at the pattern, as for a `recv` arm (select_refutable_pattern).
async fn run(tx: klaw::channel::Sender<u8>) {
    klaw::select! {
        send(tx, 1) -> Ok(()) => {}
    }
}

fn main() {}
