// A `send` arm must bind its result, so a failed send is always handled.
async fn run(tx: klaw::channel::Sender<u8>) {
    klaw::select! {
        send(tx, 1) => {}
    }
}

fn main() {}
