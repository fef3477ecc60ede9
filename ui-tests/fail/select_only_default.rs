async fn run() {
    klaw::select! {
        default => {}
    }
}

fn main() {}
