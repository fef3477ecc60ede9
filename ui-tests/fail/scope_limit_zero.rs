async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(limit = 0, |s| {
        s.spawn(async {});
        Ok(())
    })
}

fn main() {}
