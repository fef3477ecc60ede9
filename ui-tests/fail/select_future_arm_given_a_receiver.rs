async fn run(rx: klaw::channel::Receiver<u8>) {
    klaw::select! {
        rx -> _msg => {}
        default => {}
    }
}

fn main() {}
