async fn run(tx: klaw::channel::Sender<u8>) {
    klaw::select! {
        send(tx) -> _res => {}
    }
}

fn main() {}
