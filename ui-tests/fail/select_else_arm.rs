async fn run() {
    let (_tx, rx) = klaw::channel::bounded::<u8>(1);
    klaw::select! {
        recv(rx) -> msg => drop(msg),
        else => {}
    }
}

fn main() {}
