async fn run() {
    let (_tx, rx) = klaw::channel::bounded::<u8>(1);
    klaw::select! {
        msg = rx.recv() => drop(msg),
        default => {}
    }
}

fn main() {}
