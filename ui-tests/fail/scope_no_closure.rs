async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(timeout = "5s")
}

fn main() {}
