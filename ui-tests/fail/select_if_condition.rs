async fn run(ready: bool) {
    let (_tx, rx) = klaw::channel::bounded::<u8>(1);
    klaw::select! {
        rx.recv() -> msg, if ready => drop(msg),
        default => {}
    }
}

fn main() {}
