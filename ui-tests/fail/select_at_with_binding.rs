// An `at(..)` arm binds nothing.
async fn run(rx: klaw::channel::Receiver<u8>, deadline: std::time::Instant) {
    klaw::select! {
        recv(rx) -> _msg => {}
        at(deadline) -> reached => {}
    }
}

fn main() {}
