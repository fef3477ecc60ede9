async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(limit = "8", |s| {
        s.spawn(async {});
        Ok(())
    })
}

fn main() {}
