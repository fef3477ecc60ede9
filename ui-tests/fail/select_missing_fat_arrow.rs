async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        recv(rx) -> msg { let _ = msg; }
    }
}

fn main() {}
