async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        send(rx, 1) -> _res => {}
    }
}

fn main() {}
