async fn run() {
    klaw::select! {}
}

fn main() {}
